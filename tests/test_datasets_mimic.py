"""MIMIC-IV-ED loader on fixture tables written here as gzip CSVs (no real data)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from edge.clinical.datasets import DatasetError
from edge.clinical.datasets.mimic import fahrenheit_to_celsius, load, parse_pain

TRIAGE_HEADER = ["subject_id", "stay_id", "temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp",
                 "pain", "acuity", "chiefcomplaint"]
STAYS_HEADER = ["subject_id", "hadm_id", "stay_id", "intime", "outtime", "gender", "race",
                "arrival_transport", "disposition"]
TRIAGE = [
    ["10", "100", "98.6", "88", "16", "99", "130", "80", "10/10", "2.0", "Chest pain"],
    ["11", "101", "", "", "", "", "", "", "", "4", "R Ankle sprain"],
    ["12", "102", "101.3", "120", "24", "93", "100", "60", "8-9", "3", "Abd pain, fever"],
    ["13", "103", "97.9", "70", "14", "100", "150", "90", "unable", "1", "s/p fall"],
    ["14", "104", "9.8", "80", "18", "98", "120", "70", "critical", "3", "Dizziness"],   # temp typo
    ["15", "105", "98.0", "80", "18", "98", "120", "70", "0", "", "Headache"],          # no acuity
    ["16", "106", "98.0", "80", "18", "98", "120", "70", "0", "5", ""],                 # no complaint
    ["17", "107", "98.0", "80", "18", "130", "80", "120", "13", "3", "Back pain"],      # o2sat, bp, pain impossible
    ["18", "999", "98.0", "80", "18", "98", "120", "70", "denies", "5", "Med refill"],  # no edstays row
    ["19", "108", "98.0", "80", "18", "98", "120", "70", "3", "3", "Cough"],
]
STAYS = [
    ["10", "", "100", "2180-01-01 10:00:00", "2180-01-01 14:00:00", "F", "WHITE", "AMBULANCE", "ADMITTED"],
    ["11", "", "101", "2180-01-02 10:00:00", "2180-01-02 11:00:00", "M", "ASIAN", "WALK IN", "HOME"],
    ["12", "", "102", "2180-01-03 10:00:00", "2180-01-03 11:00:00", "F", "OTHER", "HELICOPTER", "ADMITTED"],
    ["13", "", "103", "2180-01-04 10:00:00", "2180-01-04 11:00:00", "M", "OTHER", "UNKNOWN", "EXPIRED"],
    ["14", "", "104", "2180-01-05 10:00:00", "2180-01-05 11:00:00", "X", "OTHER", "OTHER", "HOME"],
    ["15", "", "105", "2180-01-05 10:00:00", "2180-01-05 11:00:00", "F", "OTHER", "WALK IN", "HOME"],
    ["16", "", "106", "2180-01-05 10:00:00", "2180-01-05 11:00:00", "F", "OTHER", "WALK IN", "HOME"],
    ["17", "", "107", "2180-01-05 10:00:00", "2180-01-05 11:00:00", "F", "OTHER", "WALK IN", "HOME"],
    ["19", "", "108", "2183-06-05 10:00:00", "2183-06-05 11:00:00", "M", "OTHER", "WALK IN", "HOME"],
]


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_mimic(root: Path, triage: list[list[str]] = TRIAGE, stays: list[list[str]] = STAYS) -> Path:
    write_table(root / "ed" / "triage.csv.gz", TRIAGE_HEADER, triage)
    write_table(root / "ed" / "edstays.csv.gz", STAYS_HEADER, stays)
    return root


@pytest.mark.parametrize("text, expected", [
    ("10/10", (10.0, None)), ("8/10", (8.0, None)), ("8-9", (9.0, None)), ("4 to 6", (6.0, None)),
    (" 7 ", (7.0, None)), ("7.5", (7.5, None)), ("10+", (10.0, None)), (">10", (10.0, None)),
    ("0", (0.0, None)), ("Denies", (0.0, None)), ("", (None, None)), (None, (None, None)),
    ("unable", (None, "not_numeric")), ("UTA", (None, "not_numeric")), ("critical", (None, "not_numeric")),
    ("13", (13.0, None)),  # returned as is: the case validation counts it out of range
])
def test_pain_text(text: str | None, expected: tuple[float | None, str | None]) -> None:
    assert parse_pain(text) == expected


def test_fahrenheit() -> None:
    assert fahrenheit_to_celsius(98.6) == 37.0 and fahrenheit_to_celsius(212) == 100.0


def test_fixture_rows_join_convert_and_map(tmp_path: Path) -> None:
    data = load(write_mimic(tmp_path))
    by_row = {c.row: c for c in data.cases}
    assert sorted(by_row) == [1, 2, 3, 4, 5, 8, 9, 10]
    assert all(c.nurse is None for c in data.cases)  # the format has no nurse level besides the truth

    assert by_row[1].truth == 2
    assert by_row[1].case.to_dict() == {
        "complaint": "Chest pain", "sex": "F", "arrival": "ambulance", "pain": 10.0, "sbp": 130.0,
        "dbp": 80.0, "hr": 88.0, "rr": 16.0, "temp_c": 37.0, "spo2": 99.0}
    assert by_row[2].case.to_dict() == {"complaint": "R Ankle sprain", "sex": "M", "arrival": "private"}
    assert (by_row[3].case.arrival, by_row[3].case.pain, by_row[3].case.temp_c) == ("ambulance", 9.0, 38.5)
    assert (by_row[4].case.arrival, by_row[4].case.pain, by_row[4].truth) == (None, None, 1)
    assert (by_row[5].case.temp_c, by_row[5].case.sex, by_row[5].case.arrival) == (None, None, "other")
    eighth = by_row[8].case
    assert (eighth.spo2, eighth.sbp, eighth.dbp, eighth.pain, eighth.hr) == (None, None, None, None, 80.0)
    assert (by_row[9].case.sex, by_row[9].case.pain) == (None, 0.0)
    assert all(c.case.age is None for c in data.cases)  # no hosp/patients table: age unknown


def test_every_row_is_accounted_for(tmp_path: Path) -> None:
    data = load(write_mimic(tmp_path))
    assert len(data.cases) + len(data.unusable) == len(TRIAGE)
    assert data.unusable_summary() == {
        "count": 2, "by_reason": {"empty_complaint:complaint": 1, "missing_label:acuity": 1}}
    assert data.fields_missing_summary()["by_reason"] == {
        "inconsistent:sbp+dbp": 1, "no_edstays_row:sex+arrival": 1, "not_numeric:pain": 2,
        "out_of_range:pain": 1, "out_of_range:spo2": 1, "out_of_range:temp_c": 1}


def test_outcome_columns_never_reach_the_case(tmp_path: Path) -> None:
    # hadm_id, outtime, race and disposition differ; every triage-time column is the same.
    other = [[r[0], "2999", r[2], r[3], "2199-01-01 00:00:00", r[5], "BLACK", r[7], "EXPIRED"] for r in STAYS]
    first = [c.case for c in load(write_mimic(tmp_path / "a")).cases]
    second = [c.case for c in load(write_mimic(tmp_path / "b", stays=other)).cases]
    assert first == second


def test_age_from_mimic_core_patients_when_present(tmp_path: Path) -> None:
    root = write_mimic(tmp_path)
    write_table(root / "hosp" / "patients.csv.gz", ["subject_id", "gender", "anchor_age", "anchor_year",
                                                     "anchor_year_group", "dod"],
                [["10", "F", "60", "2180", "2011 - 2013", ""], ["19", "M", "30", "2180", "2017 - 2019", ""]])
    by_row = {c.row: c.case for c in load(root).cases}
    assert by_row[1].age == 60.0 and by_row[10].age == 33.0 and by_row[2].age is None


def test_bad_directories_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as absent:
        load(tmp_path / "missing")
    assert absent.value.code == "directory_missing"
    write_table(tmp_path / "ed" / "triage.csv.gz", TRIAGE_HEADER, TRIAGE)
    with pytest.raises(DatasetError) as no_stays:
        load(tmp_path)
    assert no_stays.value.code == "file_missing" and "edstays" in no_stays.value.message
    write_table(tmp_path / "ed" / "edstays.csv.gz", ["stay_id", "sex"], [["100", "F"]])
    with pytest.raises(DatasetError) as bad:
        load(tmp_path)
    assert bad.value.code == "bad_file" and "gender" in bad.value.message
    (tmp_path / "ed" / "edstays.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError) as unreadable:
        load(tmp_path)
    assert unreadable.value.code == "file_unreadable"
