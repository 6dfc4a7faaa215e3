"""Missing-field augmentation and the partial-input views the build is scored on.

The labelled KTAS rows nearly always carry vitals, mental status, arrival mode and injury, but
the kiosk sends only complaint, age, sex and pain, and MIMIC-like feeds lack age, mental status
and injury. A head that never saw a missing vital reads "missing" as "abnormal" and over-triages
(kiosk view: accuracy 0.24, 75 % over-triage). So the heads also learn from copies of training
rows with a group of fields removed — same label, same soft target — and the build reports
out-of-fold metrics on those views of the held-out rows. Only training folds are augmented.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from edge.clinical.case import TriageCase

VITALS = ("sbp", "dbp", "hr", "rr", "temp_c", "spo2")
OTHER_OPTIONAL = ("mental", "arrival", "injury", "pain", "age", "sex")
# name -> fields set to None
VIEWS: dict[str, tuple[str, ...]] = {
    "no vitals": VITALS,
    "no other optional fields": OTHER_OPTIONAL,
    "kiosk (complaint, age, sex, pain)": VITALS + ("mental", "arrival", "injury"),
    "MIMIC-like (no age, mental, injury)": ("age", "mental", "injury"),
}
KIOSK = "kiosk (complaint, age, sex, pain)"
MIMIC_LIKE = "MIMIC-like (no age, mental, injury)"


def masked(case: TriageCase, fields: Sequence[str]) -> TriageCase:
    return replace(case, **{name: None for name in fields})


def view(cases: Sequence[TriageCase], name: str) -> list[TriageCase]:
    return [masked(c, VIEWS[name]) for c in cases]


def augmentation(cases: Sequence[TriageCase], fraction: float, seed: int) -> tuple[np.ndarray, list[TriageCase]]:
    """``round(fraction × len(cases))`` masked copies: (index of the source row, masked case).
    Sources are drawn without replacement while they last; each copy gets one view at random."""
    n = len(cases)
    count = int(round(fraction * n))
    if count <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64), []
    rng = np.random.default_rng(seed)
    sources = np.concatenate([rng.permutation(n) for _ in range(count // n + 1)])[:count]
    names = list(VIEWS)
    picks = rng.integers(0, len(names), size=count)
    return sources.astype(np.int64), [masked(cases[int(i)], VIEWS[names[int(p)]]) for i, p in zip(sources, picks)]
