"""The compute floor: how fast the shipped graph could possibly run on this CPU.

FLOPs per inference are counted from the ONNX graph itself: every matrix-multiply node (MatMul,
Gemm, MatMulInteger, QLinearMatMul and ONNX Runtime's fused/quantized variants) with its operand
shapes observed by running the graph once at the given sequence length (graph optimizations off,
so the nodes are the file's nodes). 2·M·K·N per product, batch dimensions multiplied in.
Element-wise work (softmax, layer norm, GELU) is left out, which makes the floor optimistic.

Throughput is measured, not looked up: an ONNX Runtime ``MatMulInteger`` (uint8 × int8 → int32,
the op dynamic int8 quantization emits) on square 1024 operands and on a model-shaped product,
best of several runs. floor_ms = FLOPs / measured int8 ops per second. The same is measured for
fp32 ``MatMul``: a weight-only int8 graph stores int8 but computes in fp32, so its own floor is
the fp32 one, and both are reported.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

MATMUL_OPS = {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulIntegerToFloat",
              "DynamicQuantizeMatMul", "MatMulNBits"}


def _operands(node: Any) -> tuple[str, str]:
    # QLinearMatMul: (a, a_scale, a_zp, b, b_scale, b_zp, ...); every other op: (a, b, ...).
    return (node.input[0], node.input[3]) if node.op_type == "QLinearMatMul" else (node.input[0], node.input[1])


def _product_flops(a: tuple[int, ...], b: tuple[int, ...], node: Any) -> int:
    attrs = {attr.name: attr for attr in node.attribute}
    if node.op_type == "MatMulNBits":  # B is packed [N, blocks, bytes per block]: K and N are attributes
        return 2 * int(np.prod(a[:-1])) * attrs["K"].i * attrs["N"].i
    if node.op_type == "Gemm":
        m, k = (a[1], a[0]) if attrs.get("transA") and attrs["transA"].i else (a[0], a[1])
        n = b[0] if attrs.get("transB") and attrs["transB"].i else b[1]
        return 2 * m * k * n
    if node.op_type == "FusedMatMul" and attrs.get("transB") and attrs["transB"].i:
        b = (*b[:-2], b[-1], b[-2])
    if len(b) == 1:
        b = (b[0], 1)
    batch = int(np.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))) if len(a) > 2 or len(b) > 2 else 1
    m = a[-2] if len(a) >= 2 else 1
    return 2 * batch * m * a[-1] * b[-1]


def count_flops(model_path: Path, ids: np.ndarray, features: np.ndarray) -> dict[str, Any]:
    """Matrix-multiply FLOPs of one inference on ``ids`` ([1, L]), by op type."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    initializers = {init.name: tuple(int(d) for d in init.dims) for init in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in MATMUL_OPS]
    wanted = sorted({name for n in nodes for name in _operands(n) if name not in initializers})
    existing = {o.name for o in model.graph.output}
    for name in wanted:
        if name not in existing:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "features" in names:
        feeds["features"] = features
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    shapes = {**initializers, **{k: tuple(v.shape) for k, v in values.items()}}
    by_op: dict[str, int] = {}
    for node in nodes:
        a_name, b_name = _operands(node)
        by_op[node.op_type] = by_op.get(node.op_type, 0) + _product_flops(shapes[a_name], shapes[b_name], node)
    return {"tokens": int(ids.shape[1]), "flops": int(sum(by_op.values())), "by_op": by_op, "matmul_nodes": len(nodes)}


def _matmul_graph(m: int, k: int, n: int, int8: bool) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        weight = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        a_type, c_type = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = rng.normal(size=(k, n)).astype(np.float32)
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        a_type = c_type = TensorProto.FLOAT
    graph = helper.make_graph(
        [node], f"mm_{m}x{k}x{n}", [helper.make_tensor_value_info("a", a_type, [m, k])],
        [helper.make_tensor_value_info("c", c_type, [m, n])], initializer=[numpy_helper.from_array(weight, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def matmul_throughput(threads: int, int8: bool = True,
                      shapes: tuple[tuple[int, int, int], ...] = ((1024, 1024, 1024), (64, 384, 1536)),
                      seconds_per_shape: float = 0.6) -> dict[str, Any]:
    """Best measured ops/s of one ONNX Runtime matrix multiply at ``threads`` threads: int8
    (``MatMulInteger``) or fp32 (``MatMul``), on a large square and a model-shaped product."""
    import onnxruntime as ort

    from edge.inference.session import RuntimeOptions, _session_options

    results = []
    rng = np.random.default_rng(1)
    for m, k, n in shapes:
        session = ort.InferenceSession(_matmul_graph(m, k, n, int8),
                                       _session_options(RuntimeOptions(intra_op_threads=threads, allow_spinning=True)),
                                       providers=["CPUExecutionProvider"])
        a = rng.integers(0, 256, size=(m, k), dtype=np.uint8) if int8 else rng.normal(size=(m, k)).astype(np.float32)
        for _ in range(3):
            session.run(None, {"a": a})
        best = float("inf")
        deadline = time.perf_counter() + seconds_per_shape
        runs = 0
        while runs < 5 or time.perf_counter() < deadline:
            started = time.perf_counter()
            session.run(None, {"a": a})
            best = min(best, time.perf_counter() - started)
            runs += 1
        results.append({"shape_mkn": [m, k, n], "best_s": best, "gops": round(2 * m * k * n / best / 1e9, 2), "runs": runs})
    peak = max(results, key=lambda r: r["gops"])
    op = "MatMulInteger (uint8 x int8 -> int32)" if int8 else "MatMul (fp32)"
    return {"method": f"onnxruntime {op}, best run", "threads": threads, "peak_gops": peak["gops"], "shapes": results}


def int8_matmul_throughput(threads: int, seconds_per_shape: float = 0.6) -> dict[str, Any]:
    return matmul_throughput(threads, True, seconds_per_shape=seconds_per_shape)
