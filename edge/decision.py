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


def decide(probabilities: np.ndarray, decision: dict[str, Any]) -> np.ndarray:
    """Levels 1..5 for a ``[n, 5]`` probability matrix under the manifest's decision spec."""
    probs = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    rule = decision.get("rule", "argmax")
    if rule == "argmax":
        return probs.argmax(axis=1) + 1
    if rule == "min_expected_cost":
        costs = np.asarray(decision["cost_matrix"], dtype=np.float64)
        expected = probs @ costs.T  # [n, predicted]
        return expected.argmin(axis=1) + 1
    raise ValueError(f"unknown decision rule {rule!r}")
