"""Calibration and the decision rule, chosen on out-of-fold predictions.

Temperature: one scalar minimising the negative log-likelihood of the OOF logits. Decision:
minimum expected cost under ``C[pred][true]`` = level distance, times ``under_weight`` when the
prediction is less urgent than the truth, times a further ``critical_weight`` when a truly
critical case (level 1-2) would be sent to 3-5. The operating point is the most accurate
setting whose final levels — after the raise-only safety rules, exactly as ``edge.inference.triager``
computes them — keep under-triage ≤ the nurse's 10 % and critical recall ≥ 0.80.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edge.clinical import rules
from edge.clinical.case import TriageCase
from edge.clinical.decision_rule import cost_matrix, decide, softmax
from edge.clinical.evaluation_metrics import compute

UNDER_WEIGHTS = tuple(float(w) for w in np.round(np.arange(0.5, 8.01, 0.25), 2))
CRITICAL_WEIGHTS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
MAX_UNDER_TRIAGE = 0.10
MIN_CRITICAL_RECALL = 0.80
MIN_ACCURACY = 0.68


def fit_temperature(logits: np.ndarray, labels0: np.ndarray) -> float:
    """Grid then golden-section-free refinement of NLL over T in [0.25, 5]."""
    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.log(np.clip(p[np.arange(len(labels0)), labels0], 1e-12, None)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(5.0), 61))
    best = float(grid[np.argmin([nll(t) for t in grid])])
    fine = np.linspace(best * 0.93, best * 1.07, 29)
    return round(float(fine[np.argmin([nll(t) for t in fine])]), 4)


def decision_spec(under_weight: float, critical_weight: float = 1.0,
                  review_below_confidence: float = 0.5) -> dict[str, Any]:
    matrix = cost_matrix(under_weight)
    matrix[2:, :2] *= critical_weight  # predicted 3-5 while the truth is 1-2
    return {"rule": "min_expected_cost", "cost_matrix": np.round(matrix, 4).tolist(), "under_weight": under_weight,
            "critical_weight": critical_weight, "review_below_confidence": review_below_confidence}


def final_levels(probabilities: np.ndarray, decision: dict[str, Any], fired: Sequence[list]) -> np.ndarray:
    """Decision rule then safety rules: the same two steps as ``edge.inference.triager.Triager``."""
    levels = decide(probabilities, decision)
    return np.asarray([rules.apply(int(level), f) for level, f in zip(levels, fired)], dtype=np.int64)


def fired_rules(cases: Sequence[TriageCase]) -> list[list]:
    return [rules.evaluate(c) for c in cases]


@dataclass
class OperatingPoint:
    decision: dict[str, Any]
    metrics: dict[str, Any]
    meets_targets: bool


def summary(metrics: dict[str, Any]) -> dict[str, float]:
    keys = ("accuracy", "macro_f1", "qwk", "under_triage", "over_triage", "critical_recall")
    return {k: round(float(metrics[k]), 4) for k in keys if metrics.get(k) is not None}


def choose_operating_point(probabilities: np.ndarray, truth: np.ndarray, fired: Sequence[list]) -> OperatingPoint:
    candidates = []
    for critical in CRITICAL_WEIGHTS:
        for under in UNDER_WEIGHTS:
            spec = decision_spec(under, critical)
            m = compute(truth, final_levels(probabilities, spec, fired))
            safe = m["under_triage"] <= MAX_UNDER_TRIAGE and m["critical_recall"] >= MIN_CRITICAL_RECALL
            candidates.append((safe, m["accuracy"] if safe else -m["under_triage"], -under, -critical, spec, m))
    safe, _, _, _, spec, m = max(candidates, key=lambda c: c[:4])
    return OperatingPoint(spec, summary(m), bool(safe and m["accuracy"] >= MIN_ACCURACY))


def nested_operating_point(probabilities: np.ndarray, truth: np.ndarray, fired: Sequence[list], folds: Sequence,
                           n: int) -> dict[str, Any]:
    """An honest figure for the decision grid: each fold scored at the operating point chosen on
    the *other* folds of its repeat (the grid never sees the rows it is scored on). Rows are laid
    out repeat by repeat (``r * n + i``), as in the out-of-fold arrays."""
    levels = np.zeros(len(truth), dtype=np.int64)
    per_fold = []
    for fold in folds:
        base = fold.repeat * n
        if base + n > len(truth):
            continue
        held = base + np.asarray(fold.test)
        others = np.setdiff1d(np.arange(base, base + n), held)
        point = choose_operating_point(probabilities[others], truth[others], [fired[i] for i in others])
        levels[held] = final_levels(probabilities[held], point.decision, [fired[i] for i in held])
        per_fold.append(compute(truth[held], levels[held]))
    table = {}
    for key in ("accuracy", "under_triage", "critical_recall", "macro_f1", "qwk"):
        values = np.asarray([m[key] for m in per_fold if m[key] is not None], dtype=np.float64)
        table[key] = {"mean": round(float(values.mean()), 4), "sd": round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0}
    return {"per_fold_mean": table, "pooled": summary(compute(truth, levels)),
            "settings_compared_per_fold": len(CRITICAL_WEIGHTS) * len(UNDER_WEIGHTS),
            "how": "operating point chosen on the other folds of the same repeat, applied to the held fold"}


def tradeoff_curve(probabilities: np.ndarray, truth: np.ndarray, fired: Sequence[list],
                   critical_weight: float = 1.0, weights: Sequence[float] = UNDER_WEIGHTS) -> list[dict[str, float]]:
    rows = []
    for under in weights:
        m = compute(truth, final_levels(probabilities, decision_spec(under, critical_weight), fired))
        rows.append({"under_weight": under, **summary(m)})
    return rows

