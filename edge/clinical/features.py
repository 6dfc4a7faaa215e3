"""Structured triage fields → the float32 feature vector the model graph takes as ``features``.

Build time (``export``) and run time (``edge``) call this one function, and the bundle's
manifest records ``FEATURE_SPEC`` so the runtime refuses a bundle built with another encoding.
Missing values: numeric fields are set to the reference mean (0 after scaling) with a
``*_missing`` indicator; categorical fields are all-zero one-hots.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edge.clinical.case import ARRIVALS, MENTAL_STATES, SEXES, TriageCase
from edge.clinical.protocol import esi_danger_zone, findings, infant_temperature_flag, pain_site, sirs_count

FEATURE_VERSION = "features-v2"

# Fixed adult reference centre and spread (not fitted), so the encoding never depends on the
# training split and a value far outside the range is clipped, not extrapolated.
NUMERIC_SCALING: dict[str, tuple[float, float]] = {
    "age": (50.0, 20.0),
    "pain": (3.0, 3.0),
    "sbp": (130.0, 25.0),
    "dbp": (80.0, 15.0),
    "hr": (85.0, 18.0),
    "rr": (19.0, 3.0),
    "temp_c": (36.7, 0.7),
    "spo2": (97.0, 3.0),
}
CLIP = 5.0

PROTOCOL_GROUPS = (
    "respiratory", "consciousness", "hemodynamic", "fever", "temperature", "hypertension",
    "pain", "danger_zone",
)


def _names() -> list[str]:
    names: list[str] = []
    for key in NUMERIC_SCALING:
        names += [key, f"{key}_missing"]
    names += [f"sex_{s}" for s in SEXES]
    names += [f"arrival_{a}" for a in ARRIVALS]
    names += ["injury", "injury_missing"]
    names += [f"mental_{m}" for m in MENTAL_STATES]
    names += ["site_central", "site_peripheral", "sirs_count"]
    # Each protocol group as urgency (6 - level) / 5: 0 when it does not apply, 1 for level 1.
    names += [f"protocol_{g}" for g in PROTOCOL_GROUPS]
    names += [f"protocol_level_{lvl}" for lvl in range(1, 6)] + ["protocol_none"]
    # v2: ESI danger-zone limits by age band (children's own limits), and age bands where the
    # protocols treat children differently.
    names += ["esi_dz_hr", "esi_dz_rr", "esi_dz_spo2", "esi_dz_any", "esi_infant_temperature"]
    names += ["age_under_3_months", "age_under_3_years", "age_under_18"]
    return names


FEATURE_NAMES: tuple[str, ...] = tuple(_names())
N_FEATURES = len(FEATURE_NAMES)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def encode_case(case: TriageCase) -> np.ndarray:
    """One case → float32 vector of length ``N_FEATURES``."""
    x = np.zeros(N_FEATURES, dtype=np.float32)
    for key, (centre, spread) in NUMERIC_SCALING.items():
        value = getattr(case, key)
        if value is None:
            x[_INDEX[f"{key}_missing"]] = 1.0
        else:
            x[_INDEX[key]] = float(np.clip((value - centre) / spread, -CLIP, CLIP))
    if case.sex is not None:
        x[_INDEX[f"sex_{case.sex}"]] = 1.0
    if case.arrival is not None:
        x[_INDEX[f"arrival_{case.arrival}"]] = 1.0
    if case.injury is None:
        x[_INDEX["injury_missing"]] = 1.0
    elif case.injury:
        x[_INDEX["injury"]] = 1.0
    if case.mental is not None:
        x[_INDEX[f"mental_{case.mental}"]] = 1.0
    site = pain_site(case.complaint)
    if site is not None:
        x[_INDEX[f"site_{site}"]] = 1.0
    x[_INDEX["sirs_count"]] = sirs_count(case) / 3.0
    found = findings(case)
    for finding in found:
        slot = _INDEX[f"protocol_{finding.group}"]
        x[slot] = max(x[slot], (6 - finding.level) / 5.0)
    levels = [f.level for f in found if f.group != "danger_zone"]
    if levels:
        x[_INDEX[f"protocol_level_{min(levels)}"]] = 1.0
    else:
        x[_INDEX["protocol_none"]] = 1.0
    danger = esi_danger_zone(case)
    for key, hit in danger.items():
        x[_INDEX[f"esi_dz_{key}"]] = float(hit)
    x[_INDEX["esi_dz_any"]] = float(any(danger.values()))
    x[_INDEX["esi_infant_temperature"]] = float(infant_temperature_flag(case))
    if case.age is not None:
        x[_INDEX["age_under_3_months"]] = float(case.age < 0.25)
        x[_INDEX["age_under_3_years"]] = float(case.age < 3)
        x[_INDEX["age_under_18"]] = float(case.age < 18)
    return x


def encode_cases(cases: Sequence[TriageCase]) -> np.ndarray:
    """Many cases → float32 matrix ``[len(cases), N_FEATURES]``."""
    if not cases:
        return np.zeros((0, N_FEATURES), dtype=np.float32)
    return np.stack([encode_case(c) for c in cases])


def feature_spec() -> dict[str, Any]:
    """What the manifest records so a runtime can check it encodes features the same way."""
    return {
        "version": FEATURE_VERSION,
        "names": list(FEATURE_NAMES),
        "numeric_scaling": {k: {"centre": c, "spread": s, "clip": CLIP} for k, (c, s) in NUMERIC_SCALING.items()},
        "missing": "numeric: centre value (0 after scaling) plus *_missing indicator; categorical: all-zero one-hot",
    }
