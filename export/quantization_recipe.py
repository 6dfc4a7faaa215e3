"""The quantization recipe: how the fused fp32 encoder becomes the shipped int8 encoder.

What ships (``export.build.BuildConfig.recipe``, method ``row_int8``, ``export.row_int8``): every
encoder MatMul becomes ONNX's ``MatMulInteger`` on uint8 activations quantized per row (per token,
asymmetric) at run time in plain ONNX ops and int8 weights per output column, rounded by GPTQ after a
SmoothQuant-style channel equalisation measured on calibration texts. The weights stay int8 in
memory, the products are int8 on x86-64 and on every arm64 core (ONNX Runtime has a uint8 x int8
kernel with and without the dot-product instructions), and because the activation scale is per row
a case's answer does not depend on its batch. The word-embedding table is int8 with one scale per
token row, gathered first, then scaled (``export.graph_surgery``). The heads are never in the graph
this recipe sees: they are joined afterwards in fp32 (``export.graph_merge``). The same file serves
x86-64 and arm64.

Measured beside it on the same out-of-fold cases (``BuildConfig.compare_recipes``):
- ``matmul_nbits`` (shipped before): ONNX Runtime's ``MatMulNBits``, 8-bit symmetric weights per
  32-row block, ``accuracy_level=4`` (int8 per row per block). Accurate, but its x86 int8 kernel
  costs time in proportion to rows (a batch of eight 11-token complaints was slower than fp32) and
  a Cortex-A72 has no kernel for it (``edge.inference.int8_fallback`` gives such a core fp32
  weights); ``accuracy_level=0`` is the same weights with fp32 compute.
- ``dynamic``: ``quantize_dynamic`` U8S8, per-channel weights, one uint8 scale per tensor per
  call — the per-tensor activation scale is coarse (1.4-2 % of levels moved) and it depends on
  the batch.
- ``weight_only``: int8 weights behind DequantizeLinear/Mul, fp32 compute — shipped two bundles
  ago; ONNX Runtime folds it back to fp32 weights at load, so it is int8 on disk only.
- ``row_int8_compact`` (``export.row_int8_compact``): the same arithmetic class in ~250 nodes
  (``MatMulIntegerToFloat``, one ``QuantizeLinear`` block per row, the slow fused ops unfused):
  2.0-2.2x the fp32 student at 5 tokens where ``row_int8`` is 1.6x, but 4 of 2,028 answers differed
  on arm64 under ``make verify-arm`` (near-ties); not shipped until that bar is settled.
Static QDQ is not offered: its activation scales are fixed from calibration texts, per tensor,
and the complaint lengths and vocabularies a kiosk sees vary more than any calibration set.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from export import graph_surgery

METHODS = ("matmul_nbits", "dynamic", "weight_only", "row_int8", "row_int8_compact")
ROW_METHODS = ("row_int8", "row_int8_compact")  # per-row int8, equalised on calibration texts


@dataclass(frozen=True)
class QuantRecipe:
    method: str = "matmul_nbits"
    block_rows: int = 32  # matmul_nbits / weight_only: one scale per output column per this many input rows
    accuracy_level: int = 4  # matmul_nbits: 4 = int8 compute; 0 = fp32 compute on int8 weights
    per_channel: bool = True  # dynamic: per output channel weight scales
    embeddings_per_row: bool = True  # word-embedding table int8, one scale per token row
    # row_int8*: share of each channel's range moved from activations to weights, by the pooled vector's
    # distance from fp32 on complaint texts (no labels read): row_int8 0.5 of 0.0 / 0.3 / 0.5 / 0.65 /
    # 0.7 / 0.8; row_int8_compact 0.65 of 0.3 / 0.5 / 0.6 / 0.65 / 0.7 / 0.8. None: the method's own.
    smoothing_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown quantization method {self.method!r}; one of {METHODS}")
        if self.smoothing_alpha is None:  # the method's own, stated in the manifest as a number
            object.__setattr__(self, "smoothing_alpha", 0.65 if self.method == "row_int8_compact" else 0.5)

    @property
    def needs_calibration(self) -> bool:
        return self.method in ROW_METHODS

    def describe(self) -> dict[str, object]:
        embeddings = ("int8, one scale per token row; rows gathered first, then scaled (Gather → Cast → Mul)"
                      if self.embeddings_per_row else "fp32")
        common = {"method": self.method, "embeddings": embeddings, "heads": "fp32 (joined after quantization)",
                  "kept_fp32_why": "the heads decide a level from few numbers (~200k weights); fp32 there costs nothing"}
        if self.method == "matmul_nbits":
            return {**common, "op": "com.microsoft.MatMulNBits", "weights": f"int8 symmetric, per output column per {self.block_rows} rows",
                    "activations": "int8 per row per block at run time (accuracy_level 4)" if self.accuracy_level == 4
                    else f"accuracy_level {self.accuracy_level}",
                    "accuracy_level": self.accuracy_level, "compute": "int8 dot products, fp32 accumulation of block results",
                    "in_memory": "int8 (MLAS packs the int8 blocks at load)"}
        if self.method == "row_int8":
            return {**common, "op": "MatMulInteger (uint8 x int8), per-row quantization in ONNX ops",
                    "weights": "int8 symmetric, per output column, rows scaled by the channel equaliser",
                    "activations": "uint8 per row (per token), asymmetric, at run time; batch-invariant",
                    "smoothing_alpha": self.smoothing_alpha, "compute": "int8 products, exact int32 sums",
                    "in_memory": "int8"}
        if self.method == "row_int8_compact":
            return {**common, "op": "com.microsoft.MatMulIntegerToFloat (uint8 x int8), QuantizeLinear one block per row",
                    "weights": "int8 symmetric, per output column, rows scaled by the channel equaliser",
                    "activations": "uint8 per row (per token) at run time: centred symmetric (zero point 128), "
                                   "GELU outputs offset and unsigned; batch-invariant",
                    "smoothing_alpha": self.smoothing_alpha, "compute": "int8 products, exact int32 sums",
                    "in_memory": "int8"}
        if self.method == "dynamic":
            return {**common, "op": "DynamicQuantizeLinear + MatMulInteger", "weights": "int8 per-channel" if self.per_channel else "int8 per-tensor",
                    "activations": "uint8, one scale per tensor per call (depends on the batch)", "in_memory": "int8"}
        return {**common, "op": "DequantizeLinear/Mul → MatMul", "weights": f"int8, per output column per {self.block_rows} rows",
                "activations": "fp32", "compute": "fp32", "in_memory": "fp32 (ONNX Runtime folds the dequantization at load)"}


def weight_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls whose second input is a stored weight."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizers configure the root logger at INFO on import and log a line per
    tensor there; a build's log should say what happened, not every tensor name."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


Calibration = tuple[np.ndarray, np.ndarray]  # padded token ids and their attention mask


def quantize(fp32: Path, int8: Path, recipe: QuantRecipe, calibration: Calibration | None = None) -> dict[str, object]:
    """Quantize the encoder graph ``fp32`` into ``int8`` by ``recipe``; returns what was done.
    ``calibration``: token ids and mask of texts for the methods that measure activations."""
    with _quiet_root_logger():
        return _quantize(fp32, int8, recipe, calibration)


def _quantize(fp32: Path, int8: Path, recipe: QuantRecipe, calibration: Calibration | None) -> dict[str, object]:
    matmuls = weight_matmuls(fp32)
    if recipe.method in ROW_METHODS:
        from export import row_int8, row_int8_compact

        if calibration is None:
            raise ValueError(f"the {recipe.method} recipe needs calibration texts (token ids and mask) to equalise channels")
        writer = row_int8_compact if recipe.method == "row_int8_compact" else row_int8
        writer.rewrite(fp32, int8, *calibration, alpha=recipe.smoothing_alpha)
    elif recipe.method == "matmul_nbits":
        _matmul_nbits(fp32, int8, recipe)
    elif recipe.method == "dynamic":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
                         op_types_to_quantize=["MatMul"],
                         # fused ops (SkipLayerNormalization, ...) defeat its type inference
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    else:
        import shutil

        shutil.copyfile(fp32, int8)
        _weight_only_int8(int8, matmuls, block_rows=recipe.block_rows)
    if recipe.embeddings_per_row:
        _weight_only_int8(int8, [], embeddings=True)
        graph_surgery.rewrite_file(int8)  # exact: scale only the embedding rows an input uses
    info = recipe.describe()
    info["quantized_matmuls"] = len(matmuls)
    return info


def _matmul_nbits(fp32: Path, int8: Path, recipe: QuantRecipe) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=recipe.block_rows, is_symmetric=True,
                                          accuracy_level=recipe.accuracy_level, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=recipe.block_rows, is_symmetric=True,
                                     accuracy_level=recipe.accuracy_level, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(int8), use_external_data_format=False)
    left = weight_matmuls(int8)
    if left:
        raise RuntimeError(f"MatMuls left in fp32 by the 8-bit quantizer: {left}")


def quantized_head_nodes(path: Path) -> list[str]:
    """Head/feature-layer nodes computed with dynamically quantized activations (should be none)."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [n.name for n in graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul")
            and ("/head/" in n.name or n.input[0] == "features" or "/head/" in n.input[0])]


