"""Per-row int8 (recipe method ``row_int8``): every encoder MatMul becomes ONNX Runtime's
``MatMulIntegerToFloat`` on 8-bit activations quantized per row (per token) at run time, with int8
weights quantized per output column.

Why this graph, and not the one with ``MatMulInteger`` it replaced: at the lengths triage sees (3-11
tokens) the time went to ~600 small nodes, not to arithmetic. Each row's quantization took 15 ONNX
ops and each product 6 (``MatMulInteger`` → Cast → zero-point term → two scales), and ONNX Runtime's
fused SkipLayerNormalization, BiasGelu and biased MultiHeadAttention cost 2-4x their unfused ops on a
5-token input (measured: 15 µs vs 3.6 µs for the layer norm). Here a row is quantized by one
``QuantizeLinear`` (opset 21, one block per row) after its range (Abs, ReduceMax, Mul), the product
is one ``MatMulIntegerToFloat`` (integer GEMM with the per-column weight scales applied in its output
pass) and one row-scale ``Mul``; Q, K and V share one GEMM; the layer norms, biases and GELUs are plain
ops. ~280 nodes instead of ~700, same arithmetic class: uint8 × int8 products, exact int32 sums, MLAS's
packed kernels on x86-64 and on every arm64 core.

Per row, not per tensor: each token's row has its own scale, so a case's answer does not depend on
what it is batched with. The 8 bits are spent where the values are:

- **Centred and symmetric** for layer-norm outputs and attention outputs (``q = round(u / s) + 128``,
  zero point 128, ``s = max|u| / 127``), where ``u = (x - c) / e`` is the input minus its calibration
  mean per channel ``c``, over the equaliser ``e``. The centring is free: a second LayerNormalization
  with ``gamma / e`` and ``(beta - c) / e`` makes ``u`` from the same sum, and for attention outputs V's
  columns and bias absorb it (the attention weights sum to one). ``c · W`` is added back to the
  product's bias, exactly.
- **Offset and unsigned** for GELU outputs (``x >= -0.17`` always): ``u = (x + 0.17) / e``,
  ``q = round(u / s)``, zero point 0, ``s = max u / 255`` — the full 8 bits for a one-sided range;
  ``-0.17 · Σ W`` is the bias correction.

Equalisation (SmoothQuant-style): a few hidden channels carry most of the activation range; each
quantized input is divided by ``e_j = amax_j ** alpha / wmax_j ** (1 - alpha)`` per channel and the
weight rows multiplied by it, moving range from activations to weights. Statistics come from running
the fp32 graph on calibration texts the build supplies (reason-for-visit labels, never evaluation
rows).

Weight rounding (GPTQ): one int8 scale per output column over a 384- or 1,536-long input is coarse;
the input rows are rounded one at a time and each row's rounding error is pushed onto the rows not yet
rounded, weighted by the inverse of the second moments of the inputs the weights actually see
(``u``), so the error those inputs see is minimised rather than the error per weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-8
GELU_FLOOR = 0.17  # min over x of x * Phi(x) is -0.16997: GELU outputs + 0.17 are never negative
SYMMETRIC_ZERO_POINT = 128


@dataclass
class ChannelStats:
    """One MatMul input over the calibration tokens (float64, per channel)."""
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    moments: np.ndarray  # X^T X, uncentred
    count: int

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
    """Write ``int8`` from the fused fp32 encoder ``fp32``; returns how many MatMuls were quantized."""
    import onnx

    from export import row_int8_graph

    model = onnx.load(str(fp32))
    plan = row_int8_graph.Plan.of(model)
    stats = activation_statistics(model, plan.inputs, ids, mask)
    count = row_int8_graph.build(model, plan, stats, alpha)
    onnx.save(model, str(int8))
    return count
