"""ONNX export of the heads (opset 17, raised to the encoder's opset when joined; dynamic batch and sequence axes), the whole bundle graph
(encoder graph + heads, ``export.graph_merge``), and a runner that scores a graph the way the
runtime does. The encoder itself goes through optimum (``export.encoder_export``) and the int8
recipe (``export.quantization_recipe``); the gate the result must pass is ``export.int8_gate``.
``export`` traces a whole fused classifier in one piece: the plain fp32 student the benchmark
compares against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

INPUT_NAMES = ["input_ids", "attention_mask", "features"]
OUTPUT_NAME = "logits"
OPSET = 17


def export(model: torch.nn.Module, path: Path, n_features: int, vocab_size: int) -> Path:
    """Trace the fused classifier into an ONNX graph with the bundle's signature."""
    model.eval()
    ids = torch.randint(5, max(6, vocab_size), (2, 8), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    feats = torch.zeros(2, n_features, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask, feats), str(path), input_names=INPUT_NAMES, output_names=[OUTPUT_NAME],
            opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "features": {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return path


def export_heads(heads: torch.nn.Module, path: Path, outputs: list[str], hidden_size: int, n_features: int) -> Path:
    """Trace ``heads(last_hidden_state, attention_mask, features)`` on its own."""
    heads.eval()
    hidden = torch.randn(2, 8, hidden_size)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    feats = torch.zeros(2, n_features, dtype=torch.float32)
    axes = {"last_hidden_state": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "features": {0: "batch"}}
    axes.update({name: {0: "batch"} for name in outputs})
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(heads, (hidden, mask, feats), str(path), input_names=["last_hidden_state", "attention_mask", "features"],
                          output_names=outputs, opset_version=OPSET, dynamo=False, dynamic_axes=axes)
    return path


def bundle_graph(heads: torch.nn.Module, outputs: list[str], encoder_graph: Path, path: Path, hidden_size: int,
                 n_features: int) -> Path:
    """The graph a bundle ships: ``encoder_graph`` (fp32 or int8) joined to the traced heads."""
    from export import graph_merge

    traced = export_heads(heads, path.with_name(path.stem + "-heads.onnx"), outputs, hidden_size, n_features)
    graph_merge.join(encoder_graph, traced, path)
    traced.unlink()
    return path


class OrtRunner:
    """Run an exported graph the way the runtime does (same session settings)."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def logits(self, ids: np.ndarray, mask: np.ndarray, features: np.ndarray, batch_size: int = 256,
               output: str = OUTPUT_NAME) -> np.ndarray:
        return self.outputs(ids, mask, features, (output,), batch_size)[output]

    def outputs(self, ids: np.ndarray, mask: np.ndarray, features: np.ndarray, names: tuple[str, ...],
                batch_size: int = 256) -> dict[str, np.ndarray]:
        """Several graph outputs from one pass over the cases."""
        out: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for start in range(0, len(ids), batch_size):
            sl = slice(start, start + batch_size)
            # trim padding columns this slice does not use, as the runtime pads to the longest
            width = max(1, int(mask[sl].sum(axis=1).max()))
            feeds = {"input_ids": ids[sl, :width].astype(np.int64), "attention_mask": mask[sl, :width].astype(np.int64),
                     "features": features[sl].astype(np.float32)}
            for name, value in zip(names, self.session.run(list(names), feeds)):
                out[name].append(value)
        return {name: np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 5)) for name, parts in out.items()}
