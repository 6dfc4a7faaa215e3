"""Write the bundle's manifest and report, and check the bundle the way the device will load it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge.inference.bundle import verify, write_manifest
from edge.clinical.features import feature_spec
from edge.clinical.evaluation_metrics import compute
from export import calibrate, int8_gate
from export.data import KTAS_FILE, NHAMCS_FILE, data_root

INPUTS = ["input_ids", "attention_mask", "features"]


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _in_sample_check(staging: Path, corpus) -> dict[str, Any]:
    """The bundle through the service's own path (TriageModel + Triager) on the training rows:
    proves the graph, tokenizer, features, decision and rules fit together. In-sample, so it is
    not an accuracy estimate (the CV table is)."""
    from edge.inference.session import RuntimeOptions, TriageModel
    from edge.inference.triager import Triager

    model = TriageModel.load(staging, RuntimeOptions(intra_op_threads=2))
    triager = Triager(model)
    levels = []
    for start in range(0, len(corpus.cases), 64):
        levels += [r.level for r in triager.triage_batch(corpus.cases[start:start + 64])]
    return calibrate.summary(compute(corpus.labels, levels))


def write(staging: Path, config, setup, corpus, cv, chosen, recipe, fp32_path: Path, baselines, stages) -> dict[str, Any]:
    from export import report
    from export.cv import fold_table

    point = chosen["point"]
    folds = cv["folds"]
    truth = corpus.labels
    t = chosen["temperature"]
    from edge.clinical.decision_rule import softmax

    rows: dict[str, dict[str, Any]] = {}
    rows["teacher (mpnet frozen + fusion head, argmax)"] = fold_table(cv["teacher"].argmax(-1) + 1, truth, folds)
    for kind, label in (("torch", "student fp32 (PyTorch, argmax)"), ("fp32", "student fp32 (ONNX, argmax)"),
                        ("int8", "student int8 (ONNX, argmax)")):
        rows[label] = fold_table(cv["student"][kind].argmax(-1) + 1, truth, folds)
    repeats = config.student_repeats
    for kind in ("fp32", "int8"):
        rows[f"student {kind} + decision + rules (shipped path)"] = fold_table(
            chosen["levels"][kind].reshape(repeats, -1), truth, folds)
    if baselines:
        for name, body in baselines["models"].items():
            rows[f"baseline: {name}"] = {k: {"mean": round(v["mean"], 4), "sd": round(v["sd"], 4)}
                                         for k, v in body["summary"].items()}
    curve = calibrate.tradeoff_curve(chosen["probs"]["int8"], chosen["truth"], chosen["fired"],
                                     point.decision["critical_weight"])
    curve_plain = calibrate.tradeoff_curve(chosen["probs"]["int8"], chosen["truth"], chosen["fired"], 1.0)
    root = data_root(config.data)
    manifest: dict[str, Any] = {
        "schema": "edge-triage-bundle/1",
        "name": config.name,
        "version": config.version,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": setup.base_model,
        "teacher_model": setup.teacher_model,
        "labels": [1, 2, 3, 4, 5],
        "max_seq_len": config.max_seq_len,
        "pad_id": setup.student.pad_id,
        "pad_token": setup.student.pad_token,
        "inputs": INPUTS,
        "output": "logits",
        "model_file": "model.onnx",
        "tokenizer_file": "tokenizer.json",
        "features": feature_spec(),
        "calibration": {"temperature": t, "method": "temperature scaling, NLL on out-of-fold int8 logits"},
        "decision": point.decision,
        "files": {"model.onnx": "", "tokenizer.json": ""},
        "quantization": {**recipe, "opset": onnx_export_opset(), "gate": chosen["gate"],
                         "gate_argmax_levels": chosen["gate_argmax"],
                         "recipe_comparison_oof": chosen.get("recipe_comparison", {})},
        "target": "x86_64,arm64",
        "targets": {"x86_64": "same graph; ORT picks AVX2/AVX-512-VNNI int8 kernels",
                    "arm64": "same graph; ORT picks NEON (dot-product where present) int8 kernels; verify agreement on the board"},
        "shrink": setup.shrink,
        "training_data": {
            "labelled": {"file": KTAS_FILE, "sha256": _sha(root / KTAS_FILE), "rows": len(corpus.cases),
                         "source": "Moon et al. 2019, KTAS expert labels", "license": "CC BY 4.0",
                         "inputs": "triage-time fields only (never KTAS_RN, diagnosis, disposition, length of stay)"},
            "transfer": {"file": NHAMCS_FILE, "sha256": _sha(root / NHAMCS_FILE), "texts": len(corpus.rfv_texts),
                         "source": "CDC NHAMCS 2022 ED reason-for-visit code list (VALUE RFVF)", "license": "public domain",
                         "use": f"unlabelled complaints × {config.transfer_copies}, structured fields from random training rows, teacher soft labels"},
        },
        "build": {"command": "edge-export build --out models/triage-minilm-int8" + (" --smoke" if config.smoke else ""),
                  "seed": config.seed, "smoke": config.smoke,
                  "config": _jsonable(asdict(config))},
        "intended_use": "Decision support for ED triage nurses; never a replacement for clinical judgement.",
    }
    cv_info = {"splits": config.n_splits, "teacher_repeats": config.teacher_repeats,
               "student_repeats": config.student_repeats, "seed": config.seed,
               "folds": "export.cv.stratified_folds (the baselines' folds)"}
    ship_metrics = calibrate.summary(compute(chosen["truth"], chosen["levels"]["int8"]))
    manifest["evaluation"] = {
        "cv": cv_info, "cv_table": rows, "operating_point": {**ship_metrics, "under_weight": point.decision["under_weight"],
                                                             "critical_weight": point.decision["critical_weight"],
                                                             "meets_targets": point.meets_targets},
        "tradeoff_int8": curve,
        # The operating point above is chosen on the same folds that report it (optimistic); this
        # one scores each fold at the point chosen on the other folds.
        "operating_point_nested": chosen.get("nested"),
        # How far the two figures above move with the fusion head's seed alone (export.seed_spread).
        "seed_spread": chosen.get("seed_spread"),
    }
    write_manifest(staging, manifest)
    in_sample = _in_sample_check(staging, corpus)
    manifest["evaluation"]["in_sample_runtime_check"] = in_sample
    invariance = int8_gate.batch_invariance(staging, corpus.cases)
    manifest["evaluation"]["batch_invariance"] = invariance
    gate = {**chosen["gate"], "batch_invariance": invariance["passes"]}
    gate["passes"] = bool(gate["passes"] and invariance["passes"])
    manifest["evaluation"]["missing_field_views_oof"] = {
        name: v["metrics"] for name, v in chosen.get("views", {}).items()}
    manifest["evaluation"]["missing_fraction"] = config.missing_fraction
    size_mb = round(sum(p.stat().st_size for p in staging.iterdir() if p.is_file()) / 1e6, 3)
    result = {
        "bundle": str(config.out), "manifest": manifest, "size_mb": size_mb,
        "model_mb": round((staging / "model.onnx").stat().st_size / 1e6, 3),
        "fp32_mb": round(fp32_path.stat().st_size / 1e6, 3),
        "operating_point": manifest["evaluation"]["operating_point"], "int8_gate": gate,
        "batch_invariance": invariance, "views": manifest["evaluation"]["missing_field_views_oof"],
        "cv_table": rows, "tradeoff_int8": curve, "tradeoff_int8_critical_weight_1": curve_plain,
        "tradeoff_regression": (baselines or {}).get("tradeoff", {}).get("curves", {}).get("regression + rules"),
        "calibration": {"temperature": t}, "in_sample": in_sample,
    }
    report.plots(staging, chosen, result)
    return result


def onnx_export_opset() -> int:
    from export.onnx_export import OPSET

    return OPSET


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def finish(staging: Path, result: dict[str, Any]) -> None:
    """Write the report and the final manifest (hashes of every file, report included), then
    verify the bundle as the runtime will."""
    from export import report

    manifest = result["manifest"]
    manifest["evaluation"]["build_s"] = result.get("build_s")
    manifest["evaluation"]["stages_s"] = result.get("stages_s")
    manifest["evaluation"]["latency"] = result.get("latency")
    manifest["evaluation"]["size_mb"] = result["size_mb"]
    report.write_markdown(staging, result)
    write_manifest(staging, manifest)
    verify(staging)
    result["size_mb"] = round(sum(p.stat().st_size for p in staging.iterdir() if p.is_file()) / 1e6, 3)
