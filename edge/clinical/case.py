"""The triage case (input contract, docs/design.md): parsing and validation.

Physiologically impossible values are errors; merely abnormal ones are data. Error messages
name the field and the accepted range, never the submitted value (it may be PHI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from edge.errors import CaseError

MAX_COMPLAINT_CHARS = 500

SEXES = ("F", "M")
ARRIVALS = ("walk", "ambulance", "private", "other")
MENTAL_STATES = ("A", "V", "P", "U")
# The triage scale the answer is wanted in (edge.clinical.scales); not a clinical fact, never a model input.
SCALE_CHOICES = ("ktas", "esi")

# Inclusive bounds of what a living patient at triage can present with. Outside them the value
# is a typo or a unit mix-up (°F for °C, kPa for mmHg) and must be corrected, not guessed.
NUMERIC_BOUNDS: dict[str, tuple[float, float, str]] = {
    "age": (0, 120, "years"),
    "pain": (0, 10, "NRS 0-10"),
    "sbp": (0, 300, "mmHg"),
    "dbp": (0, 200, "mmHg"),
    "hr": (0, 300, "beats/min"),
    "rr": (0, 80, "breaths/min"),
    "temp_c": (20, 45, "degrees Celsius"),
    "spo2": (0, 100, "percent"),
}


@dataclass(frozen=True)
class TriageCase:
    complaint: str
    age: float | None = None
    sex: str | None = None
    arrival: str | None = None
    injury: bool | None = None
    mental: str | None = None
    pain: float | None = None
    sbp: float | None = None
    dbp: float | None = None
    hr: float | None = None
    rr: float | None = None
    temp_c: float | None = None
    spo2: float | None = None
    scale: str | None = None  # None: the device's configured scale

    def to_dict(self) -> dict[str, Any]:
        # Every field is a scalar: no deep copy needed (dataclasses.asdict cost ~0.2 ms a case,
        # paid by every answer for the staff queue).
        return {name: value for name in CASE_FIELDS if (value := getattr(self, name)) is not None}


CASE_FIELDS = tuple(f.name for f in fields(TriageCase))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError("wrong_type", f"'{name}' must be a number.", field=name)
    # JSON integers are unbounded: math.isfinite(10**309) and float(10**309) raise OverflowError.
    # An int is always finite, and comparing it with the bounds is exact, so range-check it first.
    if isinstance(value, float) and not math.isfinite(value):
        raise CaseError("not_finite", f"'{name}' must be a finite number.", field=name)
    low, high, unit = NUMERIC_BOUNDS[name]
    if not low <= value <= high:
        raise CaseError(
            "out_of_range",
            f"'{name}' must be between {low:g} and {high:g} ({unit}); check the value and its unit.",
            field=name,
        )
    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0: one zero in features, audit and answers


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise CaseError(
            "invalid_choice", f"'{name}' must be one of {', '.join(allowed)}.", field=name
        )
    return value


def parse_case(payload: Any) -> TriageCase:
    """Validate a JSON-decoded object into a :class:`TriageCase` or raise :class:`CaseError`.

    ``null`` for an optional field means "not recorded", the same as leaving it out.
    """
    if not isinstance(payload, Mapping):
        raise CaseError("not_an_object", "The triage case must be a JSON object.")
    if any(name not in CASE_FIELDS for name in payload):
        # Never echo an unknown name: a client may put anything in a key (a name, a record number).
        raise CaseError(
            "unknown_field",
            f"The case has a field this service does not accept. Accepted fields: {', '.join(CASE_FIELDS)}.",
        )
    complaint = payload.get("complaint")
    if complaint is None:
        raise CaseError("missing_field", "'complaint' (the chief complaint) is required.", field="complaint")
    if not isinstance(complaint, str):
        raise CaseError("wrong_type", "'complaint' must be a string.", field="complaint")
    complaint = " ".join(complaint.split())
    if not complaint.isascii():
        try:
            complaint.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from JSON "\ud800" escapes: not text
            raise CaseError("invalid_text", "'complaint' must be valid Unicode text.", field="complaint") from None
    if not complaint:
        raise CaseError("empty_complaint", "'complaint' must not be empty.", field="complaint")
    if len(complaint) > MAX_COMPLAINT_CHARS:
        raise CaseError(
            "too_long", f"'complaint' must be at most {MAX_COMPLAINT_CHARS} characters.", field="complaint"
        )

    values: dict[str, Any] = {"complaint": complaint}
    for name in NUMERIC_BOUNDS:
        if payload.get(name) is not None:
            values[name] = _number(name, payload[name])
    if payload.get("sex") is not None:
        values["sex"] = _choice("sex", payload["sex"], SEXES)
    if payload.get("arrival") is not None:
        values["arrival"] = _choice("arrival", payload["arrival"], ARRIVALS)
    if payload.get("mental") is not None:
        values["mental"] = _choice("mental", payload["mental"], MENTAL_STATES)
    if payload.get("scale") is not None:
        values["scale"] = _choice("scale", payload["scale"], SCALE_CHOICES)
    if payload.get("injury") is not None:
        if not isinstance(payload["injury"], bool):
            raise CaseError("wrong_type", "'injury' must be true or false.", field="injury")
        values["injury"] = payload["injury"]

    sbp, dbp = values.get("sbp"), values.get("dbp")
    if sbp is not None and dbp is not None and sbp > 0 and dbp > sbp:
        raise CaseError(
            "inconsistent", "'dbp' must not exceed 'sbp'; check that the two were not swapped.", field="dbp"
        )
    return TriageCase(**values)
