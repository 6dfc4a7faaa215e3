"""Join the encoder graph and the heads graph into the one graph a bundle ships.

The encoder (``export.encoder_export``, optimum → fused → int8) maps ``input_ids`` and
``attention_mask`` to ``last_hidden_state``; the heads (traced by ``torch.onnx``) map
``last_hidden_state``, ``attention_mask`` and ``features`` to the bundle's outputs. Joining them
here — rather than tracing encoder and heads together — lets one quantized encoder serve every
cross-validation fold, the fp32 reference and the shipped graph, so the int8 encoder the heads
were trained on is byte for byte the one that ships.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper, version_converter

HEADS_PREFIX = "heads"
SHARED_INPUTS = ("attention_mask",)
JOINED_INPUT = "last_hidden_state"


def _rename(graph: onnx.GraphProto, keep: set[str]) -> None:
    """Prefix every node, initializer and intermediate value of ``graph`` except ``keep``."""
    def new(name: str) -> str:
        return name if not name or name in keep else f"{HEADS_PREFIX}/{name.lstrip('/')}"

    for node in graph.node:
        node.name = new(node.name) if node.name else node.name
        node.input[:] = [new(n) for n in node.input]
        node.output[:] = [new(n) for n in node.output]
    for init in graph.initializer:
        init.name = new(init.name)
    for info in graph.value_info:
        info.name = new(info.name)


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def join(encoder_path: Path, heads_path: Path, out: Path) -> Path:
    """``encoder`` then ``heads`` as one graph: inputs input_ids, attention_mask, features; the
    heads' outputs, names unchanged. Every head node keeps ``/head/`` in its name."""
    encoder = onnx.load(str(encoder_path))
    heads = onnx.load(str(heads_path))
    target = _default_opset(encoder)
    if _default_opset(heads) < target:  # e.g. the int8 encoder's per-row QuantizeLinear needs opset 21
        heads = version_converter.convert_version(heads, target)
    encoder_inputs = {i.name for i in encoder.graph.input}
    head_inputs = [i.name for i in heads.graph.input]
    if JOINED_INPUT not in head_inputs or JOINED_INPUT not in {o.name for o in encoder.graph.output}:
        raise ValueError(f"the heads must read and the encoder must produce {JOINED_INPUT}")
    keep = {JOINED_INPUT, *head_inputs, *(o.name for o in heads.graph.output)}
    _rename(heads.graph, keep)
    graph = encoder.graph
    graph.node.extend(heads.graph.node)
    graph.initializer.extend(heads.graph.initializer)
    graph.value_info.extend(heads.graph.value_info)
    extra_inputs = [i for i in heads.graph.input if i.name != JOINED_INPUT and i.name not in encoder_inputs]
    graph.input.extend(extra_inputs)
    del graph.output[:]
    graph.output.extend(heads.graph.output)
    opsets = {o.domain: o.version for o in heads.opset_import}
    for o in encoder.opset_import:
        opsets[o.domain] = max(o.version, opsets.get(o.domain, 0))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name="edge-triage export.graph_merge")
    model.ir_version = max(encoder.ir_version, heads.ir_version)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
