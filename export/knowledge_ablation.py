"""``edge-export ablation``: what each protocol-knowledge piece buys on the KTAS data set.

A light proxy of the shipped KTAS path — the frozen student encoder's pooled complaint vector and
the structured features into a fusion head (no teacher), on the shared 2 × 5 folds, each fold
scored at the decision setting chosen on the other folds — trained with and without each piece:
ED shorthand expansion, the ESI danger-zone / child-age features, the KTAS first-order modifier
features. The same pieces on NHAMCS are in the bundle's REPORT_ESI.md. Writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _variants(features: np.ndarray) -> dict[str, np.ndarray]:
    from edge.clinical.features import FEATURE_NAMES

    def without(prefixes: tuple[str, ...]) -> np.ndarray:
        masked = features.copy()
        masked[:, [i for i, n in enumerate(FEATURE_NAMES) if n.startswith(prefixes)]] = 0
        return masked

    return {"all knowledge": features,
            "without ESI danger-zone / child-age features": without(("esi_", "age_under")),
            "without KTAS first-order modifier features": without(("protocol_", "sirs_count", "site_"))}


def run(data: Path, seed: int = 0) -> dict[str, Any]:
    import torch

    from edge.clinical.abbreviations import Abbreviations, table_rows
    from edge.clinical.datasets import ktas
    from edge.clinical.decision_rule import softmax
    from edge.clinical.features import encode_cases
    from export import calibrate, encoders, modeling
    from export.cv import stratified_folds
    from export.esi_build import ABBREVIATIONS_CSV
    from export.teacher import TextEncoder
    from export.train import HeadConfig, head_logits, train_head

    torch.set_num_threads(2)
    dataset = ktas.load(data / "ktas-moon2019" / "data.csv")
    cases = [c.case for c in dataset.cases]
    truth = np.asarray([c.truth for c in dataset.cases])
    table = Abbreviations.from_rows(table_rows(data / ABBREVIATIONS_CSV))
    raw = [c.complaint for c in cases]
    expanded = [table.normalise(c.complaint, c.age).text for c in cases]
    source = encoders.student()
    text = TextEncoder.from_folder(modeling.load_encoder(source.path), source.path, 32)
    unique = sorted(set(raw) | set(expanded))
    vectors = dict(zip(unique, text.embed(unique, desc="ablation embed")))
    features = encode_cases(cases)
    folds = list(stratified_folds(truth, 5, 2, seed))
    fired = calibrate.fired_rules(cases)
    out: dict[str, Any] = {"data": "KTAS (Moon et al. 2019), 1,014 rows, 2 x 5 folds", "changed_by_expansion":
                           int(sum(a != b for a, b in zip(raw, expanded)))}
    runs = {("all knowledge" if k == "all knowledge" else k): (expanded, f) for k, f in _variants(features).items()}
    runs["without shorthand expansion"] = (raw, features)
    for name, (texts, feats) in runs.items():
        pooled = np.stack([vectors[t] for t in texts])
        pooled = pooled / (float((pooled - pooled.mean(axis=0)).std()) or 1.0)
        probs = np.zeros((2 * len(truth), 5))
        for fold in folds:
            head = train_head(pooled[fold.train], feats[fold.train], truth[fold.train] - 1, HeadConfig(seed=seed + fold.fold))
            probs[fold.repeat * len(truth) + fold.test] = softmax(head_logits(head, pooled[fold.test], feats[fold.test]))
        nested = calibrate.nested_operating_point(probs, np.tile(truth, 2), fired * 2, folds, len(truth))
        out[name] = {k: v["mean"] for k, v in nested["per_fold_mean"].items()}
        print(f"ablation: {name}: {out[name]}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    from export.data import data_root

    parser = argparse.ArgumentParser(prog="edge-export ablation", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="shared data root (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default stdout)")
    args = parser.parse_args(argv)
    result = json.dumps(run(data_root(args.data)), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result + "\n", encoding="utf-8")
    else:
        print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
