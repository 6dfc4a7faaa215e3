"""NHAMCS emergency-department public-use files (CDC/NCHS) → labelled triage cases.

Reads CDC's SAS files as distributed (``edYYYY_sas.zip`` holding ``edYYYY_sas.sas7bdat``, or the
bare ``.sas7bdat``). What becomes of each column:

- complaint: the first three reason-for-visit codes (``RFV1``-``RFV3``) as CDC's own labels,
  joined with "; " (the label map ships in the model bundle as ``rfv_labels``; codes without a
  label are skipped, a visit with none left is unusable ``no_reason_for_visit``);
- ``AGE`` (years; ``AGEDAYS`` under one year), ``SEX`` (1 F, 2 M), ``ARREMS`` (1 ambulance, 2 not:
  ``private`` — a US non-ambulance arrival is mostly a private vehicle, the meaning MIMIC-IV-ED's
  "WALK IN" maps to as well, so every US source encodes it alike), ``TEMPF`` (°F with an implied decimal: 968 = 96.8 °F, converted to °C), ``PULSE``,
  ``RESPR``, ``BPSYS``, ``BPDIAS``, ``POPCT``, ``PAINSCALE``; negative values are CDC's missing
  codes and 998 in PULSE/BPDIAS means "Doppler/palpated" (no number) — all become missing;
- truth: ``IMMEDR`` 1-5, the level the hospital's triage nurse recorded (0, 7 and the negative
  codes mean no triage level: unusable ``missing_label``);
- evaluation only, never inputs: ``ADMIT`` = 1 (critical care unit) or ``DIEDED`` = 1 is the
  critical outcome; ``ADMITHOS`` = 1 marks an admitted visit; sex, age band, ambulance arrival and
  race/ethnicity (``RACERETH``) are subgroup labels.

pandas reads the SAS format; it is an evaluation/build dependency (the ``eval`` extra), imported
only here, never by the service.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from edge.clinical.datasets import Dataset, DatasetError

RFV_COLUMNS = ("RFV1", "RFV2", "RFV3")
VITALS = {"PULSE": "hr", "RESPR": "rr", "BPSYS": "sbp", "BPDIAS": "dbp", "POPCT": "spo2", "PAINSCALE": "pain"}
NO_NUMBER = {"PULSE": 998, "BPDIAS": 998, "BPSYS": 998}  # "Doppler"/"palpated": measured, no value
RACE = {1: "non-Hispanic White", 2: "non-Hispanic Black", 3: "Hispanic", 4: "non-Hispanic other"}
NEEDED = ("IMMEDR", "RFV1")
# CDC labels that are bookkeeping, not a complaint.
_NOT_A_COMPLAINT = re.compile(r"blank|illegible|inadequate data|refused care|entry of \"?none", re.IGNORECASE)


def age_band(age: float | None) -> str:
    """Reporting bands with children split out (DESIGN: subgroups by age band with children)."""
    if age is None:
        return "unknown"
    if age < 2:
        return "0-1"
    if age < 18:
        return "2-17"
    if age < 45:
        return "18-44"
    if age < 65:
        return "45-64"
    if age < 80:
        return "65-79"
    return "80+"


def _value(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or number < 0:
        return None
    return number


def _code(value: Any) -> str | None:
    number = _value({"v": value}, "v")
    if number is None:
        return None
    return f"{int(number):05d}"


def complaint_from_codes(codes: Sequence[str], labels: Mapping[str, str]) -> str:
    texts = []
    for code in codes:
        text = labels.get(code)
        if text and not _NOT_A_COMPLAINT.search(text) and text not in texts:
            texts.append(text.rstrip(". "))
    return "; ".join(texts)


def row_payload(row: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The triage-time payload of one visit and its reason-for-visit codes."""
    codes = [c for c in (_code(row.get(col)) for col in RFV_COLUMNS) if c is not None]
    payload: dict[str, Any] = {"complaint": complaint_from_codes(codes, labels)}
    age = _value(row, "AGE")
    days = _value(row, "AGEDAYS")
    if age is not None:
        payload["age"] = round(days / 365.25, 3) if age < 1 and days is not None else age
    sex = _value(row, "SEX")
    if sex in (1, 2):
        payload["sex"] = "F" if sex == 1 else "M"
    arrival = _value(row, "ARREMS")
    if arrival in (1, 2):
        payload["arrival"] = "ambulance" if arrival == 1 else "private"
    temp = _value(row, "TEMPF")
    if temp is not None:
        payload["temp_c"] = round((temp / 10.0 - 32.0) * 5.0 / 9.0, 2)
    for column, name in VITALS.items():
        value = _value(row, column)
        if value is not None and value != NO_NUMBER.get(column):
            payload[name] = value
    return payload, codes


def _level(row: Mapping[str, Any]) -> int | None:
    value = _value(row, "IMMEDR")
    return int(value) if value is not None and 1 <= value <= 5 else None


