"""The seed-spread study's scoring and summary (the study itself needs the shared data and ~5 min)."""

from __future__ import annotations

import numpy as np
import pytest

from export.cv import stratified_folds
from export.seed_spread import main, scored, spread, summarise


def _seed(accuracy: float, under: float, critical: float, meets: bool) -> dict:
    figures = {"accuracy": accuracy, "under_triage": under, "critical_recall": critical}
    return {"operating_point": figures, "nested": {k: v - 0.01 for k, v in figures.items()}, "meets_targets": meets}


def test_spread_is_min_median_max_over_seeds() -> None:
    seeds = [_seed(0.664, 0.088, 0.807, False), _seed(0.684, 0.097, 0.807, True), _seed(0.672, 0.089, 0.81, False)]
    out = spread(seeds)
    assert out["operating_point"]["accuracy"] == {"min": 0.664, "median": 0.672, "max": 0.684}
    assert out["nested"]["critical_recall"] == {"min": 0.797, "median": 0.797, "max": 0.8}
    assert out["seeds_meeting_targets"] == 1


def test_a_head_that_knows_the_level_scores_perfectly_at_the_point_and_nested() -> None:
    truth = np.repeat([1, 2, 3, 4, 5], 20)
    folds = list(stratified_folds(truth, n_splits=2, repeats=1, seed=3))
    logits = np.full((len(truth), 5), -8.0)
    logits[np.arange(len(truth)), truth - 1] = 8.0
    result = scored(logits, truth, [[] for _ in truth], folds, len(truth))
    assert result["operating_point"] == {"accuracy": 1.0, "under_triage": 0.0, "critical_recall": 1.0}
    assert result["nested"] == {"accuracy": 1.0, "under_triage": 0.0, "critical_recall": 1.0}
    assert result["meets_targets"] is True


def test_a_head_one_level_too_calm_is_under_triage_everywhere() -> None:
    truth = np.repeat([1, 2, 3, 4], 25)
    folds = list(stratified_folds(truth, n_splits=2, repeats=1, seed=3))
    logits = np.full((len(truth), 5), -8.0)
    logits[np.arange(len(truth)), truth] = 8.0  # always one level less urgent, and sure of it
    result = scored(logits, truth, [[] for _ in truth], folds, len(truth))
    assert result["operating_point"]["under_triage"] > 0.10
    assert result["meets_targets"] is False


def test_one_seed_is_refused_before_any_work() -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--seeds", "1"])
    assert refused.value.code == 2


def test_summarise_scores_every_head_in_offset_order() -> None:
    truth = np.repeat([1, 2, 3, 4, 5], 20)
    folds = list(stratified_folds(truth, n_splits=2, repeats=1, seed=3))
    right = np.full((len(truth), 5), -8.0)
    right[np.arange(len(truth)), truth - 1] = 8.0
    calm = np.full((len(truth), 5), -8.0)
    calm[np.arange(len(truth)), np.minimum(truth, 4)] = 8.0
    out = summarise([right, calm], truth, [[] for _ in truth], folds, len(truth))
    assert out["seeds"] == 2 and [s["seed_offset"] for s in out["per_seed"]] == [0, 1]
    assert out["per_seed"][0]["operating_point"]["accuracy"] == 1.0
    assert out["spread"]["operating_point"]["accuracy"]["max"] == 1.0
    assert out["spread"]["operating_point"]["accuracy"]["min"] < 1.0
    assert out["spread"]["seeds_meeting_targets"] == 1
