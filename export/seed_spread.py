"""``edge-export seed-spread``: how much of the KTAS out-of-fold figure is the head's random seed?

The KTAS operating point (accuracy at under-triage ≤ 0.10 and critical recall ≥ 0.80) is read on
1,014 rows, and the decision grid moves in steps of a few visits. This study re-runs the build's
student cross-validation — the same folds, the same frozen int8 encoder (built by the same recipe),
the same augmentation and transfer rows — with N seeds for the fusion head; seed offset 0 is the
build's own head, so its figures reproduce REPORT.md's. Each seed's out-of-fold probabilities are
scored as REPORT.md scores them: at the operating point chosen on them, and nested (chosen on the
other folds). One more setting beside the seeds: the mean of the N heads' logits (an ensemble).
Nothing here is shipped; it says how far apart two equally good builds can land. Writes one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SEED_STRIDE = 10_000  # head seed = the build's fold seed + offset × stride: no two folds share one
KEYS = ("accuracy", "under_triage", "critical_recall")


def scored(logits: np.ndarray, truth: np.ndarray, fired: list, folds: list, n: int) -> dict[str, Any]:
    """Out-of-fold logits [repeats × n, 5] → the operating point chosen on them and the nested figure."""
    from edge.clinical.decision_rule import softmax
    from export import calibrate

    temperature = calibrate.fit_temperature(logits, truth - 1)
    probabilities = softmax(logits, temperature)
    point = calibrate.choose_operating_point(probabilities, truth, fired)
    nested = calibrate.nested_operating_point(probabilities, truth, fired, folds, n)
    return {"temperature": round(float(temperature), 4), "operating_point": {k: point.metrics[k] for k in KEYS},
            "meets_targets": point.meets_targets, "nested": {k: nested["pooled"][k] for k in KEYS}}


def spread(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """min / median / max of each figure over the seeds, at the operating point and nested."""
    out: dict[str, Any] = {}
    for where in ("operating_point", "nested"):
        out[where] = {}
        for key in KEYS:
            values = np.asarray([s[where][key] for s in per_seed], dtype=np.float64)
            out[where][key] = {"min": round(float(values.min()), 4), "median": round(float(np.median(values)), 4),
                               "max": round(float(values.max()), 4)}
    out["seeds_meeting_targets"] = sum(bool(s["meets_targets"]) for s in per_seed)
    return out


def summarise(heads: Sequence[np.ndarray], truth: np.ndarray, fired: list, folds: list, n: int) -> dict[str, Any]:
    """Each head's out-of-fold logits (offset 0 first) scored as :func:`scored`, and the spread over them."""
    per_seed = [{"seed_offset": k, **scored(h.reshape(-1, 5), truth, fired, folds, n)} for k, h in enumerate(heads)]
    return {"seeds": len(per_seed), "per_seed": per_seed, "spread": spread(per_seed)}


def run(data: Path, seeds: int = 5) -> dict[str, Any]:
    from tqdm import tqdm

    from export import calibrate, encoder_export
    from export.build import BuildConfig, encode_ids, fit_fold_teacher, head_seed_logits, prepared_corpus
    from export.cv import stratified_folds
    from export.graph_embedder import GraphEmbedder
    from export.models_setup import real_setup

    started = time.perf_counter()
    corpus, config, _ = prepared_corpus(BuildConfig(out=Path("unused"), data=data, compare_recipes={}), data)
    setup = real_setup(config, corpus)
    with tempfile.TemporaryDirectory(prefix="edge-seed-spread-") as work:
        calibration = encode_ids(setup, corpus.rfv_texts or corpus.texts, config.max_seq_len)
        graphs = encoder_export.prepare(setup.student.make_encoder(), Path(work) / "encoder", config.recipe, {}, calibration)
        embedder = GraphEmbedder(graphs.int8, setup.student.tokenizer_json, setup.student.pad_id,
                                 setup.student.pad_token, config.max_seq_len, config.threads)
        setup.student.embedder = embedder
        pooled = embedder.embed(corpus.texts, desc="int8 pooled vectors")
        n = len(corpus.labels)
        folds = list(stratified_folds(corpus.labels, config.n_splits, config.student_repeats, config.seed))
        logits = np.zeros((seeds, config.student_repeats, n, 5))
        for fold in tqdm(folds, desc="folds"):
            teacher = fit_fold_teacher(setup, config, corpus, fold.train, config.seed + fold.fold)  # as the build's
            for offset in range(seeds):
                logits[offset, fold.repeat, fold.test] = head_seed_logits(setup, config, corpus, teacher, fold, pooled, offset)
    truth = np.tile(corpus.labels, config.student_repeats)
    fired = calibrate.fired_rules(corpus.cases) * config.student_repeats
    ensemble = scored(logits.mean(axis=0).reshape(-1, 5), truth, fired, folds, n)
    return {"data": f"KTAS, {n} rows, {config.n_splits}-fold CV x {config.student_repeats} repeats (the build's folds)",
            "what": "the shipped head recipe on the frozen int8 encoder; only the head's seed changes (offset 0 = the build's)",
            "targets": {"accuracy": ">= 0.68", "under_triage": "<= 0.10", "critical_recall": ">= 0.80"},
            **summarise(list(logits), truth, fired, folds, n),
            f"mean_of_{seeds}_heads": ensemble,
            "settings_compared": f"{seeds} seeds + 1 ensemble; decision grid as in REPORT.md per setting",
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    from export.data import data_root

    parser = argparse.ArgumentParser(prog="edge-export seed-spread", description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread needs two heads")
    result = json.dumps(run(data_root(args.data), args.seeds), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result + "\n", encoding="utf-8")
    print(result)
    return 0
