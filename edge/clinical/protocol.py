"""KTAS/CTAS first-order modifiers computed from triage-time facts.

Source: ``../shared/data/triage-modifiers/first_order_modifiers.csv`` (CTAS/KTAS modifier
tables, ESI v4 danger-zone vitals, ACCP/SCCM SIRS). The protocol assigns the most urgent level
of all modifiers that apply. The same findings feed two consumers: the raise-only safety rules
(``edge.clinical.rules``) and the model's structured features (``edge.clinical.features``), so the model learns
what the nurse's protocol says instead of rediscovering it from 1,000 rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.clinical.case import TriageCase


@dataclass(frozen=True)
class Finding:
    """One modifier that applies: its group, the level it assigns, and why (no values)."""

    group: str
    level: int
    text: str


# Pain site decides the pain grid row: central pain (chest, abdomen, head, back of the trunk)
# is triaged more urgently than peripheral pain (limbs, skin, eye, ear, teeth).
_CENTRAL_SITE = re.compile(
    r"\b(chest|abd|abdom|epigastr|stomach|flank|head|headache|back|lbp|pelvi|rlq|llq|ruq|luq|"
    r"throat|neck|heart|cardiac|thora|rib|groin|testic|scrot)",
    re.IGNORECASE,
)
_PERIPHERAL_SITE = re.compile(
    r"\b(arm|leg|hand|finger|toe|foot|feet|ankle|knee|hip|wrist|elbow|shoulder|thigh|calf|"
    r"forearm|eye|ocular|ear|tooth|teeth|dental|skin|wound|lacerat|nose|lip|jaw|chin|face)",
    re.IGNORECASE,
)
_CHRONIC = re.compile(r"\b(chronic|recurrent|for (months|years)|long[- ]standing)", re.IGNORECASE)


def pain_site(complaint: str) -> str | None:
    """``central``, ``peripheral`` or None when the complaint does not say."""
    if _CENTRAL_SITE.search(complaint):
        return "central"
    if _PERIPHERAL_SITE.search(complaint):
        return "peripheral"
    return None


# (site, chronic) -> [(min NRS, level)], most severe first: the KTAS/CTAS pain grid.
_PAIN_GRID: dict[tuple[str, bool], list[tuple[float, int]]] = {
    ("central", False): [(8, 2), (4, 3), (0.5, 4)],
    ("central", True): [(8, 3), (4, 4), (0.5, 5)],
    ("peripheral", False): [(8, 3), (4, 4), (0.5, 5)],
    ("peripheral", True): [(8, 4), (0.5, 5)],
}


def sirs_count(case: TriageCase) -> int:
    """Triage-usable SIRS items met: temperature, heart rate, respiratory rate (no WBC)."""
    count = 0
    if case.temp_c is not None and (case.temp_c > 38.0 or case.temp_c < 36.0):
        count += 1
    if case.hr is not None and case.hr > 90:
        count += 1
    if case.rr is not None and case.rr > 20:
        count += 1
    return count


def findings(case: TriageCase) -> list[Finding]:
    """Every first-order (and numeric second-order) modifier that applies to ``case``."""
    out: list[Finding] = []
    add = out.append
    if case.spo2 is not None:
        if case.spo2 < 90:
            add(Finding("respiratory", 1, "SpO2 below 90 %"))
        elif case.spo2 < 92:
            add(Finding("respiratory", 2, "SpO2 90-91 %"))
        elif case.spo2 <= 94:
            add(Finding("respiratory", 3, "SpO2 92-94 %"))
    if case.mental in ("P", "U"):
        add(Finding("consciousness", 1, "responds only to pain or unresponsive (GCS about 3-8)"))
    elif case.mental == "V":
        add(Finding("consciousness", 2, "responds to voice only: altered consciousness"))
    if case.sbp is not None and 0 < case.sbp < 80:
        add(Finding("hemodynamic", 1, "systolic pressure below 80 mmHg: shock"))
    elif case.sbp is not None and case.sbp < 90:
        add(Finding("hemodynamic", 2, "systolic pressure below 90 mmHg: hemodynamic compromise"))
    if case.hr is not None and (case.hr >= 150 or 0 < case.hr < 40):
        add(Finding("hemodynamic", 2, "heart rate 150/min or more, or below 40/min"))
    if case.rr is not None and (case.rr >= 30 or 0 < case.rr < 8):
        add(Finding("respiratory", 2, "respiratory rate 30/min or more, or below 8/min"))
    if case.temp_c is not None and case.temp_c >= 38.0:
        sirs = sirs_count(case)
        level = 2 if sirs >= 3 else 3 if sirs == 2 else 4
        add(Finding("fever", level, f"fever with {sirs} SIRS criteria"))
    if case.temp_c is not None and case.temp_c < 32:
        add(Finding("temperature", 2, "core temperature below 32 °C"))
    elif case.temp_c is not None and case.temp_c < 35:
        add(Finding("temperature", 3, "core temperature 32-35 °C"))
    if case.sbp is not None and case.dbp is not None and (case.sbp >= 220 or case.dbp >= 130):
        add(Finding("hypertension", 3, "SBP 220 or more, or DBP 130 or more"))
    if case.pain is not None and case.pain > 0:
        site = pain_site(case.complaint)
        if site is not None:
            chronic = bool(_CHRONIC.search(case.complaint))
            for minimum, level in _PAIN_GRID[(site, chronic)]:
                if case.pain >= minimum:
                    course = "chronic" if chronic else "acute"
                    add(Finding("pain", level, f"{course} {site} pain, NRS {minimum:g} or more"))
                    break
    if case.age is not None and case.age > 8:
        danger = [
            case.hr is not None and case.hr > 100,
            case.rr is not None and case.rr > 20,
            case.spo2 is not None and case.spo2 < 92,
        ]
        if any(danger):
            add(Finding("danger_zone", 2, "ESI danger-zone vital sign (HR > 100, RR > 20 or SpO2 < 92 %)"))
    return out


# ESI v4 danger-zone vitals by age band (decision point D; esi-high-risk/esi_danger_zone_vitals.csv):
# (upper age bound in years, HR above, RR above). SpO2 below 92 % at every age. "Consider level 2":
# model features, not hard floors.
ESI_DANGER_ZONE: tuple[tuple[float, float, float], ...] = (
    (0.25, 180, 50),   # under 3 months
    (3.0, 160, 40),    # 3 months - 3 years
    (8.0, 140, 30),    # 3 - 8 years
    (200.0, 100, 20),  # over 8 years, adults included
)
ESI_SPO2_BELOW = 92


def esi_danger_zone(case: TriageCase) -> dict[str, bool]:
    """Which ESI danger-zone limits the case exceeds for its age band (adult limits when the age
    is unknown: the band most visits fall in)."""
    age = case.age if case.age is not None else 30.0
    hr_limit, rr_limit = next((hr, rr) for bound, hr, rr in ESI_DANGER_ZONE if age < bound)
    return {
        "hr": case.hr is not None and case.hr > hr_limit,
        "rr": case.rr is not None and case.rr > rr_limit,
        "spo2": case.spo2 is not None and case.spo2 < ESI_SPO2_BELOW,
    }


def infant_temperature_flag(case: TriageCase) -> bool:
    """ESI Table 6-3: under 28 days with T >= 38.0 °C, or under 90 days with T < 36.5 °C, is level 2."""
    if case.age is None or case.temp_c is None:
        return False
    return (case.age < 28 / 365.25 and case.temp_c >= 38.0) or (case.age < 90 / 365.25 and case.temp_c < 36.5)


def protocol_level(case: TriageCase) -> int | None:
    """The most urgent level of all applicable modifiers, or None when none applies."""
    levels = [f.level for f in findings(case)]
    return min(levels) if levels else None
