"""Graph rewrites applied after quantization that change speed, never results.

``gather_then_dequantize``: the int8 embedding table is stored behind a per-row
``DequantizeLinear → Gather``. ONNX Runtime does not constant-fold ``DequantizeLinear`` (it keeps
QDQ patterns intact), so every inference expanded the whole 6,069 × 384 table to fp32 before
picking a handful of rows — about half of the bundle's time at the median complaint length
(bench/ profile). Gathering the int8 rows and their scales first, then scaling only those rows,
computes the same float32 values for the rows used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def gather_then_dequantize(model: onnx.ModelProto) -> int:
    """Rewrite every per-row ``DequantizeLinear`` (axis 0, zero point 0) whose only consumers are
    row ``Gather`` nodes. Returns how many tables were rewritten. Mutates ``model``."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for node in list(graph.node):
        if node.op_type != "DequantizeLinear" or len(node.input) < 2:
            continue
        table, scale = node.input[0], node.input[1]
        zero = node.input[2] if len(node.input) > 2 else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        users = consumers.get(node.output[0], [])
        if axis != 0 or table not in inits or scale not in inits or not users:
            continue
        if any(u.op_type != "Gather" or u.input[0] != node.output[0] or
               any(a.name == "axis" and a.i != 0 for a in u.attribute) for u in users):
            continue
        if zero is not None and (zero not in inits or np.any(numpy_helper.to_array(inits[zero]) != 0)):
            continue
        graph.node.remove(node)
        for k, user in enumerate(users):
            ids = user.input[1]
            out = user.output[0]
            prefix = f"{node.name}/gathered_{k}"
            index = list(graph.node).index(user)
            graph.node.remove(user)
            new_nodes = [
                helper.make_node("Gather", [table, ids], [f"{prefix}/rows_int8"], axis=0, name=f"{prefix}/rows"),
                helper.make_node("Gather", [scale, ids], [f"{prefix}/row_scale"], axis=0, name=f"{prefix}/scales"),
                helper.make_node("Cast", [f"{prefix}/rows_int8"], [f"{prefix}/rows_f32"], to=TensorProto.FLOAT,
                                 name=f"{prefix}/cast"),
                helper.make_node("Unsqueeze", [f"{prefix}/row_scale", f"{prefix}/last_axis"], [f"{prefix}/scale_col"],
                                 name=f"{prefix}/unsqueeze"),
                helper.make_node("Mul", [f"{prefix}/rows_f32", f"{prefix}/scale_col"], [out], name=f"{prefix}/scale"),
            ]
            graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{prefix}/last_axis"))
            for offset, new in enumerate(new_nodes):
                graph.node.insert(index + offset, new)
        if zero is not None and not any(zero in n.input for n in graph.node):
            graph.initializer.remove(inits[zero])
        rewritten += 1
    return rewritten


def rewrite_file(path: Path) -> int:
    model = onnx.load(str(path))
    count = gather_then_dequantize(model)
    if count:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return count
