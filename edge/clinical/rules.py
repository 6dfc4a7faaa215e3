"""Deterministic safety rules: a table of (id, plain-language text, source, level, test).

Rules may only **raise** acuity (make the level more urgent, i.e. numerically lower): the final
level is ``min(model level, every fired rule's level)``. They encode the KTAS/CTAS first-order
modifiers that are hard floors and red-flag complaints that a small model must never miss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from edge.clinical.case import TriageCase
from edge.clinical.protocol import infant_temperature_flag, sirs_count

MODIFIERS_SOURCE = "KTAS/CTAS first-order modifiers (triage-modifiers fact table)"
ESI_SOURCE = "ESI v4 handbook, high-risk situations (esi-high-risk fact table, row {})"
BOTH = ("ktas", "esi")


@dataclass(frozen=True)
class SafetyRule:
    id: str
    level: int
    text: str
    source: str
    applies: Callable[[TriageCase], bool]
    scales: tuple[str, ...] = BOTH  # the triage scales whose protocol has this floor


@dataclass(frozen=True)
class FiredRule:
    id: str
    level: int
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "level": self.level, "text": self.text}


# "denies chest pain", "no LOC": a cue word right after a negation is not a finding.
_NEGATED = re.compile(r"\b(no|not|denies|denied|without|negative for|neg)\s+(\w+\s+){0,2}$", re.IGNORECASE)


def _words(pattern: str) -> Callable[[TriageCase], bool]:
    regex = re.compile(pattern, re.IGNORECASE)

    def applies(case: TriageCase) -> bool:
        text = case.complaint
        if regex.search(text) is None:  # most rules miss most complaints: no per-match loop then
            return False
        return any(not _NEGATED.search(text[:m.start()]) for m in regex.finditer(text))

    return applies


def _all(*tests: Callable[[TriageCase], bool]) -> Callable[[TriageCase], bool]:
    return lambda case: all(test(case) for test in tests)


_tachycardic = lambda case: case.hr is not None and case.hr > 100  # noqa: E731
_adult = lambda case: case.age is None or case.age >= 15  # noqa: E731  (unknown age: the adult limits)
_pregnant = _words(r"pregnan|\+ ?upt|positive pregnancy")
_female = lambda case: case.sex != "M"  # noqa: E731


def _lt(name: str, bound: float) -> Callable[[TriageCase], bool]:
    return lambda case: getattr(case, name) is not None and getattr(case, name) < bound


_chest_pain = _words(r"\bchest (pain|tightness|discomfort|pressure)|\bcp\b|angina|acute coronary|myocardial infarction|"
                     r"\bstemi\b|st-elevation")


def _chest_pain_with_risk(case: TriageCase) -> bool:
    if not _chest_pain(case):
        return False
    risky_vitals = (
        (case.hr is not None and case.hr > 100)
        or (case.sbp is not None and case.sbp < 90)
        or (case.spo2 is not None and case.spo2 < 94)
    )
    return (case.age is not None and case.age >= 40) or risky_vitals


RULES: tuple[SafetyRule, ...] = (
    SafetyRule("V-SPO2-90", 1, "Oxygen saturation below 90 %: severe respiratory compromise.",
               MODIFIERS_SOURCE, _lt("spo2", 90)),
    SafetyRule("V-SPO2-92", 2, "Oxygen saturation below 92 %: moderate respiratory compromise.",
               MODIFIERS_SOURCE, _lt("spo2", 92)),
    SafetyRule("V-AVPU-PU", 1, "Responds only to pain or is unresponsive.",
               MODIFIERS_SOURCE, lambda c: c.mental in ("P", "U")),
    SafetyRule("V-AVPU-V", 2, "Responds to voice only: altered level of consciousness.",
               MODIFIERS_SOURCE, lambda c: c.mental == "V"),
    SafetyRule("V-SBP-90", 2, "Systolic pressure below 90 mmHg: hemodynamic compromise.",
               MODIFIERS_SOURCE, _lt("sbp", 90)),
    # Adult limits (the KTAS adult tree is age 15 and over): an infant's heart rate of 150 or a
    # toddler's respiratory rate of 30 is normal. Children's limits are the ESI danger-zone
    # features the model reads (edge.protocol.ESI_DANGER_ZONE), not hard floors.
    SafetyRule("V-HR-EXTREME", 2, "Heart rate 150/min or more, or below 40/min (age 15 or over).",
               MODIFIERS_SOURCE, lambda c: _adult(c) and c.hr is not None and (c.hr >= 150 or c.hr < 40)),
    SafetyRule("V-RR-EXTREME", 2, "Respiratory rate 30/min or more, or below 8/min (age 15 or over).",
               MODIFIERS_SOURCE, lambda c: _adult(c) and c.rr is not None and (c.rr >= 30 or c.rr < 8)),
    SafetyRule("V-SEPSIS", 2, "Fever with three SIRS criteria: possible sepsis (age 15 or over).",
               MODIFIERS_SOURCE,
               lambda c: _adult(c) and c.temp_c is not None and c.temp_c >= 38.0 and sirs_count(c) >= 3),
    SafetyRule("V-HYPOTHERMIA", 2, "Core temperature below 32 °C.",
               MODIFIERS_SOURCE, _lt("temp_c", 32)),
    SafetyRule("C-ARREST", 1, "Complaint suggests cardiac or respiratory arrest or unresponsiveness.",
               "KTAS level 1 presentations",
               _words(r"cardiac arrest|\bcpr\b|cardiopulmonary resuscitation|\barrest\b|unresponsive|not breathing|apnea|\bdoa\b")),
    SafetyRule("C-ANAPHYLAXIS", 2, "Complaint suggests anaphylaxis or airway swelling.",
               "KTAS allergy/airway presentations",
               _words(r"anaphyla|throat (swelling|closing)|tongue swelling|angioedema")),
    SafetyRule("C-STROKE", 2, "Complaint suggests stroke: one-sided weakness, facial droop or speech change.",
               "KTAS neurology: stroke signs (onset < 3 h is level 2)",
               _words(r"stroke|hemipar|hemipleg|facial (droop|palsy)|slurred|dysarthri|aphasi|"
                      r"one[- ]sided weakness|(left|right|lt|rt)[ ,.-]*(sided? )?weakness|weakness,? (lt|rt|left|right)|"
                      r"\bcva\b|\btia\b|cerebrovascular accident|transient ischemic attack")),
    SafetyRule("C-SUICIDE", 2, "Complaint suggests suicidal ideation, self-harm or poisoning.",
               "KTAS mental health / toxicology presentations",
               _words(r"suicid|self[- ]harm|overdose|\bod\b|intoxicat|poison|ingestion|drug abuse|hanging")),
    SafetyRule("C-CHEST-RISK", 2, "Chest pain with a risk feature (age 40 or over, or abnormal vital sign).",
               "KTAS cardiovascular: chest pain, cardiac features",
               _chest_pain_with_risk),
    # KTAS's first-order modifier "high-risk mechanism". ESI has no such blanket floor: its handbook
    # sends a crash to level 2 only with loss of consciousness, and names penetrating wounds and falls
    # from height (the ESI-2-049/050/080 rows below). On US visits (NHAMCS 2016-2019) "motor vehicle
    # accident" alone was called level 1-2 by the nurse no more often than visits overall (12-16 %)
    # and ended in critical care or death no more often (0.4-2.5 %), while taking about 2 % of all visits.
    SafetyRule("C-MAJOR-TRAUMA", 2, "Complaint suggests a high-risk mechanism of injury.",
               MODIFIERS_SOURCE + ": mechanism of injury",
               _words(r"fall from height|fell from|pedestrian|motor ?cycle|\bmvc\b|\bmva\b|motor vehicle (collision|accident|crash)|\btai\b|"
                      r"traffic accident|car accident|gunshot|stab(bed| wound)?\b|crush(ed)? (injury|by|under)|ejected"), ("ktas",)),
    # A resolved seizure is KTAS 3; an ongoing one shows in AVPU and fires the V-AVPU rules.
    SafetyRule("C-SEIZURE", 3, "Complaint reports a seizure.",
               "KTAS neurology: seizure",
               _words(r"seizure|convuls|status epilep")),
    # ESI level-2 high-risk situations that the handbook sends to level 2 whatever the vital
    # signs (one row each, with the fact table's id). Cues are matched after ED shorthand is
    # expanded; negated cues ("denies SI") do not fire.
    SafetyRule("ESI-1-011", 1, "Active seizure on arrival.", ESI_SOURCE.format("ESI-1-011"),
               _words(r"actively seizing|\bseizing\b|status epilepticus|seizure (ongoing|in progress)"), ("esi",)),
    SafetyRule("ESI-2-037", 2, "Suicide attempt or suicidal complaint.", ESI_SOURCE.format("ESI-2-037"),
               _words(r"suicid|self[- ]harm|self[- ]inflicted|intentional (overdose|ingestion)"), ("esi",)),
    SafetyRule("ESI-2-081", 2, "Homicidal ideation or a threat to kill.", ESI_SOURCE.format("ESI-2-081"),
               _words(r"homicid|threatening to kill"), ("esi",)),
    SafetyRule("ESI-2-039", 2, "Sexual assault.", ESI_SOURCE.format("ESI-2-039"),
               _words(r"sexual(ly)? assault|\brape\b|\braped\b"), ("esi",)),
    SafetyRule("ESI-2-050", 2, "Penetrating wound: stab or gunshot.", ESI_SOURCE.format("ESI-2-050, ESI-1-017"),
               _words(r"\bstab(bed| wound)?\b|gunshot|\bgsw\b|\b(was|been|got|gotten|being) shot\b|impaled|penetrating (injury|wound|trauma)"),
               ("esi",)),
    SafetyRule("ESI-2-080", 2, "Fall from height (a ladder, a roof, about 10 feet or more).", ESI_SOURCE.format("ESI-2-080"),
               # the handbook's case is ~10 ft: a number must reach 10 feet or 3 metres
               _words(r"\b(fall|fell)\w* (from|off) (a |the )?(height|ladder|roof|balcony|scaffold\w*|tree|"
                      r"[1-9]\d+ ?(ft|feet|foot)\b|([3-9]|[1-9]\d+) ?(m|meters?|metres?)\b)"), ("esi",)),
    SafetyRule("ESI-2-049", 2, "Motor vehicle crash with loss of consciousness.", ESI_SOURCE.format("ESI-2-049"),
               _all(_words(r"\bmvc\b|\bmva\b|motor vehicle (collision|accident|crash)|car (accident|crash)|"
                           r"traffic (accident|collision)|motor ?cycle (accident|crash|collision)"),
                    _words(r"loss of consciousness|\bloc\b|unconscious|syncop|fainting|passed out|knocked out")), ("esi",)),
    SafetyRule("ESI-2-052", 2, "Vomiting blood or rectal bleeding with a fast heart rate (GI bleed).",
               ESI_SOURCE.format("ESI-2-023, ESI-2-052"),
               _all(_words(r"hematemesis|vomiting (of )?blood|coffee[- ]ground|melena|bright red blood per rectum|"
                           r"gi bleed|gastrointestinal bleed|blood in (the )?stool"), _tachycardic), ("esi",)),
    SafetyRule("ESI-2-032", 2, "Sudden testicular or scrotal pain: possible torsion.", ESI_SOURCE.format("ESI-2-032"),
               _words(r"testic\w* (pain|swelling)|scrot\w* (pain|swelling)|testicle pain|torsion"), ("esi",)),
    SafetyRule("ESI-2-034", 2, "Severe abdominal or pelvic pain, or bleeding with a fast heart rate, in pregnancy: "
               "possible ectopic pregnancy or miscarriage.", ESI_SOURCE.format("ESI-2-034, ESI-2-035"),
               # The handbook's cases are severe lower-quadrant pain, or bleeding with tachycardia, in a
               # known pregnancy; any pain in pregnancy fired on 0.9 % of US visits with a lower
               # critical-outcome rate than visits overall.
               _all(_female, _pregnant, _words(r"abd\w* pain|pelvic pain|lower quadrant|vaginal bleed|bleeding|"
                                               r"cramp|ectopic"),
                    lambda c: bool(re.search(r"ectopic", c.complaint, re.I)) or (c.pain is not None and c.pain >= 7)
                    or (c.hr is not None and c.hr > 100) or (c.sbp is not None and c.sbp < 90)), ("esi",)),
    SafetyRule("ESI-2-056", 2, "Sudden loss of vision.", ESI_SOURCE.format("ESI-2-056, ESI-2-078"),
               _words(r"(sudden|acute) (loss of vision|vision loss|blindness)|loss of vision|vision loss|can'?t see"),
               ("esi",)),
    SafetyRule("ESI-2-069", 2, "Infant under 28 days with fever, or under 90 days with low temperature.",
               ESI_SOURCE.format("ESI-2-069, ESI-2-070"), infant_temperature_flag, ("esi",)),
    SafetyRule("ESI-2-029", 2, "Fever in an immunocompromised patient (neutropenia, chemotherapy, transplant).",
               ESI_SOURCE.format("ESI-2-029, ESI-2-067"),
               _all(_words(r"neutropeni|chemo|transplant|immunocompromised|immunosuppress"),
                    lambda c: (c.temp_c is not None and c.temp_c >= 38.0) or bool(re.search(r"fever|febrile", c.complaint, re.I))),
               ("esi",)),
    SafetyRule("ESI-2-020", 2, "New confusion, disorientation or altered mental status.", ESI_SOURCE.format("ESI-2-020"),
               _words(r"altered (mental status|level of consciousness)|\bams\b|\baloc\b|new(ly)? confus|acute(ly)? confus|disorient"), ("esi",)),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}


def evaluate(case: TriageCase, scale: str = "ktas") -> list[FiredRule]:
    """Every rule of ``scale`` that fires on ``case``, most urgent first."""
    fired = [FiredRule(r.id, r.level, r.text) for r in RULES if scale in r.scales and r.applies(case)]
    return sorted(fired, key=lambda f: (f.level, f.id))


def rules_level(fired: list[FiredRule]) -> int | None:
    return min((f.level for f in fired), default=None)


def apply(level: int, fired: list[FiredRule]) -> int:
    """Raise-only: the more urgent of the model's level and every fired rule's level."""
    floor = rules_level(fired)
    return level if floor is None else min(level, floor)
