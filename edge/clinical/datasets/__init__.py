"""Readers that turn labelled triage files into triage cases (triage-time fields only).

Every row either becomes a :class:`LabelledCase` or is recorded in ``Dataset.unusable`` with the
machine code of why; nothing is dropped silently.

Policy for a single implausible value (a temperature of 2 °C, an SpO2 of 120 %, a DBP above the
SBP): the row stays usable and *that field* becomes "not recorded", counted in
``Dataset.fields_set_missing`` by ``code:field``. Why: these files are historical records that
nobody can correct at the bedside any more; throwing the whole visit away (complaint, other
vitals, label) would bias an evaluation toward the tidy rows, while a blank field is a
situation the model is built for (missing-value indicators) and the service sees every day.
The service itself still answers such a value with a 400 (``edge.clinical.case.parse_case``), because
there a person can fix it. Rows without a label or without a usable complaint are unusable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from edge.clinical.case import NUMERIC_BOUNDS, TriageCase, parse_case
from edge.errors import CaseError, EdgeError

# Codes of errors about one numeric value; the value is set missing instead of losing the row.
_FIELD_LEVEL_CODES = ("out_of_range", "not_finite", "wrong_type")


class DatasetError(EdgeError):
    """The file or directory is not a readable labelled data set (wrong path, wrong format)."""


@dataclass
class LabelledCase:
    """A parsed row: the case, its truth, the nurse's level where the file has one."""

    row: int
    case: TriageCase
    truth: int
    nurse: int | None = None
    # Evaluation-only facts that are never model inputs (NHAMCS): the visit ended in a critical
    # care unit or in death in the ED; the patient was admitted; subgroup labels for reporting.
    critical_outcome: bool | None = None
    admitted: bool | None = None
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class UnusableRow:
    """A row that could not become a case, with the machine code of why (never its values)."""

    row: int
    code: str
    field: str | None = None


def _count(items: dict[str, int]) -> dict[str, Any]:
    return {"count": sum(items.values()), "by_reason": dict(sorted(items.items()))}


@dataclass
class Dataset:
    name: str
    cases: list[LabelledCase] = field(default_factory=list)
    unusable: list[UnusableRow] = field(default_factory=list)
    # "code:field" -> how many rows had that field set to "not recorded" (see module docstring).
    fields_set_missing: dict[str, int] = field(default_factory=dict)

    def note_missing(self, code: str, field_name: str) -> None:
        key = f"{code}:{field_name}"
        self.fields_set_missing[key] = self.fields_set_missing.get(key, 0) + 1

    def unusable_summary(self) -> dict[str, Any]:
        by_code: dict[str, int] = {}
        for row in self.unusable:
            key = row.code if row.field is None else f"{row.code}:{row.field}"
            by_code[key] = by_code.get(key, 0) + 1
        return _count(by_code)

    def fields_missing_summary(self) -> dict[str, Any]:
        return _count(self.fields_set_missing)

    def add_row(self, row: int, payload: Mapping[str, Any], truth: int | None, truth_column: str,
                nurse: int | None = None, notes: Sequence[tuple[str, str]] = (),
                **evaluation_only: Any) -> LabelledCase | None:
        """Validate one row's payload into a case, or record why it is unusable. ``notes`` are
        (code, field) pairs the reader already set missing; they count only for usable rows."""
        if truth is None:
            self.unusable.append(UnusableRow(row, "missing_label", truth_column))
            return None
        try:
            case, dropped = parse_leniently(payload)
        except CaseError as error:
            self.unusable.append(UnusableRow(row, error.code, error.field))
            return None
        for code, field_name in [*notes, *dropped]:
            self.note_missing(code, field_name)
        labelled = LabelledCase(row, case, truth, nurse, **evaluation_only)
        self.cases.append(labelled)
        return labelled


def parse_leniently(payload: Mapping[str, Any]) -> tuple[TriageCase, list[tuple[str, str]]]:
    """:func:`parse_case`, except that an implausible numeric field becomes missing instead of
    failing the row; returns the case and the (code, field) pairs set missing. Errors about the
    complaint or a categorical field still raise."""
    values = dict(payload)
    dropped: list[tuple[str, str]] = []
    for _ in range(len(NUMERIC_BOUNDS) + 1):  # each retry removes one field, so this ends
        try:
            return parse_case(values), dropped
        except CaseError as error:
            if error.code == "inconsistent" and error.field == "dbp":
                # DBP above SBP: one of the two is wrong and we cannot tell which.
                values.pop("sbp", None)
                values.pop("dbp", None)
                dropped.append((error.code, "sbp+dbp"))
            elif error.code in _FIELD_LEVEL_CODES and error.field in NUMERIC_BOUNDS:
                values.pop(error.field, None)
                dropped.append((error.code, error.field))
            else:
                raise
    raise AssertionError("unreachable: every retry removes a field")
