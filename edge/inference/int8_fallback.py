"""Where a CPU has no int8 kernel for the bundle's graph, give ONNX Runtime fp32 weights instead.

Bundles quantized with ``MatMulNBits`` (8-bit weight blocks, int8 arithmetic at ``accuracy_level``
4; the shipped bundle before ``export.row_int8``) need it. ONNX Runtime has that int8 kernel on x86-64 (AVX2/VNNI) and on arm64
cores with the dot-product instructions (Cortex-A76/A78: Pi 5, Jetson Orin). On a Cortex-A72
(Raspberry Pi 4: ARMv8.0, no ``asimddp``) it has none and expands every 8-bit weight to fp32 on
*every call* — measured under emulation, 1.6x the instructions of a plain fp32 graph.

So on such a core the runtime dequantizes the weights once, at load, into plain fp32 ``MatMul``
initializers, from the same verified file: the board then runs the fp32 arithmetic it would
have run anyway, at the fp32 graph's cost, and answers as the int8 weights say (the same weights;
no activation rounding). The levels match the int8 graph's as closely as the fp32 reference does
(the bundle's int8 gate: ≥ 99.5 % same level). ``onnx`` is imported only on this path.
A ``row_int8`` bundle (``MatMulInteger``) has an int8 kernel on every core and never comes here
(``edge.inference.session._graph_source``).
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

NBITS_OP = "MatMulNBits"
MS_DOMAIN = "com.microsoft"


def cpu_has_int8_dot(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None) -> bool:
    """True where ONNX Runtime has an int8 MatMulNBits kernel: x86-64, and arm64 with ``asimddp``."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("aarch64", "arm64"):
        return True
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # unknown: keep the shipped graph (correct either way, only slower)
    features = {word for line in text.splitlines() if line.lower().startswith("features")
                for word in line.split(":", 1)[-1].split()}
    return "asimddp" in features


def needs_fp32_weights(mode: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """``mode``: ``auto`` (by the CPU), ``int8`` (keep the graph), ``fp32`` (always rewrite)."""
    if mode == "fp32":
        return True
    if mode == "int8":
        return False
    return not cpu_has_int8_dot(cpuinfo)


def _dequantize(blocks: np.ndarray, scales: np.ndarray, k: int, n: int, block_size: int) -> np.ndarray:
    """8-bit ``MatMulNBits`` weight (``[N, K/bs, bs]`` uint8, zero point 128, scales ``[N·K/bs]``)
    → fp32 ``[K, N]``."""
    blocks_per_col = blocks.shape[1]
    values = (blocks.astype(np.float32) - 128.0) * scales.reshape(n, blocks_per_col, 1).astype(np.float32)
    return np.ascontiguousarray(values.reshape(n, blocks_per_col * block_size)[:, :k].T)


def fp32_weight_graph(model_bytes: bytes) -> tuple[bytes, int]:
    """The graph with every 8-bit symmetric ``MatMulNBits`` replaced by ``MatMul`` on fp32
    weights (plus ``Add`` where it had a bias). Returns (serialized graph, nodes rewritten)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    rewritten, nodes = 0, []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        usable = (node.op_type == NBITS_OP and node.domain == MS_DOMAIN and attrs.get("bits") == 8
                  and len(node.input) >= 3 and node.input[1] in inits and node.input[2] in inits
                  and (len(node.input) < 4 or not node.input[3]))  # symmetric: no zero points stored
        if not usable:
            nodes.append(node)
            continue
        weight = _dequantize(numpy_helper.to_array(inits[node.input[1]]), numpy_helper.to_array(inits[node.input[2]]),
                             int(attrs["K"]), int(attrs["N"]), int(attrs["block_size"]))
        name = f"{node.input[1]}_fp32"
        graph.initializer.append(numpy_helper.from_array(weight, name))
        bias = node.input[5] if len(node.input) > 5 and node.input[5] else None
        product = f"{node.output[0]}_matmul" if bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_fp32"))
        if bias:
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=f"{node.name}_bias"))
        rewritten += 1
    used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return model.SerializeToString(), rewritten
