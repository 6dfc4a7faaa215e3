"""Baselines in the evaluation harness: majority class, safety rules alone, TF-IDF + logistic
regression on text and structured fields, and the triage nurse — scored on the shared repeated
stratified folds (:mod:`export.cv`) with the one metric definition (:mod:`edge.clinical.evaluation_metrics`).

The regression's out-of-fold probabilities are temperature-calibrated inside each training fold
(inner cross-validation, so no test row ever informs its own calibration), then swept across
decision settings (:func:`edge.clinical.decision_rule.cost_matrix` under-weight) to give the trade-off curve
the student's report plots beside its own: :func:`tradeoff_curve` takes any model's OOF
probabilities, so model-build can call it on the student too.

    edge-export baselines --out build/baselines      # or: python -m export.baselines --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.clinical import evaluation_metrics as metrics

from edge.clinical import rules
from edge.clinical.case import TriageCase
from edge.clinical.datasets import ktas
from edge.clinical.decision_rule import cost_matrix, decide, softmax
from edge.clinical.features import encode_cases
from export.cv import DEFAULT_REPEATS, DEFAULT_SEED, DEFAULT_SPLITS, Fold, stratified_folds

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ktas-moon2019" / "data.csv"
METRICS = ("accuracy", "macro_f1", "qwk", "under_triage", "over_triage", "critical_recall")
# Cost of under-triage relative to over-triage per level of distance; 1 = symmetric.
UNDER_WEIGHTS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 30.0)
MAX_UNDER_TRIAGE = 0.10  # the nurse's under-triage on these rows (PROVENANCE.md)
NO_RULE = 6  # "no rule fired": above every level, so min(level, NO_RULE) leaves the level alone


@dataclass(frozen=True)
class RegressionConfig:
    """Fixed a priori (not tuned on the test folds): char n-grams catch the abbreviations and
    misspellings of triage notes ("abd pain", "Lt", "dyspnea"); class weights stay natural so
    probabilities are calibratable and the decision rule, not the fit, trades errors."""

    ngram_range: tuple[int, int] = (2, 5)
    min_df: int = 2
    C: float = 1.0
    max_iter: int = 3000
    structured_weight: float = 1.0  # scale of the edge.clinical.features block beside the TF-IDF block
    inner_splits: int = 3  # inner CV folds for temperature scaling


@dataclass
class OutOfFold:
    """One model's out-of-fold answers: ``levels[r, i]`` is row i's level in repeat r, from the
    model trained without row i's fold (0 where the model has no answer, e.g. no nurse level)."""

    name: str
    levels: np.ndarray  # [repeats, n] int
    probabilities: np.ndarray | None = None  # [repeats, n, 5] calibrated, where the model has them
    temperatures: list[float] = field(default_factory=list)  # per fold, where calibrated


def make_folds(labels: Sequence[int], n_splits: int = DEFAULT_SPLITS, repeats: int = DEFAULT_REPEATS,
               seed: int = DEFAULT_SEED) -> list[Fold]:
    return list(stratified_folds(labels, n_splits=n_splits, repeats=repeats, seed=seed))


def _repeats(folds: Sequence[Fold]) -> int:
    return max(f.repeat for f in folds) + 1


def _majority(labels: np.ndarray) -> int:
    values, counts = np.unique(labels, return_counts=True)
    return int(values[np.argmax(counts)])  # ties go to the more urgent level (np.unique sorts)


def rule_floors(cases: Sequence[TriageCase]) -> np.ndarray:
    """Most urgent fired safety-rule level per case, ``NO_RULE`` where none fires."""
    return np.array([rules.rules_level(rules.evaluate(c)) or NO_RULE for c in cases], dtype=np.int64)


def majority_oof(labels: np.ndarray, folds: Sequence[Fold]) -> OutOfFold:
    levels = np.zeros((_repeats(folds), len(labels)), dtype=np.int64)
    for fold in folds:
        levels[fold.repeat, fold.test] = _majority(labels[fold.train])
    return OutOfFold("majority", levels)


