"""Reader for the MIMIC-IV-ED format (PhysioNet): ``DIR/ed/triage.csv.gz`` + ``DIR/ed/edstays.csv.gz``.

``triage``: ``subject_id, stay_id, temperature`` (°F), ``heartrate, resprate, o2sat, sbp, dbp,
pain`` (free text), ``acuity`` (ESI 1-5, the truth), ``chiefcomplaint``.
``edstays``: ``subject_id, hadm_id, stay_id, intime, outtime, gender, race, arrival_transport,
disposition``. Joined on ``stay_id``. Only triage-time fields become inputs: never
``disposition``, ``outtime``, ``hadm_id`` or ``race``. The format has no nurse level besides the
truth, no AVPU and no injury flag, so those stay missing.

Age is not in the ED module. When ``DIR/hosp/patients.csv.gz`` (MIMIC-IV core) is there too, age
at the visit is ``anchor_age + (year of intime - anchor_year)``; otherwise age is missing.

Single implausible values become missing and are counted (see :mod:`edge.clinical.datasets`); pain text
that is not a number ("unable", "critical") is missing and counted under ``pain_not_numeric``.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path
from typing import IO, Any, Iterator

from edge.clinical.datasets import Dataset, DatasetError

TRIAGE_COLUMNS = ("stay_id", "temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp", "pain",
                  "acuity", "chiefcomplaint")
EDSTAYS_COLUMNS = ("stay_id", "gender", "arrival_transport")
PATIENTS_COLUMNS = ("subject_id", "anchor_age", "anchor_year")
_VITALS = {"heartrate": "hr", "resprate": "rr", "o2sat": "spo2", "sbp": "sbp", "dbp": "dbp"}
# Helicopter is emergency medical transport like an ambulance; UNKNOWN means not recorded.
# A US "walk-in" is anyone not brought by ambulance — mostly private vehicles, which KTAS codes
# as "private" (607 of 1,014 training rows, against 62 "walking"); map to that meaning.
ARRIVAL = {"WALK IN": "private", "AMBULANCE": "ambulance", "HELICOPTER": "ambulance", "OTHER": "other"}
SEX = {"F": "F", "M": "M"}

_NO_PAIN = {"denies", "none", "no pain", "no", "0/10", "zero", "nil"}
_NUMBER = r"(\d+(?:\.\d+)?)"
_SINGLE = re.compile(rf"{_NUMBER}\s*(?:/\s*10)?\s*\+?")            # 7 · 7.5 · 8/10 · 10+
_RANGE = re.compile(rf"{_NUMBER}\s*(?:-|to)\s*{_NUMBER}\s*(?:/\s*10)?")  # 8-9 · 4 to 6
_ABOVE_TEN = re.compile(r">\s*10(?:\s*/\s*10)?")                    # >10


def fahrenheit_to_celsius(value: float) -> float:
    return round((value - 32.0) * 5.0 / 9.0, 2)


def parse_pain(text: str | None) -> tuple[float | None, str | None]:
    """Free-text pain → (NRS 0-10 or None, note code or None).

    Blank → (None, None): not recorded. ``10/10`` → 10; a range ``8-9`` → the upper end (the
    patient reported up to that much, and under-rating pain is the costly direction); ``denies``
    → 0; words like ``unable``/``critical`` → (None, ``not_numeric``). A number above 10 is
    returned as is so the case validation counts it as out of range.
    """
    if text is None:
        return None, None
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned or cleaned in ("nan", "null"):
        return None, None
    if cleaned in _NO_PAIN:
        return 0.0, None
    if match := _SINGLE.fullmatch(cleaned):
        return float(match.group(1)), None
    if match := _RANGE.fullmatch(cleaned):
        return max(float(match.group(1)), float(match.group(2))), None
    if _ABOVE_TEN.fullmatch(cleaned):
        return 10.0, None
    return None, "not_numeric"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def _acuity(text: str | None) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value in (1, 2, 3, 4, 5) else None


def _year(timestamp: str | None) -> int | None:
    match = re.match(r"\s*(\d{4})-", timestamp or "")
    return int(match.group(1)) if match else None


def _find(directory: Path, module: str, table: str) -> Path | None:
    """``DIR/<module>/<table>.csv.gz``; also accepts DIR being the module folder, and plain .csv."""
    for folder in (directory / module, directory):
        for suffix in (".csv.gz", ".csv"):
            candidate = folder / f"{table}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, str]]:
    try:
        with _open(path) as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError("bad_file", f"{path.name} is not a MIMIC-IV-ED table: missing columns "
                                   f"{', '.join(missing)}.")
            yield from reader
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetError("file_unreadable", f"{path} could not be read ({type(error).__name__}); "
                           "check that it is an intact .csv.gz file.") from error


def _stays(path: Path) -> dict[str, tuple[str, str, int | None]]:
    """stay_id → (gender, arrival_transport, year of intime)."""
    return {
        row["stay_id"].strip(): ((row.get("gender") or "").strip().upper(),
                                 (row.get("arrival_transport") or "").strip().upper(), _year(row.get("intime")))
        for row in _rows(path, EDSTAYS_COLUMNS)
    }


def _anchors(path: Path | None) -> dict[str, tuple[float, int]]:
    """subject_id → (anchor_age, anchor_year) from MIMIC-IV core ``patients``, when present."""
    if path is None:
        return {}
    anchors = {}
    for row in _rows(path, PATIENTS_COLUMNS):
        age, year = _number(row.get("anchor_age")), _number(row.get("anchor_year"))
        if age is not None and year is not None:
            anchors[row["subject_id"].strip()] = (age, int(year))
    return anchors


def row_to_payload(row: dict[str, str], stay: tuple[str, str, int | None] | None,
                   anchor: tuple[float, int] | None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One triage row (+ its stay and patient) → a triage case payload (docs/design.md) (not yet validated)
    and the (code, field) pairs that were present but unreadable."""
    notes: list[tuple[str, str]] = []
    payload: dict[str, Any] = {"complaint": row.get("chiefcomplaint") or ""}
    temperature = _number(row.get("temperature"))
    if temperature is not None:
        payload["temp_c"] = fahrenheit_to_celsius(temperature)
    for column, name in _VITALS.items():
        value = _number(row.get(column))
        if value is not None:
            payload[name] = value
    pain, note = parse_pain(row.get("pain"))
    if note is not None:
        notes.append((note, "pain"))
    if pain is not None:
        payload["pain"] = pain
    if stay is None:
        notes.append(("no_edstays_row", "sex+arrival"))
        return payload, notes
    gender, transport, year = stay
    if gender in SEX:
        payload["sex"] = SEX[gender]
    if transport in ARRIVAL:
        payload["arrival"] = ARRIVAL[transport]
    if anchor is not None and year is not None:
        payload["age"] = anchor[0] + (year - anchor[1])
    return payload, notes


