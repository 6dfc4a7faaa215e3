"""Evaluation metrics, one definition everywhere (docs/design.md, "Metric definitions").

Levels are 1 (most urgent) … 5. Under-triage = predicted *less* urgent than truth (``p > y``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

LEVELS = (1, 2, 3, 4, 5)


def confusion(truth: Sequence[int], pred: Sequence[int]) -> np.ndarray:
    """5×5 counts, rows = truth level 1..5, columns = predicted level 1..5."""
    matrix = np.zeros((5, 5), dtype=np.int64)
    for y, p in zip(truth, pred):
        matrix[int(y) - 1, int(p) - 1] += 1
    return matrix


def _macro_f1(matrix: np.ndarray) -> float:
    scores = []
    for k in range(5):
        tp = matrix[k, k]
        support, predicted = matrix[k, :].sum(), matrix[:, k].sum()
        if support == 0 and predicted == 0:
            continue  # a level absent from both truth and prediction carries no information
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores)) if scores else 0.0


def _qwk(matrix: np.ndarray) -> float:
    n = matrix.sum()
    if n == 0:
        return 0.0
    idx = np.arange(5)
    weights = (idx[:, None] - idx[None, :]) ** 2 / 16.0
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / n
    denominator = (weights * expected).sum()
    return 0.0 if denominator == 0 else float(1.0 - (weights * matrix).sum() / denominator)


def compute(truth: Sequence[int], pred: Sequence[int]) -> dict[str, Any]:
    """accuracy, macro_f1, qwk, under_triage, over_triage, critical_recall, confusion, n."""
    y = np.asarray(truth, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if y.shape != p.shape:
        raise ValueError("truth and prediction must have the same length")
    n = int(y.size)
    matrix = confusion(y, p)
    critical = y <= 2
    return {
        "n": n,
        "accuracy": float((y == p).mean()) if n else None,
        "macro_f1": _macro_f1(matrix) if n else None,
        "qwk": _qwk(matrix) if n else None,
        "under_triage": float((p > y).mean()) if n else None,
        "over_triage": float((p < y).mean()) if n else None,
        "critical_recall": float((p[critical] <= 2).mean()) if critical.any() else None,
        "confusion": matrix.tolist(),
    }


def critical_outcome(pred: Sequence[int], outcome: Sequence[bool]) -> dict[str, Any]:
    """Critical-outcome recall (one definition everywhere): of the visits that ended in a critical
    care unit or in death in the ED (``outcome``), the share given level 1-2, always beside the
    share of all visits given level 1-2 (the alarm rate)."""
    p = np.asarray(pred, dtype=np.int64)
    hit = np.asarray(outcome, dtype=bool)
    return {"visits": int(p.size), "critical_visits": int(hit.sum()),
            "recall_level_1_2": round(float((p[hit] <= 2).mean()), 4) if hit.any() else None,
            "share_level_1_2": round(float((p <= 2).mean()), 4) if p.size else None}
