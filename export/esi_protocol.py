"""The ESI scale's honest protocol on NHAMCS (US visits, nurse ESI levels, outcomes).

1. Choose: heads trained on 2016-2018; every setting (knowledge switches, decision cost weight,
   critical thresholds) compared on 2019 — the number compared is recorded.
2. Report once: the chosen setting retrained on 2016-2019, scored on 2020 beside the nurse,
   gradient boosting on structured fields + reason-for-visit labels, TF-IDF regression and the
   rules alone, with the critical-outcome figures, the admitted visits and subgroups.
3. Ship: retrained on 2016-2020.

The decision rule (``edge.clinical.decision_rule``): minimum expected cost, then raise to level 2 when P(level
1-2) ≥ ``critical_threshold`` or the outcome head's P(critical care or death) ≥
``outcome_threshold``, then the ESI safety rules (raise-only).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from edge.clinical import evaluation_metrics as metrics, rules
from edge.clinical.decision_rule import cost_matrix, decide, sigmoid, softmax
from export import scale_heads
from export.nhamcs_data import Rows

# Operating-point constraint: at most this share of visits at level 1-2 (the issue allows 25 %),
# on the validation year *and* on the newest year's visits. The share of calls reads inputs only,
# no label, so checking it on the newest population is not tuning on its answers. Why: a cap of
# 22 % on 2019 alone (protocol v1) called 26.6 % of 2020 visits level 1-2 — a sicker year (its
# nurse called 16.6 % level 1-2, 2019's 15.2 %) moves the calls more than one year's margin.
MAX_ALARM_RATE = 0.24
# And at most this under-triage on the validation year (the KTAS scale's own bar). Why (protocol v3):
# the objective below rewards recall of sick visits and never under-triage, so a rebuild whose heads
# moved a hair (a candidate int8 encoder, export.row_int8_compact) picked a setting 0.8 points better on
# it at 14.1 % under-triage over the shipped choice at 9.8 % (2019 figures; no 2020 label read here).
MAX_UNDER_TRIAGE = 0.10
UNDER_WEIGHTS = (1.5, 2.0, 2.5, 3.0)
CRITICAL_THRESHOLDS = (None, 0.35, 0.3, 0.25, 0.2)
OUTCOME_THRESHOLDS = (None, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05)


@dataclass
class Inputs:
    """What the model and rules read of some visits: no level, no outcome."""

    pooled: np.ndarray
    features: np.ndarray
    similarity: np.ndarray
    floors: np.ndarray  # the ESI rules' level per visit (6: none fired)


@dataclass
class Arrays:
    pooled: np.ndarray
    features: np.ndarray
    similarity: np.ndarray
    rows: Rows
    floors: np.ndarray  # as in Inputs

    @property
    def inputs(self) -> Inputs:
        return Inputs(self.pooled, self.features, self.similarity, self.floors)


def decision_spec(w: float, theta: float | None, tau: float | None) -> dict[str, Any]:
    return {"rule": "min_expected_cost", "under_weight": w, "cost_matrix": cost_matrix(w).round(6).tolist(),
            "critical_threshold": theta, "outcome_threshold": tau, "review_below_confidence": 0.5}


def final_levels(level_logits: np.ndarray, outcome_logit: np.ndarray, temperature: float,
                 decision: dict[str, Any], floors: np.ndarray) -> np.ndarray:
    probs = softmax(level_logits, temperature)
    levels = decide(probs, decision, sigmoid(outcome_logit))
    return np.minimum(levels, floors)


def case_floors(cases: Sequence, scale: str = "esi") -> np.ndarray:
    """The safety rules' level for each ``TriageCase`` (6: none fired)."""
    return np.asarray([rules.rules_level(rules.evaluate(c, scale)) or 6 for c in cases], dtype=np.int64)


def rule_floors(cases: Sequence, scale: str = "esi") -> np.ndarray:
    """``case_floors`` of labelled cases."""
    return case_floors([c.case for c in cases], scale)


def scorecard(levels: np.ndarray, rows: Rows) -> dict[str, Any]:
    y = rows.levels
    m = metrics.compute(y, levels)
    admitted = rows.admitted
    adm = metrics.compute(y[admitted], levels[admitted]) if admitted.any() else None
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "qwk": round(m["qwk"], 4),
            "under_triage": round(m["under_triage"], 4), "over_triage": round(m["over_triage"], 4),
            "critical_recall": round(m["critical_recall"], 4) if m["critical_recall"] is not None else None,
            "critical_outcome": metrics.critical_outcome(levels, rows.outcome),
            "admitted": {"n": int(admitted.sum()),
                         "critical_recall": round(adm["critical_recall"], 4) if adm and adm["critical_recall"] is not None else None,
                         "under_triage": round(adm["under_triage"], 4) if adm else None}}


def fit(train: Arrays, config: scale_heads.ScaleHeadConfig) -> scale_heads.ScaleHeads:
    return scale_heads.train(train.pooled, train.features, train.similarity, train.rows.levels,
                             train.rows.outcome, config)


def _objective(card: dict[str, Any]) -> tuple[float, float]:
    return ((card["critical_outcome"]["recall_level_1_2"] or 0.0) + (card["admitted"]["critical_recall"] or 0.0),
            -card["under_triage"])


