"""Calibration (temperature scaling) and the decision rule that turns probabilities into a level.

The rule is the minimum expected cost under a 5×5 cost matrix ``C[predicted][true]`` recorded in
the manifest. Making under-triage (predicted less urgent than truth) dearer than over-triage moves
borderline cases toward the more urgent level, trading some over-triage for safety.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def cost_matrix(under_weight: float, over_weight: float = 1.0) -> np.ndarray:
    """Cost of predicting level i+1 when the truth is j+1: distance, times ``under_weight``
    when the prediction is less urgent than the truth."""
    idx = np.arange(5)
    distance = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    weight = np.where(idx[:, None] > idx[None, :], under_weight, over_weight)
    return distance * weight


def sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64)))


def decide(probabilities: np.ndarray, decision: dict[str, Any], outcome: np.ndarray | None = None) -> np.ndarray:
    """Levels 1..5 for a ``[n, 5]`` probability matrix under the manifest's decision spec.

    Then two raise-only checks where the spec has them (both move a case to level 2 at most,
    never lower its urgency): ``critical_threshold`` — the probability of level 1-2 at or above
    it; ``outcome_threshold`` — the outcome head's probability of critical care or death
    (``outcome``, [n]) at or above it. Outcomes are training targets; here only their prediction
    from triage-time facts is used, and only to ask for more urgency."""
    probs = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    rule = decision.get("rule", "argmax")
    if rule == "argmax":
        levels = probs.argmax(axis=1) + 1
    elif rule == "min_expected_cost":
        costs = np.asarray(decision["cost_matrix"], dtype=np.float64)
        expected = probs @ costs.T  # [n, predicted]
        levels = expected.argmin(axis=1) + 1
    else:
        raise ValueError(f"unknown decision rule {rule!r}")
    return raise_critical(levels, probs, decision, outcome)


def raise_critical(levels: np.ndarray, probs: np.ndarray, decision: dict[str, Any],
                   outcome: np.ndarray | None) -> np.ndarray:
    critical = np.zeros(len(levels), dtype=bool)
    if decision.get("critical_threshold") is not None:
        critical |= probs[:, :2].sum(axis=1) >= float(decision["critical_threshold"])
    if decision.get("outcome_threshold") is not None and outcome is not None:
        critical |= np.asarray(outcome, dtype=np.float64).reshape(-1) >= float(decision["outcome_threshold"])
    return np.where(critical, np.minimum(levels, 2), levels)
