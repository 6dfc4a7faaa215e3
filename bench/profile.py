"""Where the shipped graph spends its time: ONNX Runtime's own profiler over a few runs at the
median complaint length, kernel time summed by op type (per inference). Explains the distance
to the compute floor (e.g. a weight dequantized on every run instead of once at load).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np


def op_profile(model_file: Path, ids: np.ndarray, features: np.ndarray, runs: int = 30, threads: int = 1) -> dict[str, Any]:
    import onnxruntime as ort

    from edge.inference.session import RuntimeOptions, _session_options

    options = _session_options(RuntimeOptions(intra_op_threads=threads))
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "features" in names:
            feeds["features"] = features
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]  # microseconds
    total = sum(by_op.values())
    return {
        "tokens": int(ids.shape[1]), "runs": runs, "threads": threads,
        "kernel_ms_per_inference": round(total / runs / 1000, 4),
        "top_ops_ms_per_inference": {op: round(us / runs / 1000, 4) for op, us in by_op.most_common(8)},
        "top_ops_share": {op: round(us / total, 3) for op, us in by_op.most_common(8)} if total else {},
    }
