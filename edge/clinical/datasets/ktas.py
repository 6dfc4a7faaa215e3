"""Reader for the KTAS file format (Moon et al. 2019, ``ktas-moon2019/data.csv``).

``;``-separated, Latin-1, CRLF; ``#BOÞ!`` (an Excel error) in ``NRS_pain``, ``??`` placeholders
in vitals, blank ``Saturation``. Only triage-time columns become inputs: never ``KTAS_RN``
(kept aside as the nurse's level for comparison), diagnosis, disposition, length of stay,
error group or mistriage.

Choices: ``#BOÞ!`` in ``NRS_pain`` with ``Pain`` = 0 means no pain (0); with ``Pain`` = 1 the
score is unknown (missing). A complaint of only ``?``/``??`` is kept as the text it is, as the
service would accept it: the vitals still carry the case, and dropping those rows would score
the model on an easier set than the nurse. A blank complaint or a missing ``KTAS_expert`` makes
the row unusable (counted); an impossible single value is set missing (counted), see
:mod:`edge.clinical.datasets`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from edge.clinical.datasets import Dataset, DatasetError

_ARRIVAL = {"1": "walk", "2": "ambulance", "3": "private", "4": "ambulance", "5": "other", "6": "other", "7": "other"}
_MENTAL = {"1": "A", "2": "V", "3": "P", "4": "U"}
_SEX = {"1": "F", "2": "M"}
_VITALS = {"SBP": "sbp", "DBP": "dbp", "HR": "hr", "RR": "rr", "BT": "temp_c", "Saturation": "spo2"}
REQUIRED_COLUMNS = ("Sex", "Age", "Arrival mode", "Injury", "Chief_complain", "Mental", "Pain",
                    "NRS_pain", *_VITALS, "KTAS_expert")


def _number(text: str | None) -> float | None:
    """Blank, ``??``, ``#BOÞ!`` and other placeholders mean "not recorded"."""
    if text is None:
        return None
    text = text.strip().replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def row_to_payload(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row → a triage case payload (docs/design.md) (not yet validated)."""
    payload: dict[str, Any] = {"complaint": (row.get("Chief_complain") or "").strip()}
    age = _number(row.get("Age"))
    if age is not None:
        payload["age"] = age
    if (sex := _SEX.get((row.get("Sex") or "").strip())) is not None:
        payload["sex"] = sex
    if (arrival := _ARRIVAL.get((row.get("Arrival mode") or "").strip())) is not None:
        payload["arrival"] = arrival
    injury = (row.get("Injury") or "").strip()
    if injury in ("1", "2"):
        payload["injury"] = injury == "2"
    if (mental := _MENTAL.get((row.get("Mental") or "").strip())) is not None:
        payload["mental"] = mental
    pain = _number(row.get("NRS_pain"))
    if pain is None and (row.get("Pain") or "").strip() == "0":
        pain = 0.0  # the `#BOÞ!` cells are the rows where the nurse recorded no pain
    if pain is not None:
        payload["pain"] = pain
    for column, name in _VITALS.items():
        value = _number(row.get(column))
        if value is not None:
            payload[name] = value
    return payload


def _level(text: str | None) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value in (1, 2, 3, 4, 5) else None


def load(path: str | Path) -> Dataset:
    """Read a KTAS file. Row numbers count data rows from 1 (the header is not a row)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("file_missing", f"{path} is not a file; pass the path of a KTAS data.csv.")
    raw = path.read_bytes()
    try:  # the published file is Latin-1; a copy re-saved as UTF-8 must read the same
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError("bad_file", f"{path.name} is not a KTAS file (';'-separated, Latin-1): "
                           f"missing columns {', '.join(missing)}.")
    dataset = Dataset(name=path.name)
    for number, row in enumerate(reader, start=1):
        dataset.add_row(number, row_to_payload(row), _level(row.get("KTAS_expert")), "KTAS_expert",
                        nurse=_level(row.get("KTAS_RN")))
    return dataset
