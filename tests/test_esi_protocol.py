"""The ESI protocol's choice: the call cap holds on the validation year and on the newest inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")

from edge.clinical.case import TriageCase  # noqa: E402
from edge.clinical.datasets import LabelledCase  # noqa: E402
from export import esi_protocol, scale_heads  # noqa: E402
from export.nhamcs_data import Rows  # noqa: E402

CONFIG = scale_heads.ScaleHeadConfig(epochs=2, seed=3)


def _arrays(n: int, seed: int) -> esi_protocol.Arrays:
    rng = np.random.default_rng(seed)
    levels = rng.choice([1, 2, 3, 3, 3, 4, 4, 5], size=n)
    pooled = rng.normal(size=(n, 8)).astype(np.float32)
    pooled[:, 0] += (3 - levels)  # a signal the heads can learn
    features = rng.normal(size=(n, 4)).astype(np.float32)
    cases = [LabelledCase(i, TriageCase("cough"), int(level), critical_outcome=bool(level == 1), admitted=bool(level <= 2))
             for i, level in enumerate(levels)]
    return esi_protocol.Arrays(pooled, features, rng.random((n, 3)).astype(np.float32), Rows(cases),
                               np.full(n, 6, dtype=np.int64))


@pytest.fixture(autouse=True)
def _synthetic_ceiling(monkeypatch) -> None:
    """The synthetic visits under-triage more than real heads do: a ceiling they can meet."""
    monkeypatch.setattr(esi_protocol, "MAX_UNDER_TRIAGE", 0.2)


def test_every_setting_is_judged_on_both_populations_and_the_choice_is_feasible() -> None:
    train, valid, newest = _arrays(400, 1), _arrays(200, 2), _arrays(200, 3)
    chosen = esi_protocol.choose(train, valid, CONFIG, newest=newest.inputs)
    assert any(not t["feasible"] and t["alarm"] <= esi_protocol.MAX_ALARM_RATE for t in chosen["tried"])  # the ceiling binds
    cap, ceiling = esi_protocol.MAX_ALARM_RATE, esi_protocol.MAX_UNDER_TRIAGE
    for t in chosen["tried"]:
        assert t["feasible"] == (t["alarm"] <= cap and t["alarm_newest_inputs"] <= cap and t["under_triage"] <= ceiling)
    assert chosen["validation"]["critical_outcome"]["share_level_1_2"] <= cap
    assert chosen["validation"]["under_triage"] <= ceiling
    assert chosen["settings_compared"] == 2 * len(esi_protocol.UNDER_WEIGHTS) * len(
        esi_protocol.CRITICAL_THRESHOLDS) * len(esi_protocol.OUTCOME_THRESHOLDS)


def test_a_newest_population_over_the_cap_leaves_no_setting() -> None:
    """Rules that call every newest visit level 2 exceed the cap whatever the decision: the choice
    refuses rather than ship a point that only the validation year can afford."""
    train, valid, newest = _arrays(400, 1), _arrays(200, 2), _arrays(200, 3)
    assert esi_protocol.choose(train, valid, CONFIG)["validation"]  # feasible without the newest check
    crowded = replace(newest.inputs, floors=np.full(200, 2, dtype=np.int64))
    with pytest.raises(ValueError, match="newest"):
        esi_protocol.choose(train, valid, CONFIG, newest=crowded)


def test_a_setting_better_on_recall_but_over_the_under_triage_ceiling_is_not_chosen(monkeypatch) -> None:
    """Protocol v3: the objective rewards recall only; a point past the under-triage ceiling must
    lose to a safer one however much recall it buys (without the ceiling the riskier one wins)."""
    train, valid = _arrays(400, 12), _arrays(200, 13)  # visits where the best recall is not the safest point
    monkeypatch.setattr(esi_protocol, "MAX_UNDER_TRIAGE", 1.0)
    free = esi_protocol.choose(train, valid, CONFIG)
    riskiest = max(t["under_triage"] for t in free["tried"])
    monkeypatch.setattr(esi_protocol, "MAX_UNDER_TRIAGE", riskiest)
    assert esi_protocol.choose(train, valid, CONFIG)["validation"] == free["validation"]
    safest = min(t["under_triage"] for t in free["tried"] if t["alarm"] <= esi_protocol.MAX_ALARM_RATE)
    assert free["validation"]["under_triage"] > safest  # recall alone prefers a riskier point here
    monkeypatch.setattr(esi_protocol, "MAX_UNDER_TRIAGE", safest)
    chosen = esi_protocol.choose(train, valid, CONFIG)
    assert chosen["validation"]["under_triage"] <= safest
    monkeypatch.setattr(esi_protocol, "MAX_UNDER_TRIAGE", safest - 0.01)
    with pytest.raises(ValueError, match="under-triages"):
        esi_protocol.choose(train, valid, CONFIG)