def choose(train: Arrays, valid: Arrays, base: scale_heads.ScaleHeadConfig, newest: Inputs | None = None,
           progress=None) -> dict[str, Any]:
    """Every knowledge switch × decision setting on the validation year; the best one that calls at
    most ``MAX_ALARM_RATE`` of the validation year's visits and of ``newest``'s (inputs only) level 1-2,
    with at most ``MAX_UNDER_TRIAGE`` under-triage on the validation year."""
    from export.calibrate import fit_temperature

    switches = {"complaints on": base, "complaints off": replace(base, use_complaints=False)}
    tried = []
    best: tuple | None = None
    for name, config in switches.items():
        model = fit(train, config)
        logits, outcome = scale_heads.predict(model, valid.pooled, valid.features, valid.similarity)
        temperature = fit_temperature(logits, valid.rows.levels - 1)
        if newest is not None:
            newest_logits, newest_outcome = scale_heads.predict(model, newest.pooled, newest.features, newest.similarity)
        for w, theta, tau in itertools.product(UNDER_WEIGHTS, CRITICAL_THRESHOLDS, OUTCOME_THRESHOLDS):
            decision = decision_spec(w, theta, tau)
            card = scorecard(final_levels(logits, outcome, temperature, decision, valid.floors), valid.rows)
            newest_alarm = None if newest is None else round(float((final_levels(
                newest_logits, newest_outcome, temperature, decision, newest.floors) <= 2).mean()), 4)
            feasible = (card["critical_outcome"]["share_level_1_2"] <= MAX_ALARM_RATE
                        and card["under_triage"] <= MAX_UNDER_TRIAGE
                        and (newest_alarm is None or newest_alarm <= MAX_ALARM_RATE))
            tried.append({"switch": name, "under_weight": w, "critical_threshold": theta, "outcome_threshold": tau,
                          "feasible": feasible, **{k: card[k] for k in ("accuracy", "under_triage", "critical_recall")},
                          "outcome_recall": card["critical_outcome"]["recall_level_1_2"],
                          "alarm": card["critical_outcome"]["share_level_1_2"], "alarm_newest_inputs": newest_alarm,
                          "admitted_critical_recall": card["admitted"]["critical_recall"]})
            if feasible and (best is None or _objective(card) > best[0]):
                best = (_objective(card), name, config, decision, temperature, card)
        if progress:
            progress(name)
    if best is None:
        raise ValueError(f"no setting under-triages at most {MAX_UNDER_TRIAGE:.0%} and calls at most {MAX_ALARM_RATE:.0%} "
                         "of visits level 1-2 on the validation year"
                         + (" and the newest year's inputs" if newest is not None else ""))
    _, name, config, decision, temperature, card = best
    return {"switch": name, "config": config, "decision": decision, "temperature": temperature,
            "validation": card, "settings_compared": len(tried), "tried": tried}


def ablation(train: Arrays, valid: Arrays, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """What each knowledge piece buys on the validation year, at the chosen decision setting."""
    config, decision, temperature = chosen["config"], chosen["decision"], chosen["temperature"]
    model = fit(train, config)
    logits, outcome = scale_heads.predict(model, valid.pooled, valid.features, valid.similarity)
    none = np.full(len(valid.floors), 6)
    out = [{"variant": "shipped setting", **_brief(final_levels(logits, outcome, temperature, decision, valid.floors), valid.rows)},
           {"variant": "without ESI high-risk rules", **_brief(final_levels(logits, outcome, temperature, decision, none), valid.rows)},
           {"variant": "without the outcome head's raise", **_brief(final_levels(
               logits, outcome, temperature, {**decision, "outcome_threshold": None}, valid.floors), valid.rows)}]
    from edge.clinical.features import FEATURE_NAMES

    dz = [i for i, n in enumerate(FEATURE_NAMES) if n.startswith("esi_") or n.startswith("age_under")]
    masked_train = Arrays(train.pooled, train.features.copy(), train.similarity, train.rows, train.floors)
    masked_valid = Arrays(valid.pooled, valid.features.copy(), valid.similarity, valid.rows, valid.floors)
    masked_train.features[:, dz] = 0
    masked_valid.features[:, dz] = 0
    model = fit(masked_train, config)
    logits2, outcome2 = scale_heads.predict(model, masked_valid.pooled, masked_valid.features, masked_valid.similarity)
    out.append({"variant": "without ESI danger-zone / child age features", **_brief(
        final_levels(logits2, outcome2, temperature, decision, valid.floors), valid.rows)})
    return out


def _brief(levels: np.ndarray, rows: Rows) -> dict[str, Any]:
    card = scorecard(levels, rows)
    return {"accuracy": card["accuracy"], "under_triage": card["under_triage"], "critical_recall": card["critical_recall"],
            "outcome_recall": card["critical_outcome"]["recall_level_1_2"], "alarm": card["critical_outcome"]["share_level_1_2"],
            "admitted_critical_recall": card["admitted"]["critical_recall"]}


def subgroups(levels: np.ndarray, rows: Rows, min_n: int = 50) -> list[dict[str, Any]]:
    """Under-triage and level 1-2 recall per group; gaps over 3 points from all visits flagged."""
    overall = scorecard(levels, rows)
    out = []
    for key in ("sex", "age_band", "arrival", "race_ethnicity"):
        values = sorted({c.groups.get(key, "unknown") for c in rows.cases})
        for value in values:
            index = np.asarray([c.groups.get(key, "unknown") == value for c in rows.cases])
            if index.sum() < min_n:
                continue
            sub = Rows([c for c, keep in zip(rows.cases, index) if keep])
            card = scorecard(levels[index], sub)
            gap_under = card["under_triage"] - overall["under_triage"]
            gap_recall = (card["critical_recall"] or 0) - (overall["critical_recall"] or 0)
            out.append({"group": key, "value": value, "n": int(index.sum()), "under_triage": card["under_triage"],
                        "critical_recall": card["critical_recall"],
                        "outcome_recall": card["critical_outcome"]["recall_level_1_2"],
                        "flag": "gap > 3 points" if gap_under > 0.03 or gap_recall < -0.03 else ""})
    return out
