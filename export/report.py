"""The evaluation report beside the bundle: markdown, confusion matrix, reliability diagram,
trade-off curve (plot + table + CSV), and the latency measurements."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

METRIC_COLUMNS = ("accuracy", "macro_f1", "qwk", "under_triage", "critical_recall")


def baselines(root: Path) -> dict[str, Any] | None:
    from export import baselines as bl
    from export.data import KTAS_FILE

    return bl.run_baselines(root / KTAS_FILE)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plots(staging: Path, chosen: dict[str, Any], result: dict[str, Any]) -> None:
    from edge.clinical.evaluation_metrics import confusion

    plt = _plt()
    matrix = confusion(chosen["truth"], chosen["levels"]["int8"])
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(matrix, cmap="Blues")
    for i in range(5):
        for j in range(5):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="black" if matrix[i, j] < matrix.max() / 2 else "white")
    ax.set_xticks(range(5), [str(k) for k in range(1, 6)])
    ax.set_yticks(range(5), [str(k) for k in range(1, 6)])
    ax.set_xlabel("predicted level (int8, decision + rules)")
    ax.set_ylabel("expert KTAS level")
    ax.set_title("Out-of-fold confusion matrix")
    fig.tight_layout()
    fig.savefig(staging / "confusion_matrix.png", dpi=110)
    plt.close(fig)

    probs = chosen["probs"]["int8"]
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) + 1) == chosen["truth"]
    edges = np.linspace(0, 1, 11)
    centres, accuracy, counts = [], [], []
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            centres.append(float(confidence[inside].mean()))
            accuracy.append(float(correct[inside].mean()))
            counts.append(int(inside.sum()))
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    result["calibration"]["ece_10_bins"] = round(float(ece), 4)
    result["calibration"]["reliability"] = [{"confidence": round(c, 3), "accuracy": round(a, 3), "n": n}
                                            for c, a, n in zip(centres, accuracy, counts)]
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centres, accuracy, "o-", label=f"int8, T={result['calibration']['temperature']:.2f} (ECE {ece:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy (argmax level)")
    ax.set_title("Reliability diagram (out-of-fold)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(staging / "reliability_diagram.png", dpi=110)
    plt.close(fig)

    curves = {"student int8 (shipped decision family)": result["tradeoff_int8"],
              "student int8 (critical weight 1)": result["tradeoff_int8_critical_weight_1"]}
    if result.get("tradeoff_regression"):
        curves["regression + rules (export.baselines)"] = result["tradeoff_regression"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, curve in curves.items():
        ut = [p["under_triage"] for p in curve]
        axes[0].plot(ut, [p["accuracy"] for p in curve], "o-", ms=3, label=name)
        axes[1].plot(ut, [p["critical_recall"] for p in curve], "o-", ms=3, label=name)
    op = result["operating_point"]
    for ax, key, target in ((axes[0], "accuracy", 0.68), (axes[1], "critical_recall", 0.80)):
        ax.axvline(0.10, color="red", ls=":", label="nurse under-triage 10 %")
        ax.axhline(target, color="grey", ls=":")
        ax.plot([op["under_triage"]], [op[key]], "r*", ms=14, label="shipped operating point")
        ax.set_xlabel("under-triage rate")
        ax.set_ylabel(key.replace("_", " "))
    axes[0].legend(fontsize=7)
    fig.suptitle("Trade-off across decision settings (under-weight), out-of-fold, after safety rules")
    fig.tight_layout()
    fig.savefig(staging / "tradeoff.png", dpi=110)
    plt.close(fig)
    with (staging / "tradeoff.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "under_weight", "accuracy", "under_triage", "over_triage", "critical_recall"])
        for name, curve in curves.items():
            for p in curve:
                writer.writerow([name, p["under_weight"], *(round(p[k], 4) for k in ("accuracy", "under_triage", "over_triage", "critical_recall"))])


def _cell(stats: dict[str, float] | None) -> str:
    return "–" if not stats else f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def write_markdown(staging: Path, result: dict[str, Any]) -> None:
    m = result["manifest"]
    ev = m["evaluation"]
    op = result["operating_point"]
    gate = result["int8_gate"]
    lines = [f"# {m['name']} {m['version']} — evaluation report", "",
             f"Built {m['created']} by `{m['build']['command']}` (seed {m['build']['seed']}). "
             f"Base model {m['base_model']['name']} ({m['base_model']['license']}, `{m['base_model']['package']}`); "
             f"teacher {m['teacher_model']['name']}.", "",
             "## Cross-validation (out-of-fold, `export.cv` folds shared with the baselines)", "",
             f"{ev['cv']['splits']}-fold stratified CV; teacher {ev['cv']['teacher_repeats']} repeat(s), student "
             f"{ev['cv']['student_repeats']} repeat(s) (each student fold is distilled, exported and quantized). "
             "Mean ± sd over folds.", "",
             "| model | accuracy | macro-F1 | QWK | under-triage | critical recall |", "|---|---|---|---|---|---|"]
    for name, row in result["cv_table"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(k)) for k in METRIC_COLUMNS) + " |")
    lines += ["", "## Shipped operating point (int8, calibrated, min expected cost, then safety rules)", "",
              f"Temperature {m['calibration']['temperature']}; under-weight {op['under_weight']}, critical weight "
              f"{op['critical_weight']} (cost matrix in manifest). Out-of-fold: accuracy {op['accuracy']:.3f}, "
              f"under-triage {op['under_triage']:.3f}, over-triage {op['over_triage']:.3f}, critical recall "
              f"{op['critical_recall']:.3f}, QWK {op['qwk']:.3f}. Targets (under-triage ≤ 0.10, accuracy ≥ 0.68, "
              f"critical recall ≥ 0.80): **{'met' if op['meets_targets'] else 'NOT met'}**.", "",
              *_nested_lines(ev.get("operating_point_nested")),
              *_seed_spread_lines(ev.get("seed_spread")),
              "![confusion](confusion_matrix.png) ![reliability](reliability_diagram.png)", "",
              f"Calibration: ECE (10 bins) {result['calibration'].get('ece_10_bins')}.", "",
              "## int8 vs fp32 (out-of-fold, same decision and rules)", "",
              f"Same level on {gate['agreement']:.2%} of {gate['n']} cases ({gate['changed']} changed: "
              f"{gate['changed_less_urgent']} less urgent, {gate['changed_more_urgent']} more urgent; "
              f"{gate['moved_two_or_more_less_urgent']} moved ≥ 2 levels less urgent). Metric deltas int8 − fp32: "
              f"{gate['metric_deltas_int8_minus_fp32']}. Gate: **{'pass' if gate['passes'] else 'FAIL'}** "
              f"(≥ 99.5 % agreement: {gate['passes_agreement_target']}; minimum criteria: {gate['passes_minimum']}).", "",
              f"Recipe: {m['quantization']['method']} ({m['quantization'].get('op', '')}), weights {m['quantization']['weights']}, "
              f"activations {m['quantization']['activations']}, embeddings {m['quantization']['embeddings']}; heads "
              f"{m['quantization']['heads']}. Encoder fusions: {m['quantization'].get('fusion', {})}. "
              "The heads were trained on this int8 encoder's pooled vectors.", "",
              "Recipes measured on the same out-of-fold cases (level agreement with fp32 after decision and rules):", "",
              "| recipe | agreement | changed (less / more urgent) | moved ≥ 2 less urgent | Δ accuracy | Δ under-triage | Δ critical recall |",
              "|---|---|---|---|---|---|---|"]
    for name, g in (m["quantization"].get("recipe_comparison_oof") or {}).items():
        d = g["metric_deltas_int8_minus_fp32"]
        lines.append(f"| {name} | {g['agreement']:.2%} | {g['changed']} ({g['changed_less_urgent']} / {g['changed_more_urgent']}) | "
                     f"{g['moved_two_or_more_less_urgent']} | {d['accuracy']:+.3f} | {d['under_triage']:+.3f} | {d['critical_recall']:+.3f} |")
    inv = result.get("batch_invariance")
    if inv:
        lines += ["", f"Batch invariance (bundle via `TriageModel`, {inv['cases']} cases alone vs batched): max |Δp| "
                  f"{inv['max_abs_prob_diff']:.2e}, DynamicQuantizeLinear nodes {inv['dynamic_quantize_nodes']}: "
                  f"**{'pass' if inv['passes'] else 'FAIL'}** (part of the gate)."]
    if result.get("views"):
        lines += ["", "## Missing fields (out-of-fold, same rows with fields removed; shipped path)", "",
                  f"Training heads see masked copies of {ev.get('missing_fraction')} × the training rows "
                  "(no vitals / no other optional fields / kiosk / MIMIC-like; `export.augment`), same labels and "
                  "soft targets; held-out rows are masked only for these rows of the table.", "",
                  "| view | accuracy | under-triage | over-triage | critical recall | QWK |", "|---|---|---|---|---|---|",
                  f"| full rows | {op['accuracy']:.3f} | {op['under_triage']:.3f} | {op['over_triage']:.3f} | {op['critical_recall']:.3f} | {op['qwk']:.3f} |"]
        for name, v in result["views"].items():
            lines.append(f"| {name} | {v['accuracy']:.3f} | {v['under_triage']:.3f} | {v['over_triage']:.3f} | "
                         f"{v.get('critical_recall', float('nan')):.3f} | {v['qwk']:.3f} |")
        lines += ["", "Fraction sweep, measured on the v1 build (features-v1, KTAS only, before the ESI scale; not re-run "
                  "for this build) (`edge-export build --missing-fraction F --no-baselines --no-latency`, same seed and "
                  "folds; shipped-path int8, OOF; full rows accuracy / under-triage / critical recall — kiosk accuracy / "
                  "under-triage / critical recall): 0 → 0.681 / 0.089 / 0.817 — 0.299 / 0.044 / 0.980 (over-triage 0.66); "
                  "0.1 → 0.684 / 0.083 / 0.805 — 0.631 / 0.098 / 0.746; 0.25 → 0.672 / 0.088 / 0.805 — 0.630 / 0.119 / 0.728; "
                  "0.5 → 0.666 / 0.090 / 0.812 — 0.645 / 0.112 / 0.734. 0.25 and 0.5 miss the 0.68 accuracy gate on full "
                  "rows, so 0.1 ships; its price is kiosk critical recall ≈ 0.75 (the model without vitals misses "
                  "about a quarter of level 1-2 cases that the full row would catch; the kiosk's own rules must cover them)."]
    lines += ["", "## Trade-off across decision settings", "", "![tradeoff](tradeoff.png)", "",
              "| model | under-weight | accuracy | under-triage | critical recall |", "|---|---|---|---|---|"]
    curves = {"student int8": result["tradeoff_int8"]}
    if result.get("tradeoff_regression"):
        curves["regression + rules"] = result["tradeoff_regression"]
    for name, curve in curves.items():
        for p in curve:
            if float(p["under_weight"]) in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0):
                lines.append(f"| {name} | {p['under_weight']:g} | {p['accuracy']:.3f} | {p['under_triage']:.3f} | {p['critical_recall']:.3f} |")
    lines += ["", "Full curves: `tradeoff.csv`.", "", "## Size and shrinking", "",
              f"Bundle {result['size_mb']} MB (int8 graph {result['model_mb']} MB; fp32 graph {result['fp32_mb']} MB). "
              f"Shrink steps: {m['shrink']}.", ""]
    if result.get("latency"):
        lines += ["## Latency (this build machine, shared CPU; median of repeated single-case runs)", "",
                  "| model | median ms |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in result["latency"].items() if k.endswith("_ms")]
        lines += ["", f"Median complaint: {result['latency'].get('median_tokens')} tokens.", ""]
    lines += ["## Build stages (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in (result.get("stages_s") or {}).items()]
    lines += [f"| total | {result.get('build_s')} |", "",
              f"In-sample runtime check (bundle through `edge.inference.triager.Triager` on its own training rows; not an "
              f"accuracy estimate): {result['in_sample']}.", ""]
    if (staging / "REPORT_ESI.md").is_file():
        lines[3:3] = ["This bundle also answers in the **ESI** scale (US): its protocol, held-out NHAMCS 2020 figures "
                      "beside the nurse and the baselines, ablations and subgroups are in [REPORT_ESI.md](REPORT_ESI.md). "
                      "The sections below are the **KTAS** scale.", ""]
    (staging / "REPORT.md").write_text("\n".join(lines), encoding="utf-8")


def _nested_lines(nested: dict[str, Any] | None) -> list[str]:
    if not nested:
        return []
    t = nested["per_fold_mean"]
    return [f"The operating point above was chosen on the same folds that report it (optimistic). Scored instead at "
            f"the point chosen on the *other* folds of each repeat ({nested['settings_compared_per_fold']} decision "
            f"settings compared per fold): accuracy {t['accuracy']['mean']:.3f} ± {t['accuracy']['sd']:.3f}, "
            f"under-triage {t['under_triage']['mean']:.3f} ± {t['under_triage']['sd']:.3f}, critical recall "
            f"{t['critical_recall']['mean']:.3f} ± {t['critical_recall']['sd']:.3f}. The model's own settings "
            "(augmentation fraction, recipe, head sizes) were compared on these folds too and are not nested.", ""]


def _seed_spread_lines(spread: dict[str, Any] | None) -> list[str]:
    if not spread:
        return []
    def span(where: str, key: str) -> str:
        t = spread["spread"][where][key]
        return f"{t['min']:.3f}-{t['max']:.3f} (median {t['median']:.3f})"
    return [f"Seed spread: the same folds and int8 encoder with {spread['seeds']} seeds for the fusion head (the "
            f"shipped one among them). Chosen on the folds: accuracy {span('operating_point', 'accuracy')}, under-triage "
            f"{span('operating_point', 'under_triage')}, critical recall {span('operating_point', 'critical_recall')}; "
            f"{spread['spread']['seeds_meeting_targets']} of {spread['seeds']} meet the targets. Nested: accuracy "
            f"{span('nested', 'accuracy')}, under-triage {span('nested', 'under_triage')}, critical recall "
            f"{span('nested', 'critical_recall')}. A difference smaller than the first spread is the head's seed, "
            "not the model.", ""]


def latency(setup, staging: Path, corpus, config) -> dict[str, Any]:
    """Single-case latency at the median complaint length: teacher (PyTorch, encoder + head) and
    student (the bundle through TriageModel, int8; and the fp32 graph)."""
    import torch

    from edge.inference.session import RuntimeOptions, TriageModel
    from export.teacher import fit_teacher

    lengths = [len(setup.student.tokenizer().encode(t).ids) for t in corpus.texts]
    median_tokens = int(statistics.median(lengths))
    case = corpus.cases[int(np.argmin([abs(n - median_tokens) for n in lengths]))]
    out: dict[str, Any] = {"median_tokens": median_tokens, "threads": config.threads}

    def timed(fn, runs: int) -> float:
        fn()
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(samples), 2)

    teacher = fit_teacher(setup.teacher_embeddings[:64], corpus.features[:64], corpus.labels[:64] - 1,
                          config.teacher_head.__class__(epochs=1))
    feats = corpus.features[:1]

    def teacher_once() -> None:
        with torch.no_grad():
            pooled = setup.teacher.embed([case.complaint], desc="latency")
            teacher.logits(pooled, feats)

    out["teacher_pytorch_fp32_ms"] = timed(teacher_once, 20)
    for threads in (1, config.threads):
        model = TriageModel.load(staging, RuntimeOptions(intra_op_threads=threads))
        out[f"student_int8_bundle_{threads}thread_ms"] = timed(lambda: model.logits([case]), 200)
    return out
