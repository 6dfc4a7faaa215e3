"""The shipped bundle answers each case the same whether it runs alone or batched with others.

Dynamic activation quantization (DynamicQuantizeLinear → MatMulInteger) picks one scale per
batch, so a patient's probabilities would move with whoever else is queued; the shipped graph
must have none of it. Skips when the bundle or the KTAS data is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SHIPPED_BUNDLE

pytestmark = pytest.mark.skipif(not (SHIPPED_BUNDLE / "manifest.json").is_file(),
                                reason=f"no shipped bundle at {SHIPPED_BUNDLE}: run `make build-model`")


def _sample_cases(ktas_csv, n: int = 50):
    from edge.clinical.datasets import ktas

    rows = ktas.load(ktas_csv).cases
    step = max(1, len(rows) // n)
    return [r.case for r in rows[::step]][:n]


def test_graph_has_no_per_batch_activation_quantization() -> None:
    import onnx
    from onnx import helper

    graph = onnx.load(str(SHIPPED_BUNDLE / "model.onnx")).graph
    per_tensor = [n.name for n in graph.node if n.op_type in ("DynamicQuantizeLinear", "DynamicQuantizeMatMul")]
    assert per_tensor == [], f"per-batch activation quantization in the shipped graph: {per_tensor}"
    # MatMulInteger (export.row_int8): its activations must be quantized per row — every range it
    # depends on is a max/min over the last axis of one token's row, never over the batch.
    producers = {out: node for node in graph.node for out in node.output}
    for node in (n for n in graph.node if n.op_type == "MatMulInteger"):
        reductions, frontier, seen = [], [node.input[0]], set()
        while frontier:
            name = frontier.pop()
            source = producers.get(name)
            if source is None or source.name + name in seen or source.op_type in ("SkipLayerNormalization", "BiasGelu",
                                                                                    "MultiHeadAttention"):
                continue
            seen.add(source.name + name)
            if source.op_type in ("ReduceMax", "ReduceMin"):
                reductions.append({a.name: helper.get_attribute_value(a) for a in source.attribute})
            frontier.extend(source.input)
        assert reductions, f"{node.name}: no per-row range found for its activations"
        assert all(r.get("axes") == [-1] and r.get("keepdims") == 1 for r in reductions), (node.name, reductions)


def test_probabilities_do_not_depend_on_batch_neighbours(ktas_csv) -> None:
    from edge.inference.session import RuntimeOptions, TriageModel

    model = TriageModel.load(SHIPPED_BUNDLE, RuntimeOptions(intra_op_threads=1))
    cases = _sample_cases(ktas_csv)
    assert len(cases) >= 40
    batched = model.probabilities(cases)
    single = np.concatenate([model.probabilities([c]) for c in cases])
    halves = np.concatenate([model.probabilities(cases[:17]), model.probabilities(cases[17:])])
    np.testing.assert_allclose(single, batched, atol=1e-6, rtol=0)
    np.testing.assert_allclose(halves, batched, atol=1e-6, rtol=0)