def rules_oof(cases: Sequence[TriageCase], labels: np.ndarray, folds: Sequence[Fold]) -> OutOfFold:
    """Safety rules alone: the rule level where one fires, else the training fold's majority."""
    floors = rule_floors(cases)
    levels = np.zeros((_repeats(folds), len(labels)), dtype=np.int64)
    for fold in folds:
        levels[fold.repeat, fold.test] = np.minimum(floors[fold.test], _majority(labels[fold.train]))
    return OutOfFold("rules", levels)


def nurse_oof(nurse: np.ndarray, folds: Sequence[Fold]) -> OutOfFold:
    """The nurse needs no training: the same level in every repeat (0 where the file has none)."""
    return OutOfFold("nurse", np.tile(np.asarray(nurse, dtype=np.int64), (_repeats(folds), 1)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of ``labels`` (levels 1..5)."""
    from scipy.optimize import minimize_scalar

    index = np.asarray(labels) - 1

    def nll(log_t: float) -> float:
        probs = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(np.clip(probs[np.arange(len(index)), index], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))


class TextAndFields:
    """TF-IDF char n-grams of the complaint beside the ``edge.clinical.features`` vector, then a
    multinomial logistic regression; ``logits`` are its linear scores (softmax = predict_proba)."""

    def __init__(self, config: RegressionConfig, seed: int = 0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.config = config
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=config.ngram_range,
                                          min_df=config.min_df, sublinear_tf=True, lowercase=True)
        self.classifier = LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=seed)

    def _matrix(self, texts: Sequence[str], features: np.ndarray, fit: bool) -> Any:
        from scipy.sparse import csr_matrix, hstack

        words = self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)
        return hstack([words, csr_matrix(features * self.config.structured_weight)]).tocsr()

    def fit(self, texts: Sequence[str], features: np.ndarray, labels: np.ndarray) -> "TextAndFields":
        self.classifier.fit(self._matrix(texts, features, fit=True), labels)
        if list(self.classifier.classes_) != [1, 2, 3, 4, 5]:
            raise ValueError("every training fold must hold all five levels (stratified folds do)")
        return self

    def logits(self, texts: Sequence[str], features: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.decision_function(self._matrix(texts, features, fit=False)),
                          dtype=np.float64)


def regression_oof(cases: Sequence[TriageCase], labels: np.ndarray, folds: Sequence[Fold],
                   config: RegressionConfig = RegressionConfig(), seed: int = DEFAULT_SEED,
                   progress: bool = False) -> OutOfFold:
    """Calibrated OOF probabilities and argmax levels of the TF-IDF + structured regression."""
    texts = np.array([c.complaint for c in cases], dtype=object)
    features = encode_cases(cases)
    probabilities = np.zeros((_repeats(folds), len(labels), 5))
    temperatures = []
    for number, fold in enumerate(folds, start=1):
        train_labels = labels[fold.train]
        # Temperature from inner out-of-fold logits of the training part only.
        inner_logits = np.zeros((len(fold.train), 5))
        for inner in stratified_folds(train_labels, n_splits=config.inner_splits, repeats=1,
                                      seed=seed + 1000 + number):
            tr, te = fold.train[inner.train], fold.train[inner.test]
            model = TextAndFields(config, seed).fit(list(texts[tr]), features[tr], labels[tr])
            inner_logits[inner.test] = model.logits(list(texts[te]), features[te])
        temperature = fit_temperature(inner_logits, train_labels)
        model = TextAndFields(config, seed).fit(list(texts[fold.train]), features[fold.train], train_labels)
        test_logits = model.logits(list(texts[fold.test]), features[fold.test])
        probabilities[fold.repeat, fold.test] = softmax(test_logits, temperature)
        temperatures.append(temperature)
        if progress:
            print(f"\rregression: fold {number}/{len(folds)}", end="\n" if number == len(folds) else "",
                  file=sys.stderr, flush=True)
    levels = probabilities.argmax(axis=2) + 1
    return OutOfFold("regression", levels.astype(np.int64), probabilities, temperatures)


def with_rules(oof: OutOfFold, cases: Sequence[TriageCase], name: str | None = None) -> OutOfFold:
    """The same answers after the raise-only safety rules, as the service applies them."""
    levels = np.where(oof.levels > 0, np.minimum(oof.levels, rule_floors(cases)[None, :]), 0)
    return OutOfFold(name or f"{oof.name} + rules", levels, oof.probabilities, oof.temperatures)


def fold_metrics(oof: OutOfFold, labels: np.ndarray, folds: Sequence[Fold]) -> list[dict[str, Any]]:
    """Metrics per (repeat, fold) on the fold's rows where the model has an answer."""
    out = []
    for fold in folds:
        pred = oof.levels[fold.repeat, fold.test]
        answered = pred > 0
        scores = metrics.compute(labels[fold.test][answered], pred[answered])
        out.append({"repeat": fold.repeat, "fold": fold.fold, **scores})
    return out


def summarize(per_fold: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean ± sample sd over folds of every metric in :data:`METRICS`."""
    summary = {}
    for key in METRICS:
        values = np.array([f[key] for f in per_fold if f[key] is not None], dtype=np.float64)
        summary[key] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return summary


def tradeoff_curve(probabilities: np.ndarray, labels: np.ndarray, floors: np.ndarray | None = None,
                   under_weights: Sequence[float] = UNDER_WEIGHTS) -> list[dict[str, Any]]:
    """For each under-weight: the min-expected-cost levels on every repeat's pooled OOF
    probabilities ``[repeats, n, 5]`` (then the safety-rule ``floors``, if given), and the mean ±
    sd over repeats of the metrics. Reusable for any model's OOF probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 2:
        probabilities = probabilities[None]
    curve = []
    for weight in under_weights:
        decision = {"rule": "min_expected_cost", "cost_matrix": cost_matrix(weight).tolist()}
        per_repeat = []
        for repeat_probs in probabilities:
            levels = decide(repeat_probs, decision)
            if floors is not None:
                levels = np.minimum(levels, floors)
            per_repeat.append(metrics.compute(labels, levels))
        point: dict[str, Any] = {"under_weight": weight}
        for key, stats in summarize(per_repeat).items():
            point[key] = stats["mean"]
            point[f"{key}_sd"] = stats["sd"]
        curve.append(point)
    return curve


def operating_point(curve: Sequence[dict[str, Any]], max_under_triage: float = MAX_UNDER_TRIAGE) -> dict[str, Any] | None:
    """The most accurate setting whose mean under-triage is at most ``max_under_triage``."""
    eligible = [p for p in curve if p["under_triage"] <= max_under_triage]
    return max(eligible, key=lambda p: (p["accuracy"], -p["under_weight"])) if eligible else None


def run_baselines(data: str | Path = DEFAULT_DATA, n_splits: int = DEFAULT_SPLITS, repeats: int = DEFAULT_REPEATS,
                  seed: int = DEFAULT_SEED, config: RegressionConfig = RegressionConfig(),
                  progress: bool = False) -> dict[str, Any]:
    """Everything the report needs, as JSON-ready data (no patient-level values)."""
    started = time.perf_counter()
    dataset = ktas.load(data)
    cases = [c.case for c in dataset.cases]
    labels = np.array([c.truth for c in dataset.cases], dtype=np.int64)
    nurse = np.array([c.nurse or 0 for c in dataset.cases], dtype=np.int64)
    folds = make_folds(labels, n_splits, repeats, seed)
    regression = regression_oof(cases, labels, folds, config, seed, progress)
    models = [majority_oof(labels, folds), rules_oof(cases, labels, folds), regression,
              with_rules(regression, cases), nurse_oof(nurse, folds)]
    floors = rule_floors(cases)
    curves = {"regression": tradeoff_curve(regression.probabilities, labels),
              "regression + rules": tradeoff_curve(regression.probabilities, labels, floors)}
    return {
        "data": {"file": Path(data).name, "rows": len(cases) + len(dataset.unusable), "n": len(cases),
                 "unusable": dataset.unusable_summary(), "fields_set_missing": dataset.fields_missing_summary()},
        "cv": {"splits": n_splits, "repeats": repeats, "seed": seed, "folds": len(folds),
               "summary": "mean ± sample sd over the folds of every repeat"},
        "regression_config": asdict(config),
        "regression_temperatures": [round(t, 4) for t in regression.temperatures],
        "models": {m.name: {"summary": summarize(per_fold), "folds": per_fold}
                   for m in models for per_fold in [fold_metrics(m, labels, folds)]},
        "tradeoff": {
            "method": "min expected cost under edge.clinical.decision_rule.cost_matrix(under_weight) on calibrated OOF "
                      "probabilities pooled per repeat; mean ± sd over repeats",
            "max_under_triage": MAX_UNDER_TRIAGE,
            "curves": curves,
            "operating_points": {name: operating_point(curve) for name, curve in curves.items()},
        },
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def markdown(report: dict[str, Any]) -> str:
    cv = report["cv"]
    lines = [
        "# Baselines: repeated stratified cross-validation",
        "",
        f"{report['data']['n']} labelled rows of `{report['data']['file']}` "
        f"({report['data']['unusable']['count']} unusable); {cv['repeats']} × {cv['splits']}-fold stratified CV "
        f"(seed {cv['seed']}, `export/cv.py`); mean ± sd over the {cv['folds']} folds. Metrics as defined in "
        "docs/design.md (`edge/clinical/evaluation_metrics.py`); under-triage = predicted less urgent than the expert level.",
        "",
        "| model | accuracy | macro-F1 | QWK | under-triage | over-triage | critical recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, body in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(body["summary"][k]) for k in METRICS) + " |")
    lines += ["", "## Regression trade-off across decision settings", "",
              report["tradeoff"]["method"] + ".", ""]
    for name, curve in report["tradeoff"]["curves"].items():
        lines += [f"### {name}", "", "| under-weight | accuracy | under-triage | over-triage | critical recall |",
                  "|---|---|---|---|---|"]
        for p in curve:
            lines.append(f"| {p['under_weight']:g} | {p['accuracy']:.3f} | {p['under_triage']:.3f} | "
                         f"{p['over_triage']:.3f} | {p['critical_recall']:.3f} |")
        point = report["tradeoff"]["operating_points"][name]
        limit = report["tradeoff"]["max_under_triage"]
        lines += ["", f"Most accurate setting with under-triage ≤ {limit:.0%}: " + (
            f"under-weight {point['under_weight']:g}: accuracy {point['accuracy']:.3f}, under-triage "
            f"{point['under_triage']:.3f}, critical recall {point['critical_recall']:.3f}." if point else "none."), ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "baselines.json", out / "baselines.md", out / "tradeoff_regression.json"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report) + "\n", encoding="utf-8")
    paths[2].write_text(json.dumps(report["tradeoff"], indent=2) + "\n", encoding="utf-8")
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="directory for baselines.json, baselines.md, tradeoff_regression.json")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="KTAS data.csv (default: ../shared/data)")
    parser.add_argument("--splits", type=int, default=DEFAULT_SPLITS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)


def run(args: argparse.Namespace) -> int:
    if not Path(args.data).is_file():
        print(f"baselines: {args.data} is not a file; pass --data PATH to a KTAS data.csv.", file=sys.stderr)
        return 2
    report = run_baselines(args.data, args.splits, args.repeats, args.seed, progress=sys.stderr.isatty())
    for path in write_report(report, args.out):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.baselines", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
