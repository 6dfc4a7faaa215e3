"""NHAMCS ED public-use rows → triage cases: codes, missing values, units, outcomes kept apart."""

from __future__ import annotations

import pytest

from edge.clinical.datasets import nhamcs
from tests.conftest import SHARED_DATA

LABELS = {"10501": "Chest pain", "14200": "Shortness of breath", "10100": "Fever", "89990": "Blank"}


def _row(**values):
    row = {"IMMEDR": 2, "RFV1": 10501, "RFV2": 14200, "RFV3": -9, "AGE": 67, "AGEDAYS": -7, "SEX": 2, "ARREMS": 1,
           "TEMPF": 986, "PULSE": 112, "RESPR": 22, "BPSYS": 150, "BPDIAS": 90, "POPCT": 94, "PAINSCALE": 7,
           "ADMIT": 1, "ADMITHOS": 1, "DIEDED": 0, "RACERETH": 2}
    row.update(values)
    return row


def test_a_visit_becomes_a_case_with_outcomes_kept_out_of_it() -> None:
    ds = nhamcs.load_rows([_row()], LABELS, "t")
    (labelled,) = ds.cases
    case = labelled.case
    assert case.complaint == "Chest pain; Shortness of breath"
    assert (case.age, case.sex, case.arrival) == (67, "M", "ambulance")
    assert case.temp_c == pytest.approx(37.0, abs=0.01)  # 986 = 98.6 °F, implied decimal
    assert (case.hr, case.rr, case.sbp, case.dbp, case.spo2, case.pain) == (112, 22, 150, 90, 94, 7)
    assert labelled.truth == 2 and labelled.nurse == 2
    assert labelled.critical_outcome is True and labelled.admitted is True
    assert labelled.groups["race_ethnicity"] == "non-Hispanic Black" and labelled.groups["age_band"] == "65-79"
    assert "ADMIT" not in str(case.to_dict())  # outcomes never reach the case


def test_missing_codes_and_doppler_values_become_missing() -> None:
    ds = nhamcs.load_rows([_row(PULSE=998, BPDIAS=998, TEMPF=-9, POPCT=-9, PAINSCALE=-8, SEX=1, ARREMS=2)], LABELS, "t")
    case = ds.cases[0].case
    assert case.hr is None and case.dbp is None and case.temp_c is None and case.spo2 is None and case.pain is None
    assert case.sex == "F" and case.arrival == "private"


def test_infants_take_their_age_in_days() -> None:
    case = nhamcs.load_rows([_row(AGE=0, AGEDAYS=20)], LABELS, "t").cases[0].case
    assert case.age == pytest.approx(20 / 365.25, abs=1e-3)


def test_unusable_rows_are_counted_by_reason() -> None:
    rows = [_row(IMMEDR=-9), _row(IMMEDR=7), _row(IMMEDR=0), _row(RFV1=-9, RFV2=-9), _row(RFV1=12345, RFV2=-9),
            _row(RFV1=89990, RFV2=-9), _row()]
    ds = nhamcs.load_rows(rows, LABELS, "t")
    assert len(ds.cases) == 1
    assert ds.unusable_summary()["by_reason"] == {"missing_label:IMMEDR": 3, "no_reason_for_visit:RFV1": 1,
                                                  "unknown_rfv_code:RFV1": 2}


def test_a_file_that_is_not_sas_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "ed2021_sas.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(nhamcs.DatasetError) as info:
        nhamcs.load(bad, LABELS)
    assert info.value.code == "dataset_unreadable"
    with pytest.raises(nhamcs.DatasetError) as missing:
        nhamcs.load(tmp_path / "absent.zip", LABELS)
    assert missing.value.code == "dataset_not_found"


def test_the_real_2020_file_matches_its_provenance() -> None:
    path = SHARED_DATA / "nhamcs-ed-2016-2020" / "ed2020_sas.zip"
    if not path.is_file():
        pytest.skip(f"NHAMCS data not found at {path}")
    ds = nhamcs.load(path)
    # PROVENANCE.md: 9,624 visits with a triage level in 2020; a handful lack a usable reason for visit.
    assert len(ds.cases) + sum(1 for u in ds.unusable if u.code != "missing_label") == 9624
    critical = [c for c in ds.cases if c.critical_outcome]
    nurse_share = sum(c.truth <= 2 for c in critical) / len(critical)
    assert 200 < len(critical) < 260 and 0.55 < nurse_share < 0.70
