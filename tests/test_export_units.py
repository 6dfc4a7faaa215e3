"""Build-time pieces in isolation: vocabulary pruning, int8 weight storage, calibration, the
decision grid, the int8 gate, NHAMCS parsing and the encoder locator's message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from edge.clinical.case import TriageCase  # noqa: E402
from edge.clinical.decision_rule import decide, softmax  # noqa: E402
from export import calibrate, encoders, int8_gate, quantization_recipe, vocab  # noqa: E402
from export.data import reason_for_visit_texts, transfer_cases  # noqa: E402

CORPUS = ["chest pain", "Rt. side motor weakness", "abdominal pain, RUQ", "laceration of finger", "dyspnea"]


def test_pruned_vocabulary_keeps_domain_tokens_and_never_produces_unk() -> None:
    from tokenizers import Tokenizer

    original = vocab.build_wordpiece(CORPUS + ["zebra", "quantum", "xylophone"])
    pruned = vocab.prune(original, CORPUS, keep_frequent=0)
    old, new = Tokenizer.from_str(original), Tokenizer.from_str(pruned.tokenizer_json)
    assert new.get_vocab_size() == len(pruned.kept_ids) < old.get_vocab_size()
    for text in CORPUS:  # the domain tokenizes exactly as before, id for id through kept_ids
        assert [pruned.kept_ids[i] for i in new.encode(text).ids] == old.encode(text).ids
    unseen = new.encode("xylophone quantum")  # pruned words fall back to characters, not [UNK]
    assert "[UNK]" not in unseen.tokens and len(unseen.tokens) > 4
    assert new.token_to_id(pruned.pad_token) == pruned.pad_id


def _tiny_graphs(tmp_path: Path, recipe, calibration=None):
    from export import encoder_export, modeling

    encoder = modeling.tiny_bert(60, seed=0)
    head = modeling.FusionHead(32)
    graphs = encoder_export.prepare(encoder, tmp_path / "encoder", recipe, calibration=calibration)
    return modeling.FusedClassifier(encoder, head), modeling.PooledHead(head, 1.0), graphs


def _inputs(n: int = 4):
    from edge.clinical.features import N_FEATURES

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 60, size=(n, 11))
    mask = np.ones_like(ids)
    mask[2, 7:] = 0
    return ids, mask, rng.normal(size=(n, N_FEATURES)).astype(np.float32)


def test_int8_encoder_keeps_int8_weights_and_int8_compute_and_matches_fp32(tmp_path: Path) -> None:
    import onnx
    import torch
    from onnx import TensorProto

    from edge.clinical.features import N_FEATURES
    from export import onnx_export

    model, head, graphs = _tiny_graphs(tmp_path, quantization_recipe.QuantRecipe())
    assert graphs.recipe["method"] == "matmul_nbits" and graphs.recipe["accuracy_level"] == 4
    assert graphs.fusion.get("SkipLayerNormalization", 0) > 0  # the transformer optimizer ran
    fp32 = onnx_export.bundle_graph(head, ["logits"], graphs.fp32, tmp_path / "fp32.onnx", 32, N_FEATURES)
    int8 = onnx_export.bundle_graph(head, ["logits"], graphs.int8, tmp_path / "int8.onnx", 32, N_FEATURES)
    ids, mask, feats = _inputs()
    a = onnx_export.OrtRunner(fp32).logits(ids, mask, feats)
    b = onnx_export.OrtRunner(int8).logits(ids, mask, feats)
    with torch.no_grad():
        c = model(torch.as_tensor(ids), torch.as_tensor(mask), torch.as_tensor(feats)).numpy()
    np.testing.assert_allclose(a, c, atol=1e-4)  # optimum export + fusion + join are faithful
    assert 0 < np.abs(a - b).max() < 0.05  # int8 moved the numbers, a little
    graph = onnx.load(str(int8)).graph
    inits = {i.name: i for i in graph.initializer}
    assert [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits and "/head/" not in n.name] == []
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all(inits[n.input[1]].data_type == TensorProto.UINT8 for n in nbits)
    assert all({a.name: a.i for a in n.attribute}["bits"] == 8 for n in nbits)
    head_weights = [n.input[1] for n in graph.node if n.op_type in ("Gemm", "MatMul") and "/head/" in n.name]
    assert head_weights and all(inits[w].data_type == TensorProto.FLOAT for w in head_weights)
    assert quantization_recipe.quantized_head_nodes(int8) == []
    # One case alone or beside others: the same numbers (activation scales are per row).
    alone = onnx_export.OrtRunner(int8).logits(ids[:1, :int(mask[0].sum())], mask[:1, :int(mask[0].sum())], feats[:1])
    np.testing.assert_allclose(alone, b[:1], atol=1e-5)


@pytest.mark.parametrize("method", ["dynamic", "weight_only"])
def test_compared_recipes_quantize_the_encoder_and_never_the_head(tmp_path: Path, method: str) -> None:
    import onnx

    from edge.clinical.features import N_FEATURES
    from export import onnx_export

    _, head, graphs = _tiny_graphs(tmp_path, quantization_recipe.QuantRecipe(method=method))
    int8 = onnx_export.bundle_graph(head, ["logits"], graphs.int8, tmp_path / "int8.onnx", 32, N_FEATURES)
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert ("DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops) == (method == "dynamic")
    assert quantization_recipe.quantized_head_nodes(int8) == []
    ids, mask, feats = _inputs()
    assert np.isfinite(onnx_export.OrtRunner(int8).logits(ids, mask, feats)).all()


def test_row_int8_is_integer_arithmetic_per_row_close_to_fp32_and_batch_invariant(tmp_path: Path) -> None:
    import onnx

    recipe = quantization_recipe.QuantRecipe(method="row_int8")
    _, head, graphs = _tiny_graphs(tmp_path, recipe, _calibration())
    assert graphs.recipe["method"] == "row_int8"
    int8 = _assert_close_to_fp32_and_batch_invariant(head, graphs, tmp_path)
    graph = onnx.load(str(int8)).graph
    inits = {i.name for i in graph.initializer}
    encoder_matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits and "/head/" not in n.name]
    assert encoder_matmuls == [] and sum(n.op_type == "MatMulInteger" for n in graph.node) > 0
    assert quantization_recipe.quantized_head_nodes(int8) == []


def _calibration() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(5, 60, size=(32, 9)), np.ones((32, 9), dtype=np.int64)


def _assert_close_to_fp32_and_batch_invariant(head, graphs, tmp_path: Path) -> Path:
    """The int8 bundle graph near the fp32 one, and a case alone scored as in a batch (each token
    row has its own scale); returns the int8 graph."""
    from edge.clinical.features import N_FEATURES
    from export import onnx_export

    fp32 = onnx_export.bundle_graph(head, ["logits"], graphs.fp32, tmp_path / "fp32.onnx", 32, N_FEATURES)
    int8 = onnx_export.bundle_graph(head, ["logits"], graphs.int8, tmp_path / "int8.onnx", 32, N_FEATURES)
    ids, mask, feats = _inputs()
    a = onnx_export.OrtRunner(fp32).logits(ids, mask, feats)
    b = onnx_export.OrtRunner(int8).logits(ids, mask, feats)
    assert 0 < np.abs(a - b).max() < 0.05
    alone = onnx_export.OrtRunner(int8).logits(ids[:1, :int(mask[0].sum())], mask[:1, :int(mask[0].sum())], feats[:1])
    np.testing.assert_allclose(alone, b[:1], atol=1e-5)
    return int8


def test_row_int8_compact_is_compact_close_to_fp32_and_batch_invariant(tmp_path: Path) -> None:
    """What makes it fast at a few tokens (export.row_int8_compact): Q, K and V share one product, the
    fused ops ONNX Runtime runs slowly at 5 tokens are gone, and each product adds ~8 nodes, not ~16
    (row_int8's); and it is still per-row int8: close to fp32 and the same alone as in a batch."""
    import onnx

    _, head, graphs = _tiny_graphs(tmp_path, quantization_recipe.QuantRecipe(method="row_int8_compact"), _calibration())
    assert graphs.recipe["smoothing_alpha"] == 0.65
    nodes = onnx.load(str(graphs.int8)).graph.node
    ops = [n.op_type for n in nodes]
    attention = [n for n in nodes if n.op_type == "MultiHeadAttention"]
    assert attention and all(n.input[3] == "" for n in attention), "attention bias must be added to the Q/K/V product"
    assert "SkipLayerNormalization" not in ops and "BiasGelu" not in ops and "MatMulInteger" not in ops
    products = ops.count("MatMulIntegerToFloat")
    assert products == 4 * len(attention)  # Q/K/V, output, two feed-forward
    added = len(nodes) - len(onnx.load(str(graphs.fp32)).graph.node)  # the MatMulInteger graph added ~16 per product
    assert added <= 9 * products, f"{added} nodes added for {products} products"
    _assert_close_to_fp32_and_batch_invariant(head, graphs, tmp_path)


def test_channel_moments_about_a_centre_match_a_second_pass() -> None:
    from export.row_int8 import ChannelStats

    x = np.random.default_rng(0).normal(2.0, 3.0, size=(50, 4))
    stats = ChannelStats(x.min(0), x.max(0), x.mean(0), x.T @ x, len(x))
    for centre in (stats.mean, np.array([-0.17] * 4)):
        np.testing.assert_allclose(stats.moments_about(centre), (x - centre).T @ (x - centre), rtol=1e-10)


def test_row_int8_without_calibration_is_refused_and_skipped_as_an_alternative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calibration"):
        _tiny_graphs(tmp_path / "a", quantization_recipe.QuantRecipe(method="row_int8"))
    from export import encoder_export, modeling

    graphs = encoder_export.prepare(modeling.tiny_bert(60, seed=0), tmp_path / "b", quantization_recipe.QuantRecipe(),
                                    {"row": quantization_recipe.QuantRecipe(method="row_int8")})
    assert graphs.alternatives == {}


def test_unknown_quantization_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown quantization method"):
        quantization_recipe.QuantRecipe(method="int4")


def test_graph_embedder_vectors_do_not_depend_on_the_batch(tmp_path: Path) -> None:
    from export import vocab
    from export.graph_embedder import GraphEmbedder

    texts = ["chest pain", "fever and cough for three days", "fall", "abdominal pain vomiting"]
    tokenizer_json = vocab.build_wordpiece(texts * 5)
    from tokenizers import Tokenizer

    size = Tokenizer.from_str(tokenizer_json).get_vocab_size()
    from export import encoder_export, modeling

    graphs = encoder_export.prepare(modeling.tiny_bert(size, seed=0), tmp_path / "enc", quantization_recipe.QuantRecipe())
    embedder = GraphEmbedder(graphs.int8, tokenizer_json, 0, "[PAD]", 32, threads=1)
    together = embedder.embed(texts, batch_size=4)
    apart = np.concatenate([embedder.embed([t], batch_size=1) for t in texts])
    assert together.shape == (4, 32)
    np.testing.assert_allclose(together, apart, atol=1e-5)
    assert len(embedder.key) == 64


def test_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(logits, 2.0)])
    assert calibrate.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_critical_weight_moves_borderline_critical_cases_up() -> None:
    probs = np.array([[0.05, 0.30, 0.55, 0.10, 0.0]])
    plain = calibrate.decision_spec(1.0, 1.0)
    critical = calibrate.decision_spec(1.0, 3.0)
    assert decide(probs, plain)[0] == 3 and decide(probs, critical)[0] == 2
    assert np.asarray(critical["cost_matrix"])[1, 1] == 0  # a correct answer costs nothing


