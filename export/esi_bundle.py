"""Put the ESI scale into a bundle: knowledge files, the ``scales`` table, its int8 gate, its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from export import esi_protocol, int8_gate
from export.multiscale import OUTPUTS

ATTRIBUTION = ("Contains data from the Medical Abbreviation and Acronym Meta-Inventory (CC BY 4.0) and "
               "Wikipedia's List of medical abbreviations (CC BY-SA 3.0).")
NHAMCS_TERMS = ("National Center for Health Statistics, National Hospital Ambulatory Medical Care Survey, Emergency "
                "Department public-use data files, 2016-2020. Public domain in the US; NCHS data-use terms: statistical "
                "reporting and analysis only, no attempt to identify any person or establishment, no linkage.")


def add_abbreviations(staging: Path, rows: list[dict[str, str]], manifest: dict[str, Any]) -> None:
    """The shorthand table the build expanded its texts with, so the runtime expands the same."""
    (staging / "abbreviations.json").write_text(json.dumps({"attribution": ATTRIBUTION, "rows": rows},
                                                           indent=1) + "\n", encoding="utf-8")
    knowledge = manifest.setdefault("knowledge", {})
    knowledge.update({"abbreviations_file": "abbreviations.json", "abbreviations_attribution": ATTRIBUTION})


def add(staging: Path, esi, fp32: Path, config, manifest: dict[str, Any]) -> dict[str, Any]:
    """Adds to ``manifest`` in place (the build writes it again when it finishes)."""
    add_abbreviations(staging, esi.abbreviation_rows, manifest)
    (staging / "rfv_labels.json").write_text(json.dumps(esi.rfv_labels, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    gate = int8_gate.esi_gate(staging, fp32, esi, config.max_seq_len)
    report = esi.report
    test = report["test_2020"]
    manifest["outputs"] = OUTPUTS
    manifest["default_scale"] = "ktas"
    manifest["scales"] = {
        "ktas": {"output": "logits", "calibration": manifest["calibration"], "decision": manifest["decision"],
                 "evaluation": {"data": "KTAS (Moon et al. 2019), expert levels, out of fold",
                                **manifest["evaluation"]["operating_point"]}},
        "esi": {"output": "logits_esi", "outcome_output": "outcome_logit",
                "calibration": {"temperature": esi.temperature, "method": "temperature scaling, NLL on NHAMCS 2019"},
                "decision": esi.decision,
                "evaluation": {"data": "NHAMCS 2020 (heads trained 2016-2019; its labels unread by the choice), nurse-recorded ESI levels",
                               "accuracy": test["accuracy"], "under_triage": test["under_triage"],
                               "critical_recall": test["critical_recall"], "critical_outcome": test["critical_outcome"],
                               "admitted_critical_recall": test["admitted"]["critical_recall"]}},
    }
    manifest["knowledge"].update({
        "rfv_labels_file": "rfv_labels.json",
        "complaints": esi.complaint_names,
        "complaints_source": "CEDIS/CTAS/KTAS presenting-complaint list (presenting-complaints fact table; names only)",
        "esi_rules_source": "ESI v4 high-risk situations (esi-high-risk fact table), rows cited by id in edge/rules.py",
    })
    manifest["training_data"]["nhamcs"] = {"files": [f"nhamcs-ed-2016-2020/ed{y}_sas.zip" for y in range(2016, 2021)],
                                           "rows": report["rows"], "terms": NHAMCS_TERMS,
                                           "inputs": "triage-time fields and reason-for-visit labels only; outcomes "
                                                     "(critical care unit, death in the ED) are training targets"}
    manifest["quantization"]["gate_esi"] = gate
    manifest["evaluation"]["esi"] = {k: v for k, v in report.items() if k != "tried"}
    build_config = manifest["build"]["config"]
    build_config["prune_extra"] = f"{len(build_config.get('prune_extra') or [])} texts (NHAMCS labels, complaint names, expansions)"
    (staging / "esi_settings_2019.json").write_text(json.dumps(report["tried"], indent=0) + "\n", encoding="utf-8")
    _plot(staging, report)
    (staging / "REPORT_ESI.md").write_text(markdown(report, gate), encoding="utf-8")
    from edge.inference.bundle import write_manifest

    write_manifest(staging, manifest)
    return {"int8_gate": gate, "test_2020": test, "settings_compared": report["settings_compared"]}


def _plot(staging: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    curve = [p for p in report["outcome_curve_2020"] if p["recall"] is not None]
    ax.plot([p["share_level_1_2"] for p in curve], [p["recall"] for p in curve], "o-", label="model (outcome threshold swept)")
    for name, style in (("gradient_boosting", "s--"), ("tfidf_regression", "^:")):
        pts = report["baselines_2020"][name]["curve"]
        ax.plot([p["alarm"] for p in pts], [p["outcome_recall"] for p in pts], style, label=name.replace("_", " ") + " (cost weight swept)")
    nurse = report["baselines_2020"]["nurse"]["critical_outcome"]
    ax.plot([nurse["share_level_1_2"]], [nurse["recall_level_1_2"]], "r*", markersize=14, label="triage nurse")
    shipped = report["test_2020"]["critical_outcome"]
    ax.plot([shipped["share_level_1_2"]], [shipped["recall_level_1_2"]], "kD", markersize=9, label="shipped setting")
    ax.axvline(0.25, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("share of all visits called level 1-2 (alarm rate)")
    ax.set_ylabel("critical care or ED death: share at level 1-2")
    ax.set_title("NHAMCS 2020 (labels unread by the choice), ESI scale")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(staging / "esi_outcome_curve.png", dpi=110)
    plt.close(fig)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _row(name: str, card: dict[str, Any]) -> str:
    co = card.get("critical_outcome", {})
    adm = card.get("admitted", {})
    return (f"| {name} | {card['accuracy']:.3f} | {_pct(card['under_triage'])} | {_pct(card['critical_recall'])} | "
            f"{_pct(co.get('recall_level_1_2'))} | {_pct(co.get('share_level_1_2'))} | {_pct(adm.get('critical_recall'))} |")


def _point_row(name: str, p: dict[str, Any]) -> str:
    return (f"| {name} | {p['accuracy']:.3f} | {_pct(p['under_triage'])} | {_pct(p['critical_recall'])} | "
            f"{_pct(p['outcome_recall'])} | {_pct(p['alarm'])} | – |")


def markdown(report: dict[str, Any], gate: dict[str, Any]) -> str:
    head = ("| | accuracy | under-triage % | level 1-2 recall % | critical care or death at level 1-2 % | "
            "visits at level 1-2 % | admitted: level 1-2 recall % |\n|---|---|---|---|---|---|---|")
    base = report["baselines_2020"]
    chosen = report["chosen"]
    lines = [
        "# ESI scale — NHAMCS (US emergency departments)", "",
        f"Protocol: {report['protocol']}. Rows: {report['rows']}. Settings compared on 2019: "
        f"**{report['settings_compared']}** (2 knowledge switches × {report['settings_compared'] // 2} decision settings); "
        f"chosen: {chosen['switch']}, {chosen['decision']}, temperature {chosen['temperature']}, under the constraint "
        f"that at most {100 * chosen['max_alarm_rate']:.0f} % of 2019 visits, and of 2020 visits by their inputs alone, "
        f"are called level 1-2, and 2019 under-triage is at most {100 * chosen['max_under_triage']:.0f} %. "
        "The 2020 labels were read once, after the choice.", "",
        f"History: {report['protocol_history']}", "",
        "## NHAMCS 2020 (truth: the level the hospital's triage nurse recorded)", "", head,
        _row("**shipped path** (heads + decision + ESI rules)", report["test_2020"]),
        _row("model without the safety rules", report["test_2020_model_without_rules"]),
        _row("shipped path, kiosk view (complaint, age, sex, pain only)", report["test_2020_kiosk"]),
        _row("triage nurse (IMMEDR)", base["nurse"]),
        _row("gradient boosting, structured + reason-for-visit labels (argmax)", base["gradient_boosting"]["argmax"]),
        _point_row("gradient boosting at the shipped path's under-triage", base["gradient_boosting"]["at_model_under_triage"]),
        _row("TF-IDF + features regression (argmax)", base["tfidf_regression"]["argmax"]),
        _point_row("TF-IDF regression at the shipped path's under-triage", base["tfidf_regression"]["at_model_under_triage"]),
        _row("safety rules alone (else level 3)", base["rules_alone"]), "",
        "The nurse row is the truth scored against itself for the level columns; its meaningful figures are the "
        "critical-outcome ones (ADMIT = critical care unit, DIEDED = died in the ED; outcomes select and score "
        "visits, they are never inputs).", "",
        "![critical-outcome recall against alarm rate](esi_outcome_curve.png)", "",
        "## What each knowledge piece buys (NHAMCS 2019, heads trained 2016-2018)", "",
        "| variant | accuracy | under-triage % | level 1-2 recall % | outcome at level 1-2 % | level 1-2 share % | admitted recall % |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in report["ablation_2019"]:
        lines.append(f"| {a['variant']} | {a['accuracy']:.3f} | {_pct(a['under_triage'])} | {_pct(a['critical_recall'])} | "
                     f"{_pct(a['outcome_recall'])} | {_pct(a['alarm'])} | {_pct(a['admitted_critical_recall'])} |")
    lines += ["", "Complaint-similarity features on/off is the knowledge switch compared in the 2019 selection "
              "(esi_settings_2019.json lists every setting). Abbreviation expansion changes nothing on NHAMCS "
              "(CDC's labels are written out); it matters for free-text complaints (MIMIC-IV-ED style).", "",
              "## Subgroups (NHAMCS 2020, shipped path)", "",
              "| group | value | n | under-triage % | level 1-2 recall % | outcome at level 1-2 % | flag |",
              "|---|---|---|---|---|---|---|"]
    for g in report["subgroups_2020"]:
        lines.append(f"| {g['group']} | {g['value']} | {g['n']} | {_pct(g['under_triage'])} | {_pct(g['critical_recall'])} | "
                     f"{_pct(g['outcome_recall'])} | {g['flag']} |")
    lines += ["", "## int8", "",
              f"ESI levels from the int8 graph against the fp32 graph on {gate['n']} NHAMCS 2020 visits: agreement "
              f"{100 * gate['agreement']:.2f} %, {gate['moved_two_or_more_less_urgent']} moved two or more levels "
              f"less urgent; gate {'passes' if gate['passes'] else 'FAILS'}.", ""]
    return "\n".join(lines)
