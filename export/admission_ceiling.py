"""``edge-export admission-ceiling``: how many admitted level 1-2 visits can any one signal catch?

The ESI issue asks for level 1-2 recall ≥ 0.85 on admitted visits while at most 25 % of all visits
are called level 1-2. This study asks whether the signals the heads have could reach it at all:
heads trained on NHAMCS 2016-2018 (the frozen student encoder in fp32; the bundle ships its int8
copy), and beside them a head trained on *hospital admission* as its target, and — the strongest signal these inputs
give — gradient boosting trained on the metric's own target (admitted *and* nurse level 1-2) from
the structured fields and CDC's reason-for-visit codes. On the 2019
validation year the visits the ESI rules send to level 1-2 are kept, and the rest of the budget
goes to the highest-ranked visits by each signal (P(level 1-2), the outcome head, the admission
head, their products). A ranking is the
best any threshold on that signal can do, so its recall at a share is a ceiling for the signal.
2020 is not touched. Writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

SHARES = (0.20, 0.22, 0.25, 0.30)


def calls_at_share(score: np.ndarray, forced: np.ndarray, share: float) -> np.ndarray:
    """``forced`` visits plus the highest ``score`` among the rest, ``share`` of all visits in total
    (more if the forced ones alone exceed it)."""
    calls = forced.copy()
    room = int(round(share * len(score))) - int(calls.sum())
    if room > 0:
        rest = np.flatnonzero(~calls)
        calls[rest[np.argsort(-score[rest], kind="stable")[:room]]] = True
    return calls


def admitted_level_1_2(levels: np.ndarray, admitted: np.ndarray) -> np.ndarray:
    """The visits the issue's bar counts: admitted, and level 1-2 by the triage nurse."""
    return admitted & (levels <= 2)


def ceiling(signals: dict[str, np.ndarray], forced: np.ndarray, levels: np.ndarray, admitted: np.ndarray,
            outcome: np.ndarray) -> list[dict[str, Any]]:
    target = admitted_level_1_2(levels, admitted)
    out = []
    for name, score in signals.items():
        for share in SHARES:
            calls = calls_at_share(score, forced, share)
            out.append({"signal": name, "share_level_1_2": round(float(calls.mean()), 4),
                        "admitted_level_1_2_recall": round(float(calls[target].mean()), 4),
                        "outcome_recall": round(float(calls[outcome.astype(bool)].mean()), 4)})
    return out


def run(data: Path, seed: int = 0) -> dict[str, Any]:
    from dataclasses import replace

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from edge.clinical.decision_rule import sigmoid, softmax
    from export import esi_protocol, scale_heads
    from export.esi_baselines import reason_code_design
    from export.finetune_study import frozen_arrays

    train, valid = frozen_arrays(data, seed)
    config = scale_heads.ScaleHeadConfig(seed=seed)
    heads = esi_protocol.fit(train, config)
    logits, outcome_logit = scale_heads.predict(heads, valid.pooled, valid.features, valid.similarity)
    admission = scale_heads.train(train.pooled, train.features, train.similarity, train.rows.levels,
                                  train.rows.admitted.astype(np.int64), replace(config, outcome_pos_weight=1.0))
    _, admission_logit = scale_heads.predict(admission, valid.pooled, valid.features, valid.similarity)
    # The target itself as the label: no head could rank these visits better from the same inputs
    # unless it read more than the structured fields and the reason-for-visit codes.
    design = reason_code_design(train)
    on_target = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.08, random_state=seed).fit(
        design(train), admitted_level_1_2(train.rows.levels, train.rows.admitted))
    p_target = on_target.predict_proba(design(valid))[:, 1]
    p12 = softmax(logits)[:, :2].sum(axis=1)
    p_outcome, p_admitted = sigmoid(outcome_logit), sigmoid(admission_logit)
    signals = {"P(level 1-2)": p12, "P(critical care or death)": p_outcome, "P(admitted)": p_admitted,
               "P(level 1-2) x P(admitted)": p12 * p_admitted, "P(level 1-2) + P(admitted)": p12 + p_admitted,
               "gradient boosting on the target (admitted and level 1-2; structured + reason-for-visit codes)": p_target}
    rows = valid.rows
    target = admitted_level_1_2(rows.levels, rows.admitted)
    return {"data": "NHAMCS: heads trained 2016-2018, ranked on 2019 (2020 untouched)",
            "admitted_share": round(float(rows.admitted.mean()), 4),
            "admitted_level_1_2_share": round(float(target.mean()), 4),
            "rules_share_level_1_2": round(float((valid.floors <= 2).mean()), 4),
            "auc": {"P(admitted) for admission": round(float(roc_auc_score(rows.admitted, p_admitted)), 4),
                    "P(level 1-2) for nurse level 1-2": round(float(roc_auc_score(rows.levels <= 2, p12)), 4),
                    "gradient boosting for admitted and level 1-2": round(float(roc_auc_score(target, p_target)), 4)},
            "ceiling": ceiling(signals, valid.floors <= 2, rows.levels, rows.admitted, rows.outcome)}


def main(argv: list[str] | None = None) -> int:
    from export.data import data_root

    parser = argparse.ArgumentParser(prog="edge-export admission-ceiling", description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = json.dumps(run(data_root(args.data)), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result + "\n", encoding="utf-8")
    print(result)
    return 0