def test_operating_point_respects_the_safety_targets() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(1, 6, size=600)
    logits = np.eye(5)[truth - 1] * 2.0 + rng.normal(scale=1.2, size=(600, 5))
    cases = [TriageCase(complaint="x")] * 600
    point = calibrate.choose_operating_point(softmax(logits), truth, calibrate.fired_rules(cases))
    if point.meets_targets:
        assert point.metrics["under_triage"] <= 0.10 and point.metrics["critical_recall"] >= 0.80
    curve = calibrate.tradeoff_curve(softmax(logits), truth, calibrate.fired_rules(cases))
    under = [p["under_triage"] for p in curve]
    assert under[0] >= under[-1]  # dearer under-triage never raises it


def test_int8_gate_counts_moves_and_fails_on_a_two_level_drop() -> None:
    truth = np.array([1, 2, 3, 4, 5] * 40)
    fp32 = truth.copy()
    same = int8_gate.int8_agreement(fp32, fp32.copy(), truth)
    assert same["agreement"] == 1.0 and same["passes"]
    worse = fp32.copy()
    worse[0] = 3  # a level-1 case sent to level 3
    gate = int8_gate.int8_agreement(fp32, worse, truth)
    assert gate["moved_two_or_more_less_urgent"] == 1 and not gate["passes_minimum"]
    assert gate["agreement"] == pytest.approx(0.995) and gate["passes"]  # 99.5 % agreement still passes


