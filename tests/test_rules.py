"""Each safety rule: fires on its case, stays quiet on a near miss, and only ever raises acuity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.clinical import rules
from edge.clinical.case import ARRIVALS, MENTAL_STATES, NUMERIC_BOUNDS, TriageCase

C = TriageCase

# rule id -> (cases it must fire on, near misses it must not fire on)
RULE_CASES: dict[str, tuple[list[TriageCase], list[TriageCase]]] = {
    "V-SPO2-90": ([C("cough", spo2=89), C("cough", spo2=70)], [C("cough", spo2=90), C("cough")]),
    "V-SPO2-92": ([C("cough", spo2=91), C("cough", spo2=85)], [C("cough", spo2=92)]),
    "V-AVPU-PU": ([C("found down", mental="P"), C("found down", mental="U")],
                  [C("found down", mental="V"), C("found down", mental="A")]),
    "V-AVPU-V": ([C("confused", mental="V")], [C("confused", mental="A"), C("confused", mental="P")]),
    "V-SBP-90": ([C("dizziness", sbp=89, dbp=50)], [C("dizziness", sbp=90, dbp=50)]),
    "V-HR-EXTREME": ([C("palpitations", hr=150), C("syncope", hr=39), C("palpitations", hr=150, age=15)],
                     [C("palpitations", hr=149), C("syncope", hr=40), C("fever", hr=160, age=0.5)]),
    "V-RR-EXTREME": ([C("dyspnea", rr=30), C("drowsy", rr=7), C("dyspnea", rr=30, age=40)],
                     [C("dyspnea", rr=29), C("drowsy", rr=8), C("cough", rr=36, age=1)]),
    "V-SEPSIS": ([C("fever", temp_c=38.5, hr=110, rr=24)],
                 [C("fever", temp_c=38.5, hr=110, rr=18), C("fever", temp_c=37.5, hr=110, rr=24),
                  C("fever", temp_c=38.5, hr=130, rr=30, age=2)]),
    "V-HYPOTHERMIA": ([C("found outside", temp_c=31.5)], [C("found outside", temp_c=32.0)]),
    "C-ARREST": ([C("cardiac arrest"), C("unresponsive at home"), C("CPR in progress"), C("not breathing")],
                 [C("arrested for shoplifting, knee abrasion".replace("arrested", "detained"))]),
    "C-ANAPHYLAXIS": ([C("anaphylaxis after peanuts"), C("throat swelling after bee sting"), C("angioedema")],
                      [C("itchy rash after peanuts")]),
    "C-STROKE": ([C("transient ischemic attack"), C("cerebrovascular accident"), C("left sided weakness"), C("right-sided weakness"), C("rt side weakness"), C("facial droop"), C("slurred speech"), C("r/o CVA"), C("TIA symptoms")],
                 [C("generalised weakness"), C("sore throat")]),
    "C-SUICIDE": ([C("suicidal ideation"), C("overdose of tablets"), C("self-harm cuts"), C("drug intoxication")],
                  [C("depressed mood, no thoughts of harm")]),
    "C-CHEST-RISK": ([C("chest pain", age=55), C("chest tightness", age=25, hr=120), C("CP", age=30, spo2=92)],
                     [C("chest pain", age=25, hr=80), C("chest wall bruise", age=60)]),
    "C-MAJOR-TRAUMA": ([C("motor vehicle collision, restrained driver"), C("pedestrian struck by car"), C("fell from ladder"), C("stab wound abdomen"), C("MVC")],
                       [C("fell on ice, wrist pain".replace("fell on", "slipped on"))]),
    "C-SEIZURE": ([C("seizure at home"), C("convulsions")], [C("headache")]),
    # ESI high-risk rows (ESI scale only); near misses keep the cue word but not the situation.
    "ESI-1-011": ([C("actively seizing on arrival"), C("status epilepticus")], [C("seizure yesterday, now alert")]),
    "ESI-2-037": ([C("suicidal ideation"), C("intentional overdose"), C("self-inflicted laceration wrist")],
                  [C("denies suicidal thoughts, wants med refill"), C("accidental laceration wrist")]),
    "ESI-2-081": ([C("homicidal ideation"), C("threatening to kill neighbour")], [C("angry at neighbour")]),
    "ESI-2-039": ([C("sexual assault last night"), C("reports rape")], [C("assaulted, punched in face")]),
    "ESI-2-050": ([C("stab wound to the abdomen"), C("stabbed in the back"), C("gunshot wound left thigh"), C("GSW to chest"),
                   C("was shot in the leg")],
                  [C("stabbing chest pain"), C("shot of insulin missed"), C("puncture wound foot, stepped on a nail"),
                   C("flu shot in the arm yesterday, arm sore")]),
    "ESI-2-080": ([C("fell from a ladder, back pain"), C("fall from roof"), C("fell off the balcony"), C("fall from 12 feet"),
                   C("fell from 4 m scaffolding")],
                  [C("fell from standing, hip pain"), C("fell off bed"), C("mechanical fall at home"), C("fall from 3 feet"),
                   C("fell off 2 m wall")]),
    "ESI-2-049": ([C("MVC with loss of consciousness"), C("motor vehicle accident; fainting (syncope)"), C("car accident, +LOC")],
                  [C("MVC, restrained driver, neck pain"), C("MVC, no LOC"), C("syncope at church")]),
    "ESI-2-052": ([C("vomiting blood", hr=118), C("melena for 2 days", hr=104)],
                  [C("vomiting blood", hr=88), C("vomiting", hr=120)]),
    "ESI-2-032": ([C("sudden testicular pain", sex="M", age=15), C("scrotal swelling and pain")],
                  [C("groin rash")]),
    "ESI-2-034": ([C("pregnant, lower abdominal pain", sex="F", pain=8), C("positive pregnancy test, vaginal bleeding", sex="F", hr=112),
                   C("pregnant, r/o ectopic", sex="F")],
                  [C("pregnant, lower abdominal pain", sex="F", pain=4, hr=88), C("lower abdominal pain", sex="F", pain=9),
                   C("pregnant, wants prenatal vitamins", sex="F", pain=8)]),
    "ESI-2-056": ([C("sudden loss of vision right eye"), C("vision loss left eye")], [C("blurry vision, needs glasses")]),
    "ESI-2-069": ([C("fever", age=14 / 365.25, temp_c=38.2), C("cold, feeding poorly", age=60 / 365.25, temp_c=36.0)],
                  [C("fever", age=40 / 365.25, temp_c=38.2), C("fever", age=14 / 365.25, temp_c=37.5)]),
    "ESI-2-029": ([C("fever, on chemotherapy"), C("neutropenic", temp_c=38.4)],
                  [C("on chemotherapy, nausea", temp_c=37.0)]),
    "ESI-2-020": ([C("altered level of consciousness"), C("altered mental status"), C("new confusion since morning"), C("disoriented")],
                  [C("chronic dementia, baseline, fall")]),
}


def test_every_rule_has_a_test_and_a_source() -> None:
    assert set(RULE_CASES) == set(rules.RULES_BY_ID), "add firing and near-miss cases for each new rule"
    for rule in rules.RULES:
        assert rule.text and rule.source and 1 <= rule.level <= 5


@pytest.mark.parametrize("rule_id", sorted(RULE_CASES))
def test_rule_fires_on_its_cases_and_not_on_near_misses(rule_id: str) -> None:
    firing, quiet = RULE_CASES[rule_id]
    rule = rules.RULES_BY_ID[rule_id]
    for case in firing:
        assert rule.applies(case), f"{rule_id} should fire on {case}"
        fired = rules.evaluate(case, rule.scales[0])
        assert rule_id in {f.id for f in fired}
        assert rules.apply(5, fired) <= rule.level  # the level is raised to at least the rule's
    for case in quiet:
        assert not rule.applies(case), f"{rule_id} should not fire on {case}"


def test_esi_rows_fire_only_on_the_esi_scale() -> None:
    case = C("suicidal ideation")
    assert "ESI-2-037" in {f.id for f in rules.evaluate(case, "esi")}
    assert "ESI-2-037" not in {f.id for f in rules.evaluate(case, "ktas")}
    for rule in rules.RULES:
        if rule.id.startswith("ESI-"):
            assert rule.scales == ("esi",) and "esi-high-risk" in rule.source


def test_negated_cues_do_not_fire() -> None:
    for text in ("denies chest pain", "no suicidal ideation", "without slurred speech"):
        fired = {f.id for f in rules.evaluate(C(text, age=70), "esi")}
        assert not fired & {"C-CHEST-RISK", "C-SUICIDE", "ESI-2-037", "C-STROKE"}, text
    assert "C-CHEST-RISK" in {f.id for f in rules.evaluate(C("no fever, chest pain", age=70))}


def test_no_rule_fires_on_a_minor_case() -> None:
    assert rules.evaluate(C("ankle sprain", age=25, hr=80, rr=16, sbp=125, dbp=80, spo2=99, temp_c=36.8,
                            mental="A", pain=3)) == []


def test_fired_rules_are_listed_most_urgent_first() -> None:
    fired = rules.evaluate(C("chest pain", age=70, spo2=85, mental="V"))
    assert [f.level for f in fired] == sorted(f.level for f in fired)
    assert fired[0].id == "V-SPO2-90"


def _number(name: str):
    low, high, _ = NUMERIC_BOUNDS[name]
    return st.one_of(st.none(), st.floats(low, high, allow_nan=False))


cases = st.builds(
    TriageCase,
    complaint=st.sampled_from(["cough", "chest pain", "stroke", "overdose", "seizure", "rash", "fell from roof",
                               "anaphylaxis", "unresponsive", "ankle sprain"]),
    age=_number("age"), arrival=st.one_of(st.none(), st.sampled_from(ARRIVALS)),
    mental=st.one_of(st.none(), st.sampled_from(MENTAL_STATES)), pain=_number("pain"), sbp=_number("sbp"),
    hr=_number("hr"), rr=_number("rr"), temp_c=_number("temp_c"), spo2=_number("spo2"),
)


@settings(max_examples=300, deadline=None)
@given(case=cases, model_level=st.integers(1, 5), scale=st.sampled_from(["ktas", "esi"]))
def test_rules_only_raise_never_lower(case: TriageCase, model_level: int, scale: str) -> None:
    fired = rules.evaluate(case, scale)
    final = rules.apply(model_level, fired)
    assert final <= model_level
    assert final == min([model_level, *[f.level for f in fired]])
