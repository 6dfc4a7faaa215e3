"""ONNX export (opset 17, dynamic batch and sequence axes) and a runner that scores a graph the
way the runtime does. The int8 recipe applied to the exported graph is
``export.quantization_recipe``; the gate it must pass is ``export.int8_gate``.
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


def head_node_names(path: Path) -> list[str]:
    """MatMul/Gemm nodes of the fusion head and feature layer (named /head/... by the tracer)."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and "/head/" in n.name]


def encoder_matmuls(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path)).graph
    names = []
    for node in graph.node:
        if node.op_type == "MatMul" and "/head/" not in node.name:
            # weight MatMuls only: their second input is an initializer
            inits = {i.name for i in graph.initializer}
            if node.input[1] in inits:
                names.append(node.name)
    return names


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