def test_nhamcs_reason_for_visit_block_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "ed22for.txt"
    path.write_text("   VALUE RFVOTHER\n 1 ='no'\n   VALUE RFVF\r\n       10050 ='Chills'\r\n"
                    "       10100 ='Fever'\r\n       89990 ='Illegible entry'\r\n       -9 ='Blank'\r\n"
                    "   VALUE NEXT\n  2 ='after'\n", encoding="latin-1")
    assert reason_for_visit_texts(path) == ["Chills", "Fever"]
    donors = [TriageCase(complaint="old", age=30, hr=90), TriageCase(complaint="old2", age=70)]
    out = transfer_cases(["Fever", "Chills"], donors, copies=2, seed=0)
    assert len(out) == 4 and {c.complaint for c in out} == {"Fever", "Chills"}
    assert all(c.age in (30, 70) for c in out)


def test_missing_encoder_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "MINILM_PACKAGE", "no-such-encoder-package-xyz")
    with pytest.raises(encoders.EncoderMissing, match="make model-deps"):
        encoders.student()


def test_missing_field_augmentation_masks_whole_groups_and_keeps_the_rest() -> None:
    from export import augment

    full = TriageCase("chest pain", age=60, sex="M", arrival="walk", injury=False, mental="A", pain=5,
                      sbp=120, dbp=80, hr=90, rr=18, temp_c=36.8, spo2=98)
    cases = [full, TriageCase("fever", age=3, sbp=100, hr=140)]
    sources, masked = augment.augmentation(cases, 2.0, seed=1)
    assert len(masked) == 4 and sorted(sources.tolist()) == [0, 0, 1, 1]
    for i, case in zip(sources, masked):
        assert case.complaint == cases[int(i)].complaint
        removed = {k for k, v in cases[int(i)].to_dict().items() if k not in case.to_dict()}
        assert removed <= set(augment.VITALS + augment.OTHER_OPTIONAL)
    kiosk = augment.view([full], augment.KIOSK)[0]
    assert kiosk.to_dict() == {"complaint": "chest pain", "age": 60, "sex": "M", "pain": 5}
    assert augment.augmentation(cases, 0.0, seed=1)[1] == []
