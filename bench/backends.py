"""The things being compared, behind one call: ``backend(ids, mask, features)``.

ONNX Runtime backends use the runtime's own session settings (``edge.inference.session``: spinning off,
arena off), so the fp32 student and the shipped int8 bundle differ only in their graphs.
PyTorch backends run in the same process with ``torch.set_num_threads`` set per measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Backend ids, in the order tables and plots show them.
SHIPPED = "shipped_int8_ort"
STUDENT_ORT_FP32 = "student_ort_fp32"
STUDENT_TORCH_FP32 = "student_pytorch_fp32"
TEACHER_TORCH_FP32 = "teacher_pytorch_fp32"
ORDER = (TEACHER_TORCH_FP32, STUDENT_TORCH_FP32, STUDENT_ORT_FP32, SHIPPED)


@dataclass
class Backend:
    name: str
    threads: int
    description: str
    run: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]
    vocab_size: int | None = None

    def __call__(self, ids: np.ndarray, features: np.ndarray) -> Any:
        if self.vocab_size:
            ids = ids % self.vocab_size
        return self.run(ids, np.ones_like(ids), features)


def onnx_vocab_size(model_path: Path) -> int | None:
    """Rows of the embedding table the graph gathers ``input_ids`` from (None if not found)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == "input_ids":
            dims = shapes.get(node.input[0])
            if dims:
                return int(dims[0])
    return None


def ort_backend(name: str, model_path: Path, threads: int, description: str) -> Backend:
    import onnxruntime as ort

    from edge.inference.session import RuntimeOptions, _session_options

    session = ort.InferenceSession(str(model_path), sess_options=_session_options(RuntimeOptions(intra_op_threads=threads)),
                                   providers=["CPUExecutionProvider"])
    input_names = {i.name for i in session.get_inputs()}
    output = session.get_outputs()[0].name

    def run(ids: np.ndarray, mask: np.ndarray, features: np.ndarray) -> Any:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "features" in input_names:
            feeds["features"] = features
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return session.run([output], feeds)

    return Backend(name, threads, description, run, onnx_vocab_size(model_path))


def shipped_backend(bundle_dir: Path, threads: int) -> Backend:
    """The bundle exactly as the service loads it (sha256 verified, warmed up)."""
    from edge.inference.session import RuntimeOptions, TriageModel

    model = TriageModel.load(bundle_dir, RuntimeOptions(intra_op_threads=threads))
    manifest = model.bundle.manifest
    description = f"{manifest['name']} {manifest['version']} via edge.inference.session.TriageModel"
    return Backend(SHIPPED, threads, description, model.run_arrays, onnx_vocab_size(model.bundle.model_file))


def torch_backend(name: str, module: Any, threads: int, description: str, vocab_size: int | None) -> Backend:
    """``module(input_ids, attention_mask, features)`` → logits, timed under inference_mode."""
    import torch

    def run(ids: np.ndarray, mask: np.ndarray, features: np.ndarray) -> Any:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return module(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(features))

    return Backend(name, threads, description, run, vocab_size)
