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
