"""Gathering int8 embedding rows before scaling them gives the same values as scaling the whole
table first, and leaves no whole-table DequantizeLinear in the graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export.graph_surgery import gather_then_dequantize


def _embedding_graph(rows: int = 50, dim: int = 8) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    table = rng.integers(-127, 128, size=(rows, dim), dtype=np.int8)
    scale = rng.uniform(0.001, 0.05, size=rows).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["table", "scale", "zero"], ["table_f32"], axis=0, name="dq"),
         helper.make_node("Gather", ["table_f32", "ids"], ["embedded"], name="lookup")],
        "emb",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["b", "t", dim])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(scale, "scale"),
                     numpy_helper.from_array(np.zeros(rows, dtype=np.int8), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


def test_rewrite_is_exact_and_removes_the_table_dequantize() -> None:
    model = _embedding_graph()
    ids = np.array([[0, 3, 49, 3], [7, 7, 1, 0]], dtype=np.int64)
    before = _run(model, ids)
    assert gather_then_dequantize(model) == 1
    onnx.checker.check_model(model)
    assert not any(n.op_type == "DequantizeLinear" for n in model.graph.node)
    assert np.array_equal(_run(model, ids), before)


def test_nonzero_zero_point_is_left_alone() -> None:
    model = _embedding_graph()
    zero = next(i for i in model.graph.initializer if i.name == "zero")
    zero.CopyFrom(numpy_helper.from_array(np.ones(50, dtype=np.int8), "zero"))
    assert gather_then_dequantize(model) == 0
