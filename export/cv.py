"""Repeated stratified cross-validation splits, fixed seeds, shared by every model we compare,
so baselines, teacher and student are scored on exactly the same out-of-fold rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

DEFAULT_SPLITS = 5
DEFAULT_REPEATS = 2
DEFAULT_SEED = 20261124


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def stratified_folds(labels: Sequence[int], n_splits: int = DEFAULT_SPLITS, repeats: int = DEFAULT_REPEATS,
                     seed: int = DEFAULT_SEED) -> Iterator[Fold]:
    """Deal each class's shuffled indices round-robin into folds: every fold gets its share of
    the 21 KTAS-1 rows. Pure numpy so the split does not depend on a library version."""
    y = np.asarray(labels)
    for repeat in range(repeats):
        rng = np.random.default_rng(seed + repeat)
        assignment = np.empty(len(y), dtype=np.int64)
        offset = 0
        for label in np.unique(y):
            members = np.flatnonzero(y == label)
            rng.shuffle(members)
            assignment[members] = (np.arange(len(members)) + offset) % n_splits
            offset += len(members)  # rotate so small classes do not always start at fold 0
        for fold in range(n_splits):
            yield Fold(repeat, fold, np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold))


def fold_table(levels: np.ndarray, truth: np.ndarray, folds: list) -> dict[str, dict[str, float]]:
    """Mean ± sd over the folds (of every repeat present in ``levels`` [R, n])."""
    from edge.clinical.evaluation_metrics import compute

    per_fold = [compute(truth[f.test], levels[f.repeat, f.test]) for f in folds if f.repeat < levels.shape[0]]
    table = {}
    for key in ("accuracy", "macro_f1", "qwk", "under_triage", "over_triage", "critical_recall"):
        values = np.asarray([m[key] for m in per_fold if m[key] is not None], dtype=np.float64)
        table[key] = {"mean": round(float(values.mean()), 4), "sd": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)}
    return table
