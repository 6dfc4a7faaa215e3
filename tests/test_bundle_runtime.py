"""Bundle verification and the one triage path, on a real ONNX Runtime session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.inference.bundle import verify
from edge.clinical.case import parse_case
from edge.clinical.decision_rule import cost_matrix, decide, softmax
from edge.errors import BundleError
from edge.inference.session import RuntimeOptions, TriageModel
from edge.inference.triager import DEGRADED_LEVEL, Triager


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_tiny_bundle_verifies(tiny_bundle: Path) -> None:
    bundle = verify(tiny_bundle)
    assert bundle.identity()["name"] == "tiny-test" and len(bundle.sha256) == 64


def test_tampered_file_is_refused_with_clear_message(tiny_bundle: Path, tmp_path: Path) -> None:
    bad = copy_bundle(tiny_bundle, tmp_path / "bad")
    with (bad / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError) as info:
        verify(bad)
    assert info.value.code == "hash_mismatch" and "tokenizer.json" in info.value.message


@pytest.mark.parametrize("mutation, code", [
    (lambda d: (d / "model.onnx").unlink(), "file_missing"),
    (lambda d: (d / "manifest.json").unlink(), "manifest_missing"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "manifest_unreadable"),
])
def test_broken_bundles_are_refused(tiny_bundle: Path, tmp_path: Path, mutation, code: str) -> None:
    bad = copy_bundle(tiny_bundle, tmp_path / "bad")
    mutation(bad)
    with pytest.raises(BundleError) as info:
        verify(bad)
    assert info.value.code == code


def test_feature_spec_mismatch_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bad = copy_bundle(tiny_bundle, tmp_path / "bad")
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["features"]["version"] = "features-v0"
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as info:
        verify(bad)
    assert info.value.code == "feature_mismatch"


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        verify(tmp_path / "nowhere")
    assert info.value.code == "bundle_not_found" and "--model" in info.value.message


def test_decision_rule_trades_over_for_under_triage() -> None:
    probs = np.array([[0.05, 0.30, 0.60, 0.05, 0.0]])
    assert decide(probs, {"rule": "argmax"})[0] == 3
    cautious = {"rule": "min_expected_cost", "cost_matrix": cost_matrix(under_weight=4.0).tolist()}
    assert decide(probs, cautious)[0] == 2
    assert np.allclose(softmax(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), 2.0).sum(), 1.0)


def test_model_runs_with_truncation_and_batch_padding(tiny_bundle: Path) -> None:
    model = TriageModel.load(tiny_bundle, RuntimeOptions(intra_op_threads=1))
    long_case = parse_case({"complaint": " ".join(["pain"] * 100)})
    ids, mask = model.encode_text([long_case.complaint, "cough"])
    assert ids.shape == (2, model.max_seq_len) and mask[1].sum() < mask[0].sum()
    ids, _ = model.encode_text(["chest pain"] * 2, max_tokens=3)
    assert ids.shape[1] == 3
    probs = model.probabilities([long_case, parse_case({"complaint": "cough"})])
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1.0)


def test_rules_only_raise_the_model_level(tiny_bundle: Path) -> None:
    triager = Triager(TriageModel.load(tiny_bundle))
    minor = parse_case({"complaint": "ankle sprain"})
    assert triager.triage(minor).level >= 3
    result = triager.triage(parse_case({"complaint": "ankle sprain", "spo2": 85}))
    assert result.model_level is not None and result.level == 1 <= result.model_level
    assert result.review_required and any(r["id"] == "V-SPO2-90" for r in result.rules_fired)


def test_degraded_answers_fail_toward_clinician_review(tiny_bundle: Path) -> None:
    triager = Triager(TriageModel.load(tiny_bundle))
    result = triager.degraded(parse_case({"complaint": "ankle sprain"}), "deadline")
    assert result.level <= DEGRADED_LEVEL and result.review_required and result.degraded == "deadline"
    assert "clinician review now" in result.reasons[0]
    no_model = Triager(None).triage(parse_case({"complaint": "rash"}))
    assert no_model.degraded == "model unavailable" and no_model.level <= DEGRADED_LEVEL


def test_explanation_names_the_driving_phrase(tiny_bundle: Path) -> None:
    triager = Triager(TriageModel.load(tiny_bundle))
    result = triager.triage(parse_case({"complaint": "chest pain", "age": 30}), explain=True)
    assert result.explanation and result.explanation[0] == {**result.explanation[0], "kind": "phrase", "name": "chest"}
