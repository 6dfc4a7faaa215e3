"""The quantization recipe: how the exported fp32 graph becomes the shipped int8 graph.

What ships (``export.build.BuildConfig.recipe``): every encoder weight stored int8 — per output
column per block of 32 input rows, the word-embedding table one scale per token row (rows gathered
first, then scaled: ``export.graph_surgery``) — and computed in fp32 (weight-only). Dynamic uint8
activations (ONNX Runtime's ``quantize_dynamic``, also expressible here) changed 1.4-2 % of
out-of-fold levels, above what the gate (``export.int8_gate``) allows. Every scale's head, the
structured-feature layer and the complaint matcher stay fp32: they decide a level from few
numbers, and a per-batch activation scale there would make a case's answer depend on its batch.
The same graph serves x86-64 and arm64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from export import graph_surgery
from export.onnx_export import encoder_matmuls, head_node_names


@dataclass(frozen=True)
class QuantRecipe:
    per_channel: bool = True
    reduce_range: bool = False
    quantize_embeddings: bool = True  # Gather on the word-embedding table, int8
    # True: one scale per token row, dequantized to fp32 (ORT's Gather quantization is per tensor,
    # which is coarse for the rare tokens with small vectors).
    embeddings_per_row: bool = True
    # Weight-only MatMuls: one scale per output column per block of this many input rows
    # (0: one scale per whole column). Finer blocks cut the rounding error where it matters.
    block_rows: int = 0
    keep_fp32: tuple[str, ...] = field(default_factory=tuple)  # extra node names kept fp32
    # Regexes of encoder MatMuls whose weights are stored int8 (per channel) but computed in fp32
    # (DequantizeLinear → MatMul): same size as int8, no activation rounding where it hurts most.
    weight_only: tuple[str, ...] = ()

    def describe(self, head_nodes: Sequence[str]) -> dict[str, object]:
        everything_weight_only = "." in self.weight_only or r"." in self.weight_only
        return {
            "method": ("int8 weights stored in the graph, dequantized to fp32 for compute (weight-only)"
                       if everything_weight_only else "onnxruntime.quantization.quantize_dynamic"),
            "weights": "int8, per-channel" if self.per_channel else "int8, per-tensor",
            "activations": "fp32 (no activation quantization)" if everything_weight_only
            else "uint8, dynamic per-tensor (computed at run time)",
            "op_types": ["MatMul"] + (["Gather"] if self.quantize_embeddings else []),
            "embeddings": ("int8, one scale per token row; rows gathered first, then scaled (Gather → Cast → Mul)" if self.embeddings_per_row
                           else "int8, per tensor (ORT Gather quantization)") if self.quantize_embeddings else "fp32",
            "reduce_range": self.reduce_range,
            "kept_fp32": sorted(set(head_nodes) | set(self.keep_fp32)),
            "kept_fp32_why": "fusion head and feature layer (decide the level from few numbers; ~60k weights)",
            "weight_only_int8": list(self.weight_only),
            "weight_only_blocks": (f"one fp16 scale per output column per {self.block_rows} input rows"
                                   if self.block_rows else "one scale per output column"),
            "why_weight_only": "dynamic uint8 activations changed 1.6-2 % of out-of-fold levels (gate: <= 0.5 %); "
                               "see recipe_comparison_oof",
        }


def quantize(fp32: Path, int8: Path, recipe: QuantRecipe) -> dict[str, object]:
    import re

    from onnxruntime.quantization import QuantType, quantize_dynamic

    head = head_node_names(fp32)
    weight_only = [n for n in encoder_matmuls(fp32) if any(re.search(p, n) for p in recipe.weight_only)]
    quantize_dynamic(
        str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        op_types_to_quantize=["MatMul"] + (["Gather"] if recipe.quantize_embeddings and not recipe.embeddings_per_row else []),
        nodes_to_exclude=_with_quantizer_names(set(head) | set(recipe.keep_fp32) | set(weight_only)),
        extra_options={"MatMulConstBOnly": True},
    )
    per_row = recipe.quantize_embeddings and recipe.embeddings_per_row
    if weight_only or per_row:
        _weight_only_int8(int8, weight_only, embeddings=per_row, block_rows=recipe.block_rows)
    if per_row:  # exact rewrite: scale only the embedding rows an input uses (export/graph_surgery.py)
        graph_surgery.rewrite_file(int8)
    dynamic_head = quantized_head_nodes(int8)
    if dynamic_head:  # a per-batch activation scale in the head makes a case's answer depend on its batch
        raise RuntimeError(f"head nodes were quantized despite nodes_to_exclude: {dynamic_head}")
    info = recipe.describe(head)
    info["weight_only_int8_nodes"] = len(weight_only)
    if per_row:
        info["embeddings"] = "int8, one scale per token row; rows gathered first, then scaled (Gather → Cast → Mul)"
    return info


def _with_quantizer_names(names: set[str]) -> list[str]:
    """ORT's quantizer first splits each Gemm into ``<name>_MatMul`` + ``<name>_Add`` and matches
    nodes_to_exclude against the new names, so a plain Gemm name excludes nothing."""
    return sorted(names | {f"{n}_MatMul" for n in names})


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
