"""Readers that turn labelled triage files into triage cases (triage-time fields only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.case import TriageCase


@dataclass
class LabelledCase:
    """A parsed row: the case, its truth, the nurse's level where the file has one."""

    row: int
    case: TriageCase
    truth: int
    nurse: int | None = None


@dataclass
class UnusableRow:
    """A row that could not become a case, with the machine code of why (never its values)."""

    row: int
    code: str
    field: str | None = None


@dataclass
class Dataset:
    name: str
    cases: list[LabelledCase] = field(default_factory=list)
    unusable: list[UnusableRow] = field(default_factory=list)

    def unusable_summary(self) -> dict[str, Any]:
        by_code: dict[str, int] = {}
        for row in self.unusable:
            key = row.code if row.field is None else f"{row.code}:{row.field}"
            by_code[key] = by_code.get(key, 0) + 1
        return {"count": len(self.unusable), "by_reason": dict(sorted(by_code.items()))}
