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
    from onnx import helper, numpy_helper

    graph = onnx.load(str(SHIPPED_BUNDLE / "model.onnx")).graph
    per_tensor = [n.name for n in graph.node if n.op_type in ("DynamicQuantizeLinear", "DynamicQuantizeMatMul")]
    assert per_tensor == [], f"per-batch activation quantization in the shipped graph: {per_tensor}"
    # MatMulIntegerToFloat (export.row_int8): its activations must be quantized per row — one
    # QuantizeLinear block per token row, its scale a max over that row's last axis, never the batch.
    producers = {out: node for node in graph.node for out in node.output}
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    products = [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert len(products) >= 24, "encoder products must be int8 (MatMulIntegerToFloat)"
    for node in products:
        quantize = producers[node.input[0]]
        attrs = {a.name: helper.get_attribute_value(a) for a in quantize.attribute}
        rows = values[node.input[1]].shape[0]
        assert quantize.op_type == "QuantizeLinear" and attrs.get("axis") == -1 and attrs.get("block_size") == rows, (node.name, attrs)
        assert float(values[node.input[2]]) == 1.0, "the row scale, not a per-tensor one, must scale the product"
        source, reductions = producers[quantize.input[1]], []
        while source.op_type in ("Mul", "Max"):
            source = producers[source.input[0]]
        assert source.op_type == "ReduceMax", (node.name, source.op_type)
        assert values[source.input[1]].tolist() == [-1] and helper.get_attribute_value(source.attribute[0]) == 1, node.name


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
