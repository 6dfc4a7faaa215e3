"""Per-row dynamic int8 (recipe method ``row_int8``): every encoder MatMul becomes ONNX's
``MatMulInteger`` on uint8 activations quantized per row (per token) at run time and int8 weights
quantized per output column, with SmoothQuant-style channel equalisation.

Why it replaced ``MatMulNBits`` (the method shipped before): ONNX Runtime 1.32's int8
``MatMulNBits`` kernel costs time in proportion to the rows it multiplies — on the x86 build VM a
9-token complaint took 6.3 ms and a batch of eight 11-token complaints was slower than the fp32
graph — while ``MatMulInteger``'s packed GEMM (MLAS QGEMM) serves many rows per weight read, and has
a uint8 x int8 kernel on every arm64 core, a Cortex-A72 without dot-product instructions included.

Per row, not per tensor: ``DynamicQuantizeLinear`` takes one scale for the whole input, so a case's
answer would depend on what it is batched with. Here each token's row has its own scale and zero
point (asymmetric: GELU outputs are mostly positive), so answers are batch-invariant. The
activation quantization is plain ONNX arithmetic (ReduceMax/Min, Div, Round, Clip, Cast) and the
integer products are exact, so x86 and arm64 compute the same integers from the same inputs.

Equalisation: a few hidden channels carry most of the activation range. Each quantized input is
divided by ``s_j = amax_j ** alpha / wmax_j ** (1 - alpha)`` per channel and the weight rows are
multiplied by it (exact in real arithmetic), moving range from activations to weights; ``amax``
comes from running the fp32 graph on calibration texts the build supplies (reason-for-visit labels,
never evaluation rows).

Weight rounding (GPTQ): one int8 scale per output column over a whole 384- or 1,536-long input is
coarse, and rounding each weight to its nearest step left the weights alone 2.5 % (relative) away
from fp32 in the pooled vector. Instead the input rows are rounded one at a time and each row's
rounding error is pushed onto the rows not yet rounded, weighted by the inverse of the calibration
activations' second moments ``H = X^T X`` — the error the calibration inputs actually see is
minimised, not the error per weight: 0.8 %, and 2.8 % with the activation rounding (MatMulNBits
per 32-row blocks: 3.2 %).

``export.row_int8_compact`` is the same arithmetic class in ~250 nodes instead of ~620 (measured
faster, not shipped: see its "Status").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-8


@dataclass
class ChannelStats:
    """One MatMul input over the calibration tokens (float64, per channel)."""
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    moments: np.ndarray  # X^T X, uncentred
    count: int

    def peak_about(self, centre) -> np.ndarray:
        """max |x - centre| per channel (centre 0: the plain activation peak)."""
        return np.maximum(self.high - centre, centre - self.low)

    def moments_about(self, centre: np.ndarray) -> np.ndarray:
        """(X - centre)^T (X - centre) without a second pass."""
        total = self.mean * self.count
        return self.moments - np.outer(centre, total) - np.outer(total, centre) + self.count * np.outer(centre, centre)


def activation_statistics(model, inputs: list[str], ids: np.ndarray, mask: np.ndarray,
                          batch: int = 64) -> dict[str, ChannelStats]:
    """:class:`ChannelStats` of each tensor in ``inputs`` over the unpadded tokens of ``ids``;
    ``model`` (an onnx ModelProto) is not changed."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in inputs:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    acc: dict[str, list] = {}
    for start in range(0, len(ids), batch):
        m = mask[start:start + batch].astype(bool)
        outputs = session.run(None, {"input_ids": ids[start:start + batch], "attention_mask": mask[start:start + batch]})
        for name, value in zip(names, outputs):
            if name not in inputs:
                continue
            rows = value[m].astype(np.float64)  # (tokens, channels) of real tokens only
            low, high, total, moments, count = acc.get(name, (np.inf, -np.inf, 0.0, 0.0, 0))
            acc[name] = (np.minimum(low, rows.min(axis=0)), np.maximum(high, rows.max(axis=0)), total + rows.sum(axis=0),
                         moments + rows.T @ rows, count + len(rows))
    return {name: ChannelStats(low, high, total / count, moments, count) for name, (low, high, total, moments, count) in acc.items()}


def weight_peaks(targets, weight_of) -> dict[str, np.ndarray]:
    """Per MatMul input, max |w| of each weight row over the MatMuls reading it (Q, K, V share one);
    ``weight_of(name)`` gives a weight initializer as an array."""
    peaks: dict[str, np.ndarray] = {}
    for node in targets:
        rows = np.abs(weight_of(node.input[1])).max(axis=1)
        peaks[node.input[0]] = np.maximum(peaks.get(node.input[0], 0.0), rows)
    return peaks