def load(directory: str | Path) -> Dataset:
    """Read a MIMIC-IV-ED directory. Row numbers count ``triage`` data rows from 1."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError("directory_missing", f"{directory} is not a directory; pass the MIMIC-IV-ED folder "
                           "that holds ed/triage.csv.gz and ed/edstays.csv.gz.")
    triage_path, stays_path = _find(directory, "ed", "triage"), _find(directory, "ed", "edstays")
    if triage_path is None or stays_path is None:
        absent = [name for name, p in (("ed/triage.csv.gz", triage_path), ("ed/edstays.csv.gz", stays_path)) if p is None]
        raise DatasetError("file_missing", f"{directory} lacks {' and '.join(absent)}; a MIMIC-IV-ED folder "
                           "holds both.")
    stays = _stays(stays_path)
    anchors = _anchors(_find(directory, "hosp", "patients"))
    dataset = Dataset(name=directory.name or str(directory))
    for number, row in enumerate(_rows(triage_path, TRIAGE_COLUMNS), start=1):
        stay = stays.get((row.get("stay_id") or "").strip())
        anchor = anchors.get((row.get("subject_id") or "").strip())
        payload, notes = row_to_payload(row, stay, anchor)
        dataset.add_row(number, payload, _acuity(row.get("acuity")), "acuity", notes=notes)
    return dataset