def _flag(row: Mapping[str, Any], column: str, yes: float = 1) -> bool | None:
    value = _value(row, column)
    return None if value is None else value == yes


def read_sas(path: Path) -> list[dict[str, Any]]:
    """Rows of one SAS file (zipped as CDC distributes it, or bare) as dicts of upper-case columns."""
    try:
        import pandas as pd
    except ImportError as error:  # the service never needs this; evaluation does
        raise DatasetError("reader_unavailable", "Reading NHAMCS SAS files needs pandas: "
                                                 "pip install 'edge-triage[eval]' (or pandas).") from error
    if not path.is_file():
        raise DatasetError("dataset_not_found", f"{path} does not exist; pass an NHAMCS edYYYY_sas.zip or .sas7bdat file.")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".sas7bdat")]
                if not members:
                    raise DatasetError("dataset_unreadable", f"{path.name} holds no .sas7bdat file.")
                data = archive.read(members[0])
            frame = pd.read_sas(io.BytesIO(data), format="sas7bdat", encoding="latin-1")
        else:
            frame = pd.read_sas(str(path), format="sas7bdat", encoding="latin-1")
    except DatasetError:
        raise
    except Exception as error:  # pandas raises several types for a file that is not SAS
        raise DatasetError("dataset_unreadable", f"{path.name} is not a readable SAS file ({type(error).__name__}).") from error
    frame.columns = [str(c).upper() for c in frame.columns]
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise DatasetError("dataset_unreadable", f"{path.name} lacks the NHAMCS column(s) {', '.join(missing)}.")
    wanted = [c for c in (*NEEDED, *RFV_COLUMNS, "AGE", "AGEDAYS", "SEX", "ARREMS", "TEMPF", *VITALS,
                          "ADMIT", "ADMITHOS", "DIEDED", "RACERETH") if c in frame.columns]
    return frame[list(dict.fromkeys(wanted))].to_dict("records")


def load_rows(rows: Iterable[Mapping[str, Any]], labels: Mapping[str, str], name: str,
              dataset: Dataset | None = None, start_row: int = 0) -> Dataset:
    dataset = dataset or Dataset(name)
    for offset, row in enumerate(rows):
        index = start_row + offset
        truth = _level(row)
        payload, codes = row_payload(row, labels)
        if truth is not None and not payload["complaint"]:
            dataset.unusable.append(_unusable(index, "no_reason_for_visit" if not codes else "unknown_rfv_code"))
            continue
        critical = bool(_flag(row, "ADMIT") or _flag(row, "DIEDED"))
        case_age = payload.get("age")
        race = _value(row, "RACERETH")
        groups = {"sex": payload.get("sex", "unknown"), "age_band": age_band(case_age),
                  "arrival": {"ambulance": "ambulance"}.get(payload.get("arrival", ""), "not ambulance"
                                                            if "arrival" in payload else "unknown"),
                  "race_ethnicity": RACE.get(int(race), "unknown") if race is not None else "unknown"}
        dataset.add_row(index, payload, truth, "IMMEDR", nurse=truth, critical_outcome=critical,
                        admitted=bool(_flag(row, "ADMITHOS")), groups=groups)
    return dataset


def _unusable(row: int, code: str):
    from edge.clinical.datasets import UnusableRow

    return UnusableRow(row, code, "RFV1")


def default_labels() -> dict[str, str]:
    """CDC's reason-for-visit labels: from $EDGE_TRIAGE_RFV_LABELS, the model bundle's copy, or
    the shared data folder beside a checkout."""
    import os

    candidates = []
    if os.environ.get("EDGE_TRIAGE_RFV_LABELS"):
        candidates.append(Path(os.environ["EDGE_TRIAGE_RFV_LABELS"]))
    repo = Path(__file__).resolve().parents[3]  # edge/clinical/datasets/ -> the checkout
    candidates += [repo / "models" / "triage-minilm-int8" / "rfv_labels.json",
                   repo.parent / "shared" / "data" / "nhamcs-ed-2016-2020" / "rfv_labels.json"]
    for candidate in candidates:
        if candidate.is_file():
            return {str(k): str(v) for k, v in json.loads(candidate.read_text(encoding="utf-8")).items()}
    raise DatasetError("rfv_labels_missing", "No reason-for-visit label map found; set EDGE_TRIAGE_RFV_LABELS to "
                                             "an rfv_labels.json (code -> text).")


def load(paths: str | Path | Sequence[str | Path], labels: Mapping[str, str] | None = None) -> Dataset:
    """One data set from one or more NHAMCS ED files (rows numbered across files)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    labels = labels if labels is not None else default_labels()
    dataset = Dataset("nhamcs-ed:" + ",".join(p.name for p in paths))
    start = 0
    for path in paths:
        rows = read_sas(path)
        load_rows(rows, labels, dataset.name, dataset, start)
        start += len(rows)
    return dataset