def equaliser(peak: np.ndarray, weight_peak: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's per-channel divisor ``amax ** alpha / wmax ** (1 - alpha)``, kept in [1e-3, 1e3]."""
    return np.clip(np.maximum(peak, EPS) ** alpha / np.maximum(weight_peak, EPS) ** (1 - alpha), 1e-3, 1e3)


def gptq_factor(moments: np.ndarray, damping: float = 0.01) -> np.ndarray:
    """Upper Cholesky factor of the inverse of the (damped) input second moments: GPTQ's error
    weights, one per input, shared by every MatMul reading that input (Q, K, V)."""
    h = moments + np.eye(len(moments)) * damping * max(float(np.mean(np.diag(moments))), EPS)
    return np.linalg.cholesky(np.linalg.inv(h)).T


def gptq_rows(weight: np.ndarray, scale: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """int8 ``weight`` (K inputs x N outputs, one ``scale`` per output) rounded row by row, each
    row's error spread over the rows after it through ``upper`` (:func:`gptq_factor`)."""
    work = weight.astype(np.float64).copy()
    out = np.zeros(weight.shape, dtype=np.int8)
    for i in range(work.shape[0]):
        q = np.clip(np.round(work[i] / scale), -127, 127)
        out[i] = q.astype(np.int8)
        error = (work[i] - q * scale) / upper[i, i]
        work[i + 1:] -= np.outer(upper[i, i + 1:], error)
    return out


def rewrite(fp32: Path, int8: Path, ids: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> int:
    """Write ``int8`` from ``fp32``; returns how many MatMuls became MatMulInteger."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    targets = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    inputs = sorted({n.input[0] for n in targets})
    stats = activation_statistics(model, inputs, ids, mask)
    wmax = weight_peaks(targets, lambda name: numpy_helper.to_array(weights[name]))  # one equaliser per input
    smooth = {x: equaliser(stats[x].peak_about(0.0), wmax[x], alpha) for x in inputs}
    # The equalised input is x / s: its second moments scale by 1/s on both sides.
    factors = {x: gptq_factor(stats[x].moments * np.outer(1.0 / smooth[x].astype(np.float64), 1.0 / smooth[x].astype(np.float64)))
               for x in inputs}

    added: list = []
    nodes: list = []

    def const(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    zero, top, step = const("rowq/zero", np.float32(0)), const("rowq/255", np.float32(255)), const("rowq/inv255", np.float32(1 / 255))
    eps, zp0 = const("rowq/eps", np.float32(EPS)), const("rowq/zp0", np.uint8(0))
    quantized: dict[str, tuple[str, str, str]] = {}

    def quantize_rows(x: str) -> tuple[str, str, str]:
        """uint8 rows of x / s_j with their scale and negated zero point, each (..., 1)."""
        if x in quantized:
            return quantized[x]
        p = f"rowq/{len(quantized)}/"
        inv = const(p + "inv_smooth", (1.0 / smooth[x]).astype(np.float32))
        nodes.extend([
            helper.make_node("Mul", [x, inv], [p + "x"]),
            helper.make_node("ReduceMax", [p + "x"], [p + "max"], keepdims=1, axes=[-1]),
            helper.make_node("ReduceMin", [p + "x"], [p + "min"], keepdims=1, axes=[-1]),
            helper.make_node("Max", [p + "max", zero], [p + "hi"]),  # the range always holds 0: exact zeros
            helper.make_node("Min", [p + "min", zero], [p + "lo"]),
            helper.make_node("Sub", [p + "hi", p + "lo"], [p + "range"]),
            helper.make_node("Max", [p + "range", eps], [p + "range_eps"]),
            helper.make_node("Mul", [p + "range_eps", step], [p + "scale"]),
            helper.make_node("Div", [p + "lo", p + "scale"], [p + "lo_q"]),
            helper.make_node("Round", [p + "lo_q"], [p + "neg_zp"]),  # -zero point, in [-255, 0]
            helper.make_node("Div", [p + "x", p + "scale"], [p + "x_q"]),
            helper.make_node("Round", [p + "x_q"], [p + "x_r"]),
            helper.make_node("Sub", [p + "x_r", p + "neg_zp"], [p + "x_z"]),
            helper.make_node("Clip", [p + "x_z", zero, top], [p + "x_c"]),
            helper.make_node("Cast", [p + "x_c"], [p + "q"], to=TensorProto.UINT8),
        ])
        quantized[x] = (p + "q", p + "scale", p + "neg_zp")
        return quantized[x]

    count = 0
    for node in graph.node:
        if node not in targets:
            nodes.append(node)
            continue
        x, w, y = node.input[0], node.input[1], node.output[0]
        weight = numpy_helper.to_array(weights[w]).astype(np.float32) * smooth[x][:, None].astype(np.float32)
        scale = (np.maximum(np.abs(weight).max(axis=0), EPS) / 127.0).astype(np.float32)
        q_weight = gptq_rows(weight, scale.astype(np.float64), factors[x])
        q, x_scale, neg_zp = quantize_rows(x)
        w_q, w_scale = const(w + "/int8", q_weight), const(w + "/scale", scale)
        # (x_q - zp) . w_q  =  x_q . w_q + (-zp) * column sums of w_q
        colsum = const(w + "/colsum", q_weight.astype(np.int64).sum(axis=0).astype(np.float32))
        nodes.extend([
            helper.make_node("MatMulInteger", [q, w_q, zp0], [y + "/i32"]),
            helper.make_node("Cast", [y + "/i32"], [y + "/f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [neg_zp, colsum], [y + "/zp_term"]),
            helper.make_node("Add", [y + "/f", y + "/zp_term"], [y + "/centred"]),
            helper.make_node("Mul", [y + "/centred", x_scale], [y + "/rows"]),
            helper.make_node("Mul", [y + "/rows", w_scale], [y]),
        ])
        count += 1
    used = {name for n in nodes for name in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + [i for i in added if i.name in used])
    onnx.save(model, str(int8))
    return count
