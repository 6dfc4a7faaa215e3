"""KTAS loader on fixture rows written here (same layout as the real file: ';', Latin-1, CRLF)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clinical.datasets import DatasetError, ktas

HEADER = ("Group;Sex;Age;Patients number per hour;Arrival mode;Injury;Chief_complain;Mental;Pain;NRS_pain;"
          "SBP;DBP;HR;RR;BT;Saturation;KTAS_RN;Diagnosis in ED;Disposition;KTAS_expert;Error_group;"
          "Length of stay_min;KTAS duration_min;mistriage")
ROWS = [
    # 1: complete row, comma decimal in a non-input column
    "2;2;71;3;3;2;right ocular pain;1;1;2;160;100;84;18;36.6;100;2;Corneal abrasion;1;4;2;86;5,00;1",
    # 2: Excel error in NRS_pain with Pain=0 (no pain), blank saturation, nurse level 4
    "1;1;56;12;1;1;right forearm burn;1;0;#BOÞ!;137;75;60;20;36.5;;4;Burn of hand;1;5;4;64;3,95;1",
    # 3: '??' placeholders in vitals, public ambulance, responds to voice
    "1;1;80;5;2;1;dyspnea;2;1;5;??;??;??;??;??;??;2;Pneumonia;2;2;0;300;2,00;0",
    # 4: no expert label -> unusable, counted
    "1;2;40;5;3;1;headache;1;1;3;120;80;80;18;36.5;98;3;Headache;1;;0;60;2,00;0",
    # 5: complaint only '?' is still a (poor) complaint; Pain=1 but NRS unreadable -> pain missing
    "2;2;33;5;7;2;?;1;1;#BOÞ!;120;80;80;18;36.5;98;3;Unknown;1;3;0;60;2,00;0",
    # 6: blank complaint -> unusable
    "2;2;33;5;3;1;   ;1;1;3;120;80;80;18;36.5;98;3;Unknown;1;3;0;60;2,00;0",
    # 7: impossible temperature (365, a missing decimal point) and DBP above SBP -> those fields missing
    "2;1;45;5;4;1;abd pain;4;1;7;70;120;110;22;365;95;1;Shock;2;1;0;60;2,00;0",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("latin-1"))
    return path


def test_fixture_rows_become_cases_with_triage_time_fields_only(tmp_path: Path) -> None:
    data = ktas.load(write(tmp_path, ROWS))
    by_row = {c.row: c for c in data.cases}
    assert sorted(by_row) == [1, 2, 3, 5, 7]

    first = by_row[1]
    assert (first.truth, first.nurse) == (4, 2)
    assert first.case.to_dict() == {
        "complaint": "right ocular pain", "age": 71.0, "sex": "M", "arrival": "private", "injury": True,
        "mental": "A", "pain": 2.0, "sbp": 160.0, "dbp": 100.0, "hr": 84.0, "rr": 18.0, "temp_c": 36.6,
        "spo2": 100.0,
    }
    second = by_row[2].case
    assert (second.pain, second.spo2, second.arrival, second.injury, second.sex) == (0.0, None, "walk", False, "F")

    third = by_row[3].case
    assert (third.sbp, third.dbp, third.hr, third.rr, third.temp_c, third.spo2) == (None,) * 6
    assert (third.arrival, third.mental, by_row[3].truth) == ("ambulance", "V", 2)

    assert by_row[5].case.complaint == "?" and by_row[5].case.pain is None and by_row[5].case.arrival == "other"

    seventh = by_row[7].case
    assert (seventh.temp_c, seventh.sbp, seventh.dbp, seventh.hr, seventh.mental) == (None, None, None, 110.0, "U")


def test_unusable_and_set_missing_rows_are_counted_not_dropped(tmp_path: Path) -> None:
    data = ktas.load(write(tmp_path, ROWS))
    assert data.unusable_summary() == {
        "count": 2, "by_reason": {"empty_complaint:complaint": 1, "missing_label:KTAS_expert": 1}}
    assert data.fields_missing_summary() == {
        "count": 2, "by_reason": {"inconsistent:sbp+dbp": 1, "out_of_range:temp_c": 1}}
    assert len(data.cases) + len(data.unusable) == len(ROWS)


def test_outcome_columns_never_reach_the_case(tmp_path: Path) -> None:
    # Changing diagnosis, disposition, stay length, error group and mistriage changes nothing.
    changed = [r.replace("Corneal abrasion;1;4;2;86;5,00;1", "Cardiac arrest;7;4;9;9999;9,00;2") for r in ROWS]
    assert [c.case for c in ktas.load(write(tmp_path, changed)).cases] == \
        [c.case for c in ktas.load(write(tmp_path, ROWS)).cases]


def test_not_a_ktas_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        ktas.load(write(tmp_path, ROWS, header=HEADER.replace("KTAS_expert", "truth")))
    assert info.value.code == "bad_file" and "KTAS_expert" in info.value.message
    with pytest.raises(DatasetError) as missing:
        ktas.load(tmp_path / "nope.csv")
    assert missing.value.code == "file_missing"


def test_real_file_loads_every_row(ktas_csv: Path) -> None:
    data = ktas.load(ktas_csv)
    assert len(data.cases) + len(data.unusable) == 1014
    levels = [c.truth for c in data.cases]
    assert {lvl: levels.count(lvl) for lvl in range(1, 6)} == {1: 21, 2: 176, 3: 390, 4: 367, 5: 60}
    assert all(c.nurse in (1, 2, 3, 4, 5) for c in data.cases)


def test_a_copy_saved_as_utf8_reads_the_same(tmp_path: Path) -> None:
    latin = ktas.load(write(tmp_path, ROWS))
    rows = [r.replace("right ocular pain", "right ocular pain – Ø") for r in ROWS]
    path = tmp_path / "utf8.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8"))
    utf8 = ktas.load(path)
    assert [c.case.pain for c in utf8.cases] == [c.case.pain for c in latin.cases]  # '#BOÞ!' still a placeholder
    assert utf8.cases[0].case.complaint == "right ocular pain – Ø"
    assert len(utf8.cases) == len(latin.cases)
