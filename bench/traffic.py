"""Bytes a graph must read from memory per inference (batch 1), for the memory side of the floor.

Three views of one graph:

- ``as_loaded``: the graph ONNX Runtime actually runs. It constant-folds a chain of initializers
  (int8 weight -> Cast -> Mul by scale -> Reshape, or DequantizeLinear) into one fp32 initializer
  at load, so a weight-only int8 file streams fp32 weights on every inference. This is found
  out, not assumed: the session writes its optimized graph (ORT_ENABLE_ALL,
  ``optimized_model_filepath``) and its initializers are summed.
- ``int8_stored``: the file's initializers as stored (int8 1 byte, fp16 2, fp32 4), i.e. what a
  kernel that keeps weights int8 in memory would read (scales included).
- ``fp32``: the as-loaded graph with every float/int8 tensor at 4 bytes per element: an fp32
  export of the same network.

Embedding tables (an initializer read by a Gather whose indices come from the input) count only
the rows gathered: one row per token (batch 1; word, position and token-type rows alike), not
the table. Every other initializer is read in full once per inference: at 3-11 tokens a weight
is reused across a handful of rows that are computed together, so it is fetched once.
Activations are counted roughly and separately (``activation_bytes``): at these lengths they are
tens of kilobytes, live in cache, and are left out of the DRAM floor.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# ONNX TensorProto element type -> bytes per element (the types weights and indices come in).
ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}
TYPE_NAMES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
              11: "float64", 16: "bfloat16"}
WEIGHT_TYPES = {1, 2, 3, 10, 11, 16}  # element types that hold weights (the rest are shapes and indices)


@dataclass(frozen=True)
class GraphBytes:
    variant: str                               # as_loaded | int8_stored | fp32
    source: str                                # which graph file the counts come from
    weight_bytes: int                          # read in full every inference
    weight_bytes_by_type: dict[str, int]
    row_bytes_per_token: int                   # gathered embedding rows, summed over tables
    tables: dict[str, list[int]] = field(default_factory=dict)  # gathered table -> dims (not counted whole)

    def bytes_at(self, tokens: int) -> int:
        return self.weight_bytes + tokens * self.row_bytes_per_token

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tensors(graph: Any) -> dict[str, tuple[int, tuple[int, ...]]]:
    """name -> (element type, dims) of every initializer and Constant node value."""
    found = {t.name: (t.data_type, tuple(int(d) for d in t.dims)) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t is not None:
                    found[node.output[0]] = (attr.t.data_type, tuple(int(d) for d in attr.t.dims))
    return found


def _gathered_tables(graph: Any, tensors: dict[str, tuple[int, tuple[int, ...]]]) -> set[str]:
    """Initializers read by a Gather on axis 0 whose indices are not themselves constant."""
    tables = set()
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.op_type == "Gather" and node.input[0] in tensors and node.input[1] not in tensors and axis == 0:
            tables.add(node.input[0])
    return tables


def count(model: Any, variant: str, source: str, element_bytes: dict[int, int] | None = None) -> GraphBytes:
    """Bytes of ``model`` (an onnx.ModelProto) per inference; ``element_bytes`` overrides the size
    of weight element types (the fp32 view)."""
    tensors = _tensors(model.graph)
    tables = _gathered_tables(model.graph, tensors)
    by_type: dict[str, int] = {}
    rows = 0
    for name, (dtype, dims) in tensors.items():
        size = (element_bytes or {}).get(dtype, ELEMENT_BYTES.get(dtype, 4)) if dtype in WEIGHT_TYPES else ELEMENT_BYTES.get(dtype, 4)
        if name in tables:
            rows += int(np.prod(dims[1:], dtype=np.int64)) * size
            continue
        by_type[TYPE_NAMES.get(dtype, str(dtype))] = by_type.get(TYPE_NAMES.get(dtype, str(dtype)), 0) + int(np.prod(dims, dtype=np.int64)) * size
    return GraphBytes(variant, source, sum(by_type.values()), by_type, rows,
                      {name: list(tensors[name][1]) for name in sorted(tables)})


def optimized_model(model_path: Path, workdir: Path) -> Any:
    """The graph ONNX Runtime runs after its load-time optimizations (ORT_ENABLE_ALL, CPU)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(workdir / "optimized.onnx")
    options.log_severity_level = 3  # the "hardware-specific optimizations" notice is expected here
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(workdir / "optimized.onnx"))


def load_graphs(model_path: Path) -> tuple[Any, Any]:
    """(the file as stored, the graph ONNX Runtime runs after its load-time optimizations)."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
        return onnx.load(str(model_path)), optimized_model(model_path, Path(tmp))


def graph_bytes(stored: Any, loaded: Any, file_name: str = "model.onnx") -> dict[str, GraphBytes]:
    """The three views (as_loaded, int8_stored, fp32) of one graph."""
    fp32 = {dtype: 4 for dtype in WEIGHT_TYPES}
    return {
        "as_loaded": count(loaded, "as_loaded", "ONNX Runtime's optimized graph (ORT_ENABLE_ALL), initializers as held"),
        "int8_stored": count(stored, "int8_stored", f"{file_name} initializers as stored"),
        "fp32": count(loaded, "fp32", "the optimized graph with every weight at 4 bytes per element", fp32),
    }


def _constant_derived(graph: Any) -> set[str]:
    """Tensors computed only from initializers and constants (folded at load, not activations)."""
    known = set(_tensors(graph)) | {""}
    for node in graph.node:
        if all(name in known for name in node.input):
            known.update(node.output)
    return known


@dataclass(frozen=True)
class Activations:
    tokens: int
    bytes: int           # every intermediate tensor written once and read once
    largest_bytes: int   # the biggest single tensor: whether they fit in L1/L2


def activation_bytes(loaded: Any, ids_by_tokens: dict[int, np.ndarray], features: np.ndarray) -> dict[int, Activations]:
    """Rough activation traffic per length from the graph ONNX Runtime runs (the optimized one,
    fused ops and all), run once per length with every intermediate exposed. Rough: in-place
    reuse and reads by several consumers are ignored."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(loaded)
    skip = _constant_derived(model.graph) | {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in skip:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out = {}
    for tokens, ids in sorted(ids_by_tokens.items()):
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "features" in names:
            feeds["features"] = features
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        sizes = [int(np.asarray(v).nbytes) for v in session.run(None, feeds)]
        out[tokens] = Activations(tokens, 2 * sum(sizes), max(sizes, default=0))
    return out
