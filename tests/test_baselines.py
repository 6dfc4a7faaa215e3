"""Baselines harness: each baseline on synthetic cases whose answers we know, the calibration
and trade-off machinery, and a fast 2-fold run of the real CLI on the real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.clinical.case import TriageCase
from edge.clinical.decision_rule import softmax
from export import baselines
from export.baselines import RegressionConfig

REPO = Path(__file__).resolve().parents[1]
# (complaint, level, count): levels 1-2 fire safety rules, 3-5 do not.
SYNTHETIC = [("cardiac arrest", 1, 10), ("chest pain", 2, 20), ("abdominal pain", 3, 40),
             ("ankle sprain", 4, 30), ("itchy rash", 5, 10)]
FILLER = ["since morning", "for two days", "at home", "after lunch", "worse today"]


def synthetic() -> tuple[list[TriageCase], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cases, labels = [], []
    for complaint, level, count in SYNTHETIC:
        for i in range(count):
            cases.append(TriageCase(complaint=f"{complaint} {FILLER[i % len(FILLER)]}", age=float(rng.integers(45, 80)),
                                    hr=float(rng.integers(60, 100))))
            labels.append(level)
    labels_array = np.array(labels)
    nurse = labels_array.copy()
    nurse[::7] = np.minimum(nurse[::7] + 1, 5)  # the nurse under-triages every 7th case...
    nurse[3] = 0  # ...and one row has no nurse level
    return cases, labels_array, nurse


def test_majority_rules_and_nurse_on_known_answers() -> None:
    cases, labels, nurse = synthetic()
    folds = baselines.make_folds(labels, n_splits=5, repeats=2, seed=1)
    majority = baselines.majority_oof(labels, folds)
    assert majority.levels.shape == (2, len(labels)) and set(np.unique(majority.levels)) == {3}

    ruled = baselines.rules_oof(cases, labels, folds)
    # C-ARREST gives 1, C-CHEST-RISK (chest pain, age >= 40) gives 2, the rest fall back to the majority (3).
    expected = np.where(labels == 1, 1, np.where(labels == 2, 2, 3))
    assert (ruled.levels == expected[None, :]).all()

    nurse_oof = baselines.nurse_oof(nurse, folds)
    per_fold = baselines.fold_metrics(nurse_oof, labels, folds)
    assert sum(f["n"] for f in per_fold) == 2 * (len(labels) - 1)  # the row without a nurse level is skipped
    summary = baselines.summarize(per_fold)
    assert 0 < summary["under_triage"]["mean"] < 0.2 and summary["over_triage"]["mean"] == 0
    assert summary["accuracy"]["sd"] > 0


def test_regression_learns_and_is_out_of_fold() -> None:
    cases, labels, _ = synthetic()
    folds = baselines.make_folds(labels, n_splits=5, repeats=1, seed=2)
    config = RegressionConfig(inner_splits=2)
    oof = baselines.regression_oof(cases, labels, folds, config, seed=2)
    assert oof.probabilities is not None and oof.probabilities.shape == (1, len(labels), 5)
    np.testing.assert_allclose(oof.probabilities.sum(axis=2), 1.0, atol=1e-9)
    assert (oof.levels > 0).all() and len(oof.temperatures) == 5
    assert (oof.levels[0] == labels).mean() > 0.9  # each complaint maps to its level

    # Out of fold: a complaint word seen only in the test fold cannot be learned from.
    unseen = list(cases)
    unseen[0] = TriageCase(complaint="zzqx", age=60.0, hr=80.0)
    lone = baselines.regression_oof(unseen, labels, folds, config, seed=2)
    assert lone.levels[0, 0] != 1  # the rest of level 1 says "cardiac arrest"; "zzqx" says nothing


def test_temperature_recovers_a_known_softening() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(4000, 5))
    labels = np.array([rng.choice(5, p=p) + 1 for p in softmax(logits, 2.0)])
    assert baselines.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_tradeoff_is_monotone_and_picks_the_operating_point() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(1, 6, size=300)
    probabilities = softmax(rng.normal(0, 1, size=(2, 300, 5)) + 2.0 * np.eye(5)[labels - 1][None], 1.0)
    floors = np.where(rng.random(300) < 0.1, 2, baselines.NO_RULE)
    for curve in (baselines.tradeoff_curve(probabilities, labels),
                  baselines.tradeoff_curve(probabilities, labels, floors)):
        under = [p["under_triage"] for p in curve]
        over = [p["over_triage"] for p in curve]
        assert under == sorted(under, reverse=True) and over == sorted(over)  # dearer under-triage → fewer
        assert under[0] > under[-1]
    curve = [{"under_weight": 1, "accuracy": 0.70, "under_triage": 0.14},
             {"under_weight": 2, "accuracy": 0.66, "under_triage": 0.09},
             {"under_weight": 3, "accuracy": 0.62, "under_triage": 0.07}]
    assert baselines.operating_point(curve)["under_weight"] == 2
    assert baselines.operating_point(curve, max_under_triage=0.05) is None


def test_cli_two_fold_run_on_the_real_data(tmp_path: Path, ktas_csv: Path) -> None:
    edge_export = Path(sys.executable).parent / "edge-export"  # the installed hook; `python -m` below
    proc = subprocess.run([str(edge_export), "baselines", "--out", str(tmp_path), "--data", str(ktas_csv),
                           "--splits", "2", "--repeats", "1"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "baselines.json").read_text())
    models = {name: body["summary"] for name, body in report["models"].items()}
    assert set(models) == {"majority", "rules", "regression", "regression + rules", "nurse"}
    assert report["data"]["n"] == 1014 and report["cv"]["folds"] == 2
    # The nurse is not trained: on all rows 0.860 accuracy (PROVENANCE.md); fold means average to that.
    assert models["nurse"]["accuracy"]["mean"] == pytest.approx(0.860, abs=0.002)
    assert models["majority"]["critical_recall"]["mean"] == 0.0
    assert models["regression"]["accuracy"]["mean"] > models["majority"]["accuracy"]["mean"] + 0.2
    assert models["rules"]["under_triage"]["mean"] < models["majority"]["under_triage"]["mean"]
    # Rules only raise: never more under-triage with them than without.
    assert models["regression + rules"]["under_triage"]["mean"] <= models["regression"]["under_triage"]["mean"]
    tradeoff = json.loads((tmp_path / "tradeoff_regression.json").read_text())
    assert len(tradeoff["curves"]["regression"]) == len(baselines.UNDER_WEIGHTS)
    point = tradeoff["operating_points"]["regression"]
    assert point is not None and point["under_triage"] <= 0.10
    table = (tmp_path / "baselines.md").read_text()
    assert "| nurse | 0.86" in table and "under-triage ≤ 10%" in table


def test_cli_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "export.baselines", "--out", str(tmp_path), "--data",
                           str(tmp_path / "absent.csv")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--data" in proc.stderr and not (tmp_path / "baselines.json").exists()
