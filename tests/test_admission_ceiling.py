"""The admission-ceiling study's arithmetic: forced calls kept, the rest of the share by rank."""

from __future__ import annotations

import numpy as np

from export.admission_ceiling import calls_at_share, ceiling


def test_forced_calls_are_kept_and_the_rest_goes_by_rank() -> None:
    score = np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.3, 0.6, 0.4, 0.5, 0.0])
    forced = np.zeros(10, dtype=bool)
    forced[1] = True  # a rule's call, whatever its score
    calls = calls_at_share(score, forced, 0.3)
    assert calls.tolist() == [True, True, True, False, False, False, False, False, False, False]


def test_forced_calls_over_the_share_are_not_dropped() -> None:
    forced = np.array([True, True, True, False])
    calls = calls_at_share(np.array([0.0, 0.0, 0.0, 1.0]), forced, 0.25)
    assert calls.tolist() == [True, True, True, False]


def test_ceiling_counts_admitted_level_1_2_and_outcomes() -> None:
    levels = np.array([1, 2, 3, 2, 4, 5, 3, 2])
    admitted = np.array([True, True, True, False, False, False, True, True])
    outcome = np.array([1, 0, 0, 0, 0, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.95, 0.05])
    rows = ceiling({"s": score}, np.zeros(8, dtype=bool), levels, admitted, outcome)
    at_quarter = next(r for r in rows if r["share_level_1_2"] == 0.25)  # visits 6 and 0
    # admitted level 1-2 visits: 0, 1, 7 -> 1 of 3 caught; outcomes: 0 and 6 -> both caught
    assert at_quarter["admitted_level_1_2_recall"] == round(1 / 3, 4)
    assert at_quarter["outcome_recall"] == 1.0
