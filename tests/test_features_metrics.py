"""Structured features (shared by build and run time) and the metric definitions of docs/design.md."""

from __future__ import annotations

import numpy as np
import pytest

from edge.clinical.case import parse_case
from edge.clinical.features import FEATURE_NAMES, N_FEATURES, encode_case, encode_cases, feature_spec
from edge.clinical.evaluation_metrics import compute
from edge.clinical.protocol import findings, pain_site, protocol_level


def test_missing_values_are_flagged_and_centred() -> None:
    x = encode_case(parse_case({"complaint": "cough"}))
    index = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert x.shape == (N_FEATURES,) and x.dtype == np.float32
    for name in ("age", "sbp", "hr", "spo2"):
        assert x[index[name]] == 0.0 and x[index[f"{name}_missing"]] == 1.0
    assert x[index["protocol_none"]] == 1.0


def test_extreme_values_are_clipped_not_extrapolated() -> None:
    x = encode_case(parse_case({"complaint": "cough", "hr": 300}))
    assert x[FEATURE_NAMES.index("hr")] == pytest.approx(5.0)


def test_protocol_findings_follow_the_modifier_table() -> None:
    low_sat = parse_case({"complaint": "dyspnea", "spo2": 88})
    assert protocol_level(low_sat) == 1
    septic = parse_case({"complaint": "fever", "temp_c": 39.0, "hr": 120, "rr": 24, "age": 40})
    assert any(f.group == "fever" and f.level == 2 for f in findings(septic))
    central = parse_case({"complaint": "abdominal pain", "pain": 9})
    peripheral = parse_case({"complaint": "ankle pain", "pain": 9})
    assert pain_site(central.complaint) == "central" and pain_site(peripheral.complaint) == "peripheral"
    assert [f.level for f in findings(central) if f.group == "pain"] == [2]
    assert [f.level for f in findings(peripheral) if f.group == "pain"] == [3]
    chronic = parse_case({"complaint": "chronic back pain", "pain": 9})
    assert [f.level for f in findings(chronic) if f.group == "pain"] == [3]


def test_batch_encoding_matches_single_and_spec_names() -> None:
    cases = [parse_case({"complaint": "cough", "age": 30}), parse_case({"complaint": "chest pain", "sex": "F"})]
    batch = encode_cases(cases)
    assert np.array_equal(batch[1], encode_case(cases[1]))
    assert feature_spec()["names"] == list(FEATURE_NAMES)
    assert encode_cases([]).shape == (0, N_FEATURES)


def test_metrics_follow_design_definitions() -> None:
    truth = [1, 2, 3, 4, 5, 3]
    pred = [2, 2, 4, 3, 5, 3]
    m = compute(truth, pred)
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["under_triage"] == pytest.approx(2 / 6)  # p > y: 1→2, 3→4
    assert m["over_triage"] == pytest.approx(1 / 6)  # p < y: 4→3
    assert m["critical_recall"] == pytest.approx(1.0)  # truth 1-2 predicted 1-2
    assert m["confusion"][0][1] == 1 and sum(map(sum, m["confusion"])) == 6
    perfect = compute([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert perfect["qwk"] == pytest.approx(1.0) and perfect["macro_f1"] == pytest.approx(1.0)
    assert compute([3, 3, 3, 2], [3, 3, 3, 3])["qwk"] == pytest.approx(0.0)


def test_nurse_on_visible_rows_matches_provenance(ktas_csv) -> None:
    from edge.clinical.datasets import ktas

    data = ktas.load(ktas_csv)
    m = compute([c.truth for c in data.cases], [c.nurse for c in data.cases])
    # PROVENANCE.md: accuracy 0.860, under-triage 10.0 %, over-triage 4.0 %, QWK 0.879 on these rows
    assert m["n"] == 1014
    assert m["accuracy"] == pytest.approx(0.860, abs=0.001)
    assert m["under_triage"] == pytest.approx(0.100, abs=0.001)
    assert m["qwk"] == pytest.approx(0.879, abs=0.001)
