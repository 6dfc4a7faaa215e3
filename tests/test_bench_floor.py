"""The roofline floor's parts: bytes per inference (traffic), the roofline arithmetic, the board
estimates and the bandwidth measurement's shape. No timing is asserted: only structure, byte
counts (exact, from graphs built here) and the invariants the floor must keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bench import bandwidth, boards, roofline, traffic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED_GRAPH = REPO / "models" / "triage-minilm-int8" / "model.onnx"
VOCAB, HIDDEN, OUT = 100, 64, 256


def weight_only_int8_graph(path: Path) -> Path:
    """input_ids -> int8 embedding rows (Gather, Cast, Mul by row scale) -> MatMul with an int8
    weight dequantized by Cast -> Mul (the chain ONNX Runtime folds at load) -> output."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, (VOCAB, HIDDEN), dtype=np.int8), "table_int8"),
        numpy_helper.from_array(rng.random(VOCAB, dtype=np.float32), "table_scale"),
        numpy_helper.from_array(rng.integers(-127, 128, (HIDDEN, OUT), dtype=np.int8), "w_int8"),
        numpy_helper.from_array(rng.random(OUT, dtype=np.float32), "w_scale"),
        numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "last_axis"),
    ]
    nodes = [
        helper.make_node("Gather", ["table_int8", "input_ids"], ["rows_int8"]),
        helper.make_node("Gather", ["table_scale", "input_ids"], ["row_scale"]),
        helper.make_node("Unsqueeze", ["row_scale", "last_axis"], ["row_scale_2d"]),
        helper.make_node("Cast", ["rows_int8"], ["rows_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["rows_float", "row_scale_2d"], ["embedded"]),
        helper.make_node("Cast", ["w_int8"], ["w_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w_float", "w_scale"], ["w"]),
        helper.make_node("MatMul", ["embedded", "w"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "weight_only_int8",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "seq"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "seq", OUT])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, traffic.GraphBytes]:
    path = weight_only_int8_graph(tmp_path_factory.mktemp("graph") / "model.onnx")
    stored, loaded = traffic.load_graphs(path)
    return traffic.graph_bytes(stored, loaded, path.name)


def test_embedding_table_counts_only_the_rows_gathered(views):
    stored = views["int8_stored"]
    assert set(stored.tables) == {"table_int8", "table_scale"}
    assert stored.row_bytes_per_token == HIDDEN * 1 + 4  # one int8 row and its fp32 scale per token
    assert stored.bytes_at(3) - stored.bytes_at(2) == stored.row_bytes_per_token
    # The whole table is not in the per-inference bytes: only the weight, its scales and the axis.
    assert stored.weight_bytes == HIDDEN * OUT + OUT * 4 + 8


def test_stored_bytes_are_the_file_s_types(views):
    stored = views["int8_stored"]
    assert stored.weight_bytes_by_type["int8"] == HIDDEN * OUT
    assert stored.weight_bytes_by_type["float32"] == OUT * 4


def test_as_loaded_bytes_come_from_the_optimized_graph_where_the_weight_is_fp32(views):
    # Found by reading ONNX Runtime's optimized graph: the Cast -> Mul chain is folded to fp32.
    loaded = views["as_loaded"]
    assert loaded.weight_bytes_by_type.get("int8", 0) == 0
    assert loaded.weight_bytes_by_type["float32"] >= HIDDEN * OUT * 4


def test_fp32_graph_reads_about_four_times_the_int8_stored_weight_bytes(views):
    fp32, stored = views["fp32"], views["int8_stored"]
    assert fp32.weight_bytes_by_type["float32"] == pytest.approx(4 * stored.weight_bytes_by_type["int8"], rel=0.01)
    assert 3.3 <= fp32.weight_bytes / stored.weight_bytes <= 4.05  # the scales are what keeps it under 4
    assert fp32.row_bytes_per_token == HIDDEN * 4 + 4


@pytest.mark.skipif(not SHIPPED_GRAPH.is_file(), reason="shipped graph not in this checkout")
def test_shipped_graph_keeps_int8_weights_as_loaded_and_computes_in_int8():
    """MatMulInteger (export.row_int8): ONNX Runtime does not fold the weights to fp32 at load (the
    earlier weight-only graph streamed 3.7x its stored bytes), and the products are int8."""
    stored, loaded = traffic.load_graphs(SHIPPED_GRAPH)
    views = traffic.graph_bytes(stored, loaded)
    int8_bytes = views["int8_stored"].weight_bytes_by_type["int8"]
    assert int8_bytes > 5_000_000  # the encoder's weights
    assert views["as_loaded"].weight_bytes == pytest.approx(views["int8_stored"].weight_bytes, rel=0.05)
    for tokens in (3, 11, 32):
        ratio = views["fp32"].bytes_at(tokens) / views["int8_stored"].bytes_at(tokens)
        assert 3.0 <= ratio <= 4.05, (tokens, ratio)
    assert roofline.compute_kind(loaded) == "int8"


def test_roofline_floor_is_never_below_either_term():
    for flops, nbytes in ((10**6, 10**8), (10**10, 10**5), (5 * 10**7, 5 * 10**7)):
        cell = roofline.roofline("as_loaded", 5, "fp32", flops, nbytes, gops=100.0, gbs=10.0)
        assert cell.floor_ms >= cell.compute_ms and cell.floor_ms >= cell.memory_ms
        assert cell.bound == ("memory" if cell.memory_ms >= cell.compute_ms else "compute")


def test_board_estimates_are_labelled_estimates_with_their_assumptions():
    flops = {3: 64_000_000, 11: 235_000_000}
    nbytes = {"as_loaded": {3: 43_000_000, 11: 43_000_000}, "int8_stored": {3: 11_700_000, 11: 11_700_000},
              "fp32": {3: 43_000_000, 11: 43_000_000}}
    kinds = {"as_loaded": "fp32", "int8_stored": "int8", "fp32": "fp32"}
    estimates = boards.estimates(flops, nbytes, kinds)
    assert {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano-8gb"} <= set(estimates)
    for est in estimates.values():
        assert est["estimate"] is True and est["assumptions"]
        for name in ("ghz", "fp32_flops_per_cycle", "int8_ops_per_cycle", "stream_gbs", "llc_mib"):
            figure = est["spec"][name]
            assert figure["value"] > 0 and figure["source"] and isinstance(figure["assumed"], bool)
        for variant in nbytes:
            for cell in est["by_variant"][variant]["by_tokens"].values():
                assert cell["floor_ms"] >= max(cell["compute_ms"], cell["memory_ms"]) * 0.999
    # Same bandwidth and bytes: fp32 weights cost ~4x int8 ones wherever memory bounds the floor.
    pi4 = estimates["raspberry-pi-4@4t"]["by_variant"]
    assert pi4["as_loaded"]["by_tokens"]["3"]["memory_ms"] > 3 * pi4["int8_stored"]["by_tokens"]["3"]["memory_ms"]


def test_bandwidth_measurement_shape():
    # Small arrays (in cache): the figures mean nothing here, only the record's shape is checked.
    results = bandwidth.measure((1, 2), runs=1, size_bytes=4 << 20)
    assert [r.threads for r in results] == [1, 2]
    for r in results:
        assert r.copy_gbs > 0 and r.triad_gbs > 0 and r.triad_gbs_actual > r.triad_gbs
        assert r.best_gbs == pytest.approx(max(r.copy_gbs, r.triad_gbs_actual), rel=0.01)
        assert r.method


def test_array_size_follows_the_cache_and_the_memory_cap():
    assert bandwidth.array_bytes(300 << 20, 64 << 30) == 1200 << 20
    assert bandwidth.array_bytes(300 << 20, 2 << 30) < 1200 << 20  # capped on a small box
    assert bandwidth.array_bytes(None, None) == bandwidth.MIN_ARRAY_BYTES


def test_a_board_without_int8_dot_product_is_estimated_on_the_fp32_weights_it_loads():
    flops = {5: 107_000_000}
    nbytes = {"as_loaded": {5: 13_200_000}, "int8_stored": {5: 13_200_000}, "fp32": {5: 45_100_000}}
    kinds = {"as_loaded": "int8", "int8_stored": "int8", "fp32": "fp32"}
    estimates = boards.estimates(flops, nbytes, kinds)
    pi4, pi5 = estimates["raspberry-pi-4"]["by_variant"]["as_loaded"], estimates["raspberry-pi-5"]["by_variant"]["as_loaded"]
    assert pi4["compute"] == "fp32" and pi5["compute"] == "int8"  # edge.inference.int8_fallback on the Pi 4
    assert pi4["by_tokens"]["5"]["memory_ms"] == pytest.approx(45_100_000 / 5.0e9 * 1000, rel=1e-3)


def test_a_matmulinteger_graph_stays_int8_on_a_board_without_dot_product():
    # export.row_int8: ONNX Runtime has a widening-multiply uint8 x int8 kernel on every arm64 core.
    flops = {5: 107_000_000}
    nbytes = {"as_loaded": {5: 13_200_000}, "int8_stored": {5: 13_200_000}, "fp32": {5: 45_100_000}}
    kinds = {"as_loaded": "int8", "int8_stored": "int8", "fp32": "fp32"}
    pi4 = boards.estimates(flops, nbytes, kinds, int8_needs_dot=False)["raspberry-pi-4"]["by_variant"]["as_loaded"]
    assert pi4["compute"] == "int8"
    assert pi4["by_tokens"]["5"]["memory_ms"] == pytest.approx(13_200_000 / 5.0e9 * 1000, rel=1e-3)
