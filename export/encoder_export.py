"""The student encoder as ONNX: exported by optimum, fused by ONNX Runtime's transformer optimizer.

The encoder is a stock BERT (all-MiniLM-L6-v2 with a pruned vocabulary), so optimum's ONNX
exporter handles it; :class:`TriageEncoderOnnxConfig` only drops ``token_type_ids`` (one
sentence, always segment 0: the graph folds the zeros in). The heads (KTAS, ESI, outcome,
complaint matcher) are not a transformers architecture optimum knows; they are traced by
``torch.onnx`` on their own and joined to the encoder by ``export.graph_merge``.

Fusion (``fuse``): SkipLayerNormalization, BiasGelu and MultiHeadAttention from
``onnxruntime.transformers.optimizer`` with ``opt_level=0`` — pattern fusions only, no
hardware-specific rewrites (no NCHWc, no pre-packed layouts), so the same file serves x86-64
and arm64; each board's ONNX Runtime applies its own kernels at load. EmbedLayerNormalization
stays off: it would take the word-embedding table whole, and the int8 recipe stores that table
one scale per token row (``export.quantization_recipe``). MultiHeadAttention (separate Q/K/V
MatMuls) rather than the packed Attention op keeps every weight a plain MatMul the int8 recipe
can quantize.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger(__name__)

OPSET = 17
HIDDEN_OUTPUT = "last_hidden_state"


def _onnx_config(encoder: torch.nn.Module):
    from optimum.exporters.onnx.model_configs import BertOnnxConfig

    class TriageEncoderOnnxConfig(BertOnnxConfig):
        """BERT feature extraction with two inputs: the appliance never sends segment ids."""

        @property
        def inputs(self) -> dict[str, dict[int, str]]:
            axes = {0: "batch", 1: "seq"}
            return {"input_ids": axes, "attention_mask": axes}

        @property
        def outputs(self) -> dict[str, dict[int, str]]:
            return {HIDDEN_OUTPUT: {0: "batch", 1: "seq"}}

    return TriageEncoderOnnxConfig(encoder.config, task="feature-extraction")


def export_encoder(encoder: torch.nn.Module, path: Path) -> Path:
    """optimum's exporter: ``encoder`` (a transformers BERT) → fp32 ONNX with dynamic batch and
    sequence axes, inputs ``input_ids`` and ``attention_mask``, output ``last_hidden_state``."""
    from optimum.exporters.onnx import export

    for noisy in ("optimum", "transformers", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder.eval()
    export(encoder, _onnx_config(encoder), path, opset=OPSET, do_constant_folding=True)
    return path


def fuse(source: Path, target: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Portable transformer fusions; returns how many of each fused operator the graph has."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    options.use_multi_head_attention = True
    model = optimizer.optimize_model(str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                     optimization_options=options, opt_level=0)
    model.save_model_to_file(str(target), use_external_data_format=False)
    fused = Counter(n.op_type for n in model.model.graph.node)
    return {op: fused[op] for op in ("MultiHeadAttention", "SkipLayerNormalization", "BiasGelu", "MatMul") if fused[op]}


def export_fused(encoder: torch.nn.Module, folder: Path) -> tuple[Path, dict[str, int]]:
    """Export and fuse: ``folder/encoder-fp32.onnx`` (fused) and the fusion counts."""
    raw = export_encoder(encoder, folder / "encoder-exported.onnx")
    config = encoder.config
    fused = fuse(raw, folder / "encoder-fp32.onnx", config.num_attention_heads, config.hidden_size)
    raw.unlink()
    return folder / "encoder-fp32.onnx", fused


@dataclass
class EncoderGraphs:
    """The build's encoder graphs, made once: the fused fp32 reference, the shipped int8 graph
    and the alternative recipes measured beside it."""

    fp32: Path
    int8: Path
    hidden_size: int
    fusion: dict[str, int]
    recipe: dict[str, object]
    alternatives: dict[str, Path] = field(default_factory=dict)
    calibration: tuple | None = None  # (token ids, mask) the activation-measuring recipes used


def prepare(encoder: torch.nn.Module, folder: Path, recipe, compare: dict | None = None,
            calibration: tuple | None = None) -> EncoderGraphs:
    """Export, fuse and quantize ``encoder`` (by ``recipe`` and each of ``compare``) into ``folder``;
    ``calibration`` (token ids, mask) for recipes that measure activations."""
    from export import quantization_recipe

    fp32, fusion = export_fused(encoder, folder)
    info = quantization_recipe.quantize(fp32, folder / "encoder-int8.onnx", recipe, calibration)
    alternatives = {}
    for k, (name, alt) in enumerate((compare or {}).items()):
        if alt.needs_calibration and calibration is None:
            log.warning("recipe %r not compared: it needs calibration texts (reason-for-visit labels) and there are none", name)
            continue
        alternatives[name] = folder / f"encoder-alt{k}.onnx"
        quantization_recipe.quantize(fp32, alternatives[name], alt, calibration)
    return EncoderGraphs(fp32, folder / "encoder-int8.onnx", int(encoder.config.hidden_size), fusion, info, alternatives,
                         calibration)
