"""A FHIR R4 ``Bundle`` of triage facts -> the JSON API's case (a plain dict for ``parse_case``).

Plain dicts, no FHIR model library at run time: fhir.resources (R4B, on pydantic) adds about
16 MiB of RSS to a service that runs on 2-4 GB boards, and the mapping below checks everything it
reads anyway. The tests validate both directions with fhir.resources.

Errors name the FHIRPath of the offending element (``Bundle.entry[2].resource.valueQuantity.code``),
never its value. Case errors raised later by ``parse_case`` (``out_of_range``…) are mapped back to
the element that supplied the field via ``Inbound.sources``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from edge.errors import CaseError
from edge.fhir.codes import (ARRIVAL_CODES, ARRIVAL_MODE, ARRIVAL_WORDS, BP_PANEL, CHIEF_COMPLAINT, GENDERS, LOINC,
                             UCUM, VITALS, WITHDRAWN)

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


@dataclass
class Inbound:
    case: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # case field -> FHIRPath that supplied it
    subject: dict[str, str] | None = None  # the Patient reference, passed through to the answer
    basis: list[dict[str, str]] = field(default_factory=list)  # references to the resources used


def _error(code: str, message: str, path: str) -> CaseError:
    return CaseError(code, message, field=path)


def _codes(concept: Any, system: str) -> list[str]:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return [c["code"] for c in codings or [] if isinstance(c, Mapping) and c.get("system") == system
            and isinstance(c.get("code"), str)]


def _text(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
            return coding["display"]
    return None


def _set(out: Inbound, name: str, value: Any, path: str) -> None:
    if name in out.case and out.case[name] != value:
        raise _error("conflicting_values", f"Two different values for '{name}'; send one.", path)
    out.case[name] = value
    out.sources[name] = path


def _quantity(vital_code: str, element: Mapping[str, Any], path: str) -> float | None:
    """A vital's number in the case's unit, from ``valueQuantity`` (or ``valueInteger`` for scores)."""
    vital = VITALS[vital_code]
    if vital.unitless and isinstance(element.get("valueInteger"), int):
        return float(element["valueInteger"])
    quantity = element.get("valueQuantity")
    if quantity is None:
        return None  # no value (dataAbsentReason): not recorded
    if not isinstance(quantity, Mapping):
        raise _error("wrong_type", "valueQuantity must be a Quantity.", f"{path}.valueQuantity")
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error("wrong_type", "valueQuantity.value must be a finite number.", f"{path}.valueQuantity.value")
    unit = quantity.get("code")
    if unit is None and vital.unitless and quantity.get("unit") is None:
        return float(value)
    if quantity.get("system") not in (UCUM, None) or unit not in vital.units:
        raise _error("wrong_unit", f"LOINC {vital_code} needs a UCUM unit: {', '.join(vital.units)}.",
                     f"{path}.valueQuantity.code")
    return float(vital.units[unit](float(value)))


def _observation(out: Inbound, resource: Mapping[str, Any], path: str) -> bool:
    """Read one Observation; returns whether it contributed to the case."""
    if resource.get("status") in WITHDRAWN:
        return False
    loinc = _codes(resource.get("code"), LOINC)
    if not loinc:
        raise _error("missing_code", "Each Observation needs a LOINC code (system http://loinc.org).", f"{path}.code")
    used = False
    for code in loinc:
        if code in VITALS:
            value = _quantity(code, resource, path)
            if value is not None:
                _set(out, VITALS[code].field, value, f"{path}.valueQuantity.value")
                used = True
        elif code == BP_PANEL:
            for i, component in enumerate(resource.get("component") or []):
                sub = _codes(component.get("code") if isinstance(component, Mapping) else None, LOINC)
                for part in (c for c in sub if c in ("8480-6", "8462-4")):
                    value = _quantity(part, component, f"{path}.component[{i}]")
                    if value is not None:
                        _set(out, VITALS[part].field, value, f"{path}.component[{i}].valueQuantity.value")
                        used = True
        elif code == CHIEF_COMPLAINT:
            text = resource.get("valueString")
            text = text if isinstance(text, str) else _text(resource.get("valueCodeableConcept"))
            if text is not None:
                _set(out, "complaint", text, f"{path}.valueString")
                used = True
        elif code == ARRIVAL_MODE:
            arrival = _arrival(resource.get("valueCodeableConcept"))
            if arrival is not None:
                _set(out, "arrival", arrival, f"{path}.valueCodeableConcept")
                used = True
    return used  # other LOINC codes an EHR sends along are not triage facts: ignored


def _arrival(concept: Any) -> str | None:
    for code in _codes(concept, "http://terminology.hl7.org/CodeSystem/v2-0430"):
        if code in ARRIVAL_CODES:
            return ARRIVAL_CODES[code]
    text = (_text(concept) or "").lower()
    return next((mode for word, mode in ARRIVAL_WORDS if word in text), "other" if text else None)


def _age(birth_date: Any, today: dt.date, path: str) -> float:
    match = _DATE.match(birth_date) if isinstance(birth_date, str) else None
    if match is None:
        raise _error("wrong_type", "birthDate must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD).", path)
    year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
    try:
        born = dt.date(year, month, day)
    except ValueError:
        raise _error("wrong_type", "birthDate is not a calendar date.", path) from None
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return float(years)  # parse_case refuses a birth date in the future (negative age)


def _patient(out: Inbound, resource: Mapping[str, Any], path: str, full_url: Any, today: dt.date) -> None:
    if isinstance(full_url, str) and full_url:
        out.subject = {"reference": full_url}
    elif isinstance(resource.get("id"), str):
        out.subject = {"reference": f"Patient/{resource['id']}"}
    if resource.get("birthDate") is not None:
        _set(out, "age", _age(resource["birthDate"], today, f"{path}.birthDate"), f"{path}.birthDate")
    if resource.get("gender") in GENDERS:
        _set(out, "sex", GENDERS[resource["gender"]], f"{path}.gender")


def read_bundle(body: Any, today: dt.date | None = None) -> Inbound:
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if not isinstance(body, Mapping):
        raise _error("not_an_object", "The body must be a FHIR resource (a JSON object).", "Bundle")
    if body.get("resourceType") != "Bundle":
        raise _error("not_a_bundle", "Send a FHIR Bundle (resourceType 'Bundle') of the triage facts.", "resourceType")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _error("missing_field", "The Bundle has no entries.", "Bundle.entry")
    out = Inbound()
    conditions: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        path = f"Bundle.entry[{i}].resource"
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise _error("invalid_resource", "Each entry needs a resource with a resourceType.", path)
        kind = resource["resourceType"]
        full_url = entry.get("fullUrl")
        used = False
        if kind == "Patient":
            _patient(out, resource, path, full_url, today)
        elif kind == "Observation":
            used = _observation(out, resource, path)
        elif kind == "Condition":
            text = _text(resource.get("code"))
            if text is not None:
                conditions.append((text, f"{path}.code"))
                used = True
        if used:
            ref = full_url if isinstance(full_url, str) and full_url else (
                f"{kind}/{resource['id']}" if isinstance(resource.get("id"), str) else None)
            if ref is not None:
                out.basis.append({"reference": ref})
    if "complaint" not in out.case and conditions:  # the LOINC 8661-1 Observation wins over a Condition
        _set(out, "complaint", "; ".join(text for text, _ in conditions), conditions[0][1])
    if "complaint" not in out.case:
        raise _error("missing_field", "Send the chief complaint: an Observation with LOINC 8661-1 "
                     "(valueString) or a Condition with code.text.", "Bundle.entry")
    return out