def dynamic_quantize_nodes(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "DynamicQuantizeLinear"]


def _quantize_rows_or_columns(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per slice along ``axis`` (1: per output column of a MatMul
    weight [K, N]; 0: per row, e.g. per token of an embedding table)."""
    scale = np.maximum(np.abs(weight).max(axis=1 - axis), 1e-12) / 127.0
    shaped = scale[None, :] if axis == 1 else scale[:, None]
    return np.clip(np.round(weight / shaped), -127, 127).astype(np.int8), scale.astype(np.float32)


def _row_equaliser(weight: np.ndarray) -> np.ndarray | None:
    """Per-input-row factors r (W = r · W') when they lower the int8 error of W' quantized per
    column: rows fed by outlier hidden dimensions otherwise set every column's scale."""
    def error(w: np.ndarray, r: np.ndarray) -> float:
        q, s = _quantize_rows_or_columns(w / r[:, None], 1)
        return float((((q * s[None, :]) * r[:, None] - w) ** 2).mean())

    plain = error(weight, np.ones(weight.shape[0], dtype=np.float32))
    rows = np.maximum(np.abs(weight).max(axis=1), 1e-8) ** 0.5
    rows = (rows / rows.mean()).astype(np.float32)
    return rows if error(weight, rows) < 0.9 * plain else None


def _weight_only_int8(path: Path, node_names: Sequence[str], embeddings: bool = False, block_rows: int = 0) -> None:
    """Store these MatMuls' weights (and, with ``embeddings``, the word-embedding table, one scale
    per token row) as int8 behind a DequantizeLinear, computed in fp32."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    wanted = set(node_names)
    new_nodes = []

    def blocked(base: str, node_name: str) -> str:
        """int8 [G, B, N] × fp32 scale [G, 1, N] → Cast, Mul, Reshape to [K, N] (folded at load)."""
        weight = numpy_helper.to_array(inits[base]).astype(np.float32)
        k, n = weight.shape
        grouped = weight.reshape(k // block_rows, block_rows, n)
        scale = np.maximum(np.abs(grouped).max(axis=1, keepdims=True), 1e-12) / 127.0
        quantized = np.clip(np.round(grouped / scale), -127, 127).astype(np.int8)
        graph.initializer.remove(inits[base])
        graph.initializer.extend([
            numpy_helper.from_array(quantized, f"{base}_int8"),
            numpy_helper.from_array(scale.astype(np.float16), f"{base}_scale16"),
            numpy_helper.from_array(np.asarray([k, n], dtype=np.int64), f"{base}_shape"),
        ])
        new_nodes.extend([
            helper.make_node("Cast", [f"{base}_int8"], [f"{base}_float"], to=onnx.TensorProto.FLOAT, name=f"{node_name}_wq_cast"),
            helper.make_node("Cast", [f"{base}_scale16"], [f"{base}_scale"], to=onnx.TensorProto.FLOAT, name=f"{node_name}_ws_cast"),
            helper.make_node("Mul", [f"{base}_float", f"{base}_scale"], [f"{base}_blocks"], name=f"{node_name}_wq_scale"),
            helper.make_node("Reshape", [f"{base}_blocks", f"{base}_shape"], [f"{base}_dequantized"], name=f"{node_name}_wq_reshape"),
        ])
        return f"{base}_dequantized"

    def dequantized(base: str, axis: int, node_name: str) -> str:
        weight = numpy_helper.to_array(inits[base]).astype(np.float32)
        rows = _row_equaliser(weight) if axis == 1 else None
        quantized, scale = _quantize_rows_or_columns(weight / rows[:, None] if rows is not None else weight, axis)
        graph.initializer.remove(inits[base])
        graph.initializer.extend([
            numpy_helper.from_array(quantized, f"{base}_int8"),
            numpy_helper.from_array(scale, f"{base}_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{base}_zero"),
        ])
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero"],
                                          [f"{base}_dequantized"], name=f"{node_name}_weight_dequantize", axis=axis))
        if rows is None:
            return f"{base}_dequantized"
        graph.initializer.append(numpy_helper.from_array(rows[:, None].astype(np.float32), f"{base}_rows"))
        new_nodes.append(helper.make_node("Mul", [f"{base}_dequantized", f"{base}_rows"], [f"{base}_equalised"],
                                          name=f"{node_name}_weight_rows"))
        return f"{base}_equalised"

    for node in graph.node:
        if node.name in wanted and node.op_type == "MatMul" and node.input[1] in inits:
            rows = numpy_helper.to_array(inits[node.input[1]]).shape[0]
            use_blocks = block_rows and rows % block_rows == 0 and rows > block_rows
            node.input[1] = blocked(node.input[1], node.name) if use_blocks else dequantized(node.input[1], 1, node.name)
        elif embeddings and node.op_type == "Gather" and node.input[0] in inits and "word_embeddings" in node.input[0]:
            node.input[0] = dequantized(node.input[0], 0, node.name)
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
