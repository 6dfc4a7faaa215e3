"""The int8 gate: what a quantized graph must show before it may replace the fp32 reference.

1. Same level as fp32 (after calibration, the decision rule and the safety rules) on at least
   99.5 % of held-out cases — or, at least, every headline metric within 0.5 points and no case
   moved two or more levels toward less urgent (``int8_agreement``; KTAS on the out-of-fold cases).
2. The same answer for a case alone and in any batch: no per-batch activation scale anywhere
   (``batch_invariance``).
3. For the ESI scale, the same agreement on NHAMCS 2020 visits (``esi_gate``).
A bundle that fails goes to ``<out>.rejected``, never over the shipped one (``export.build``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.clinical.evaluation_metrics import compute
from export import esi_protocol


def int8_agreement(fp32_levels: np.ndarray, int8_levels: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """The int8 gate: same level on ≥ 99.5 % of cases, or at least the headline metrics within
    0.5 points and no case moved two or more levels toward less urgent."""
    a, b = compute(truth, fp32_levels), compute(truth, int8_levels)
    moved = int8_levels - fp32_levels  # > 0: int8 less urgent
    deltas = {k: round(float(b[k] - a[k]), 4) for k in ("accuracy", "under_triage", "critical_recall")}
    agreement = float((moved == 0).mean())
    within = all(abs(v) <= 0.005 for v in deltas.values()) and int((moved >= 2).sum()) == 0
    return {
        "n": int(len(truth)), "agreement": round(agreement, 4), "changed": int((moved != 0).sum()),
        "changed_less_urgent": int((moved > 0).sum()), "changed_more_urgent": int((moved < 0).sum()),
        "moved_two_or_more_less_urgent": int((moved >= 2).sum()), "metric_deltas_int8_minus_fp32": deltas,
        "passes_agreement_target": agreement >= 0.995, "passes_minimum": within,
        "passes": agreement >= 0.995 or within,
    }


def batch_invariance(bundle: Path, cases, n: int = 64) -> dict[str, Any]:
    """Each case's probabilities alone vs in one batch with the others (the service batches
    requests): they must match, or a patient's answer would depend on who else is queued."""
    from edge.inference.session import RuntimeOptions, TriageModel
    from export.quantization_recipe import dynamic_quantize_nodes

    model = TriageModel.load(bundle, RuntimeOptions(intra_op_threads=1))
    sample = list(cases[:: max(1, len(cases) // n)])[:n]
    batched = model.probabilities(sample)
    single = np.concatenate([model.probabilities([c]) for c in sample])
    diff = float(np.abs(batched - single).max())
    dynamic = dynamic_quantize_nodes(bundle / "model.onnx")
    return {"cases": len(sample), "max_abs_prob_diff": diff, "dynamic_quantize_nodes": len(dynamic),
            "passes": diff <= 1e-6 and not dynamic}


def _esi_levels(path: Path, arrays: esi_protocol.Arrays, esi, tokenizer_path: Path, max_len: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    from tokenizers import Tokenizer

    from export.onnx_export import OrtRunner

    index = np.linspace(0, len(arrays.rows.cases) - 1, min(n, len(arrays.rows.cases))).astype(int)
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch([arrays.rows.cases[i].case.complaint for i in index])
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    out = OrtRunner(path, 2).outputs(ids, mask, arrays.features[index], ("logits_esi", "outcome_logit"))
    levels = esi_protocol.final_levels(out["logits_esi"], out["outcome_logit"][:, 0], esi.temperature, esi.decision,
                                       arrays.floors[index])
    return levels, arrays.rows.levels[index]


def esi_gate(staging: Path, fp32: Path, esi, max_len: int, n: int = 4000) -> dict[str, Any]:
    """fp32 vs the shipped int8 graph on the 2020 visits, ESI levels after the full decision."""
    fp32_levels, truth = _esi_levels(fp32, esi.test_arrays, esi, staging / "tokenizer.json", max_len, n)
    int8_levels, _ = _esi_levels(staging / "model.onnx", esi.test_arrays, esi, staging / "tokenizer.json", max_len, n)
    return int8_agreement(fp32_levels, int8_levels, truth)
