"""Cores without ONNX Runtime's int8 kernel get fp32 weights made at load from the same file —
for MatMulNBits graphs; a MatMulInteger graph (export.row_int8) runs int8 everywhere as it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.inference import int8_fallback
from edge.inference.session import RuntimeOptions, TriageModel
from edge.clinical.case import TriageCase

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "triage-minilm-int8"


@pytest.fixture(scope="module")
def nbits_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.kit.tiny_bundle import build_nbits_bundle

    return build_nbits_bundle(tiny_bundle, tmp_path_factory.mktemp("nbits") / "bundle")
CASES = [TriageCase("chest pain radiating to the left arm", age=60, hr=110, sbp=90),
         TriageCase("ankle sprain", age=20, pain=3), TriageCase("fever and cough", age=3, temp_c=39.2),
         TriageCase("laceration of the right forearm after a fall at home", age=81)]


def _cpuinfo(tmp_path: Path, features: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nFeatures\t: {features}\nCPU part\t: 0xd08\n\n")
    return path


def test_int8_kernel_presence_follows_the_cpu(tmp_path: Path) -> None:
    pi4 = _cpuinfo(tmp_path, "fp asimd evtstrm crc32 cpuid")
    assert not int8_fallback.cpu_has_int8_dot(pi4, machine="aarch64")
    pi5 = _cpuinfo(tmp_path, "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp")
    assert int8_fallback.cpu_has_int8_dot(pi5, machine="aarch64")
    assert int8_fallback.cpu_has_int8_dot(pi4, machine="x86_64")  # x86-64: AVX2/VNNI kernels
    assert int8_fallback.cpu_has_int8_dot(tmp_path / "absent", machine="aarch64")  # unknown: keep the graph
    assert int8_fallback.needs_fp32_weights("fp32", pi5) and not int8_fallback.needs_fp32_weights("int8", pi4)


def test_fp32_weights_compute_what_the_int8_weights_say(nbits_bundle: Path) -> None:
    """Exactly the int8 weights, in fp32: the same numbers as MatMulNBits at accuracy_level 0."""
    import onnx
    import onnxruntime as ort

    graph, rewritten = int8_fallback.fp32_weight_graph((nbits_bundle / "model.onnx").read_bytes())
    assert rewritten == 1
    assert not [n for n in onnx.load_from_string(graph).graph.node if n.op_type == "MatMulNBits"]
    reference = onnx.load(str(nbits_bundle / "model.onnx"))
    for node in reference.graph.node:
        for attribute in node.attribute:
            if node.op_type == "MatMulNBits" and attribute.name == "accuracy_level":
                attribute.i = 0  # fp32 arithmetic on the same 8-bit blocks
    model = TriageModel.load(nbits_bundle, RuntimeOptions(int8_compute="fp32"), warm=False)
    ids, mask = model.encode_text([c.complaint for c in CASES])
    from edge.clinical.features import encode_cases

    feeds = {"input_ids": ids, "attention_mask": mask, "features": encode_cases(CASES)}
    expected = ort.InferenceSession(reference.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = model.session.run(None, feeds)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert "fp32 weights" in model.arithmetic


def test_fp32_weights_give_the_int8_graphs_levels(nbits_bundle: Path) -> None:
    int8 = TriageModel.load(nbits_bundle, RuntimeOptions(int8_compute="int8"), warm=False)
    fp32 = TriageModel.load(nbits_bundle, RuntimeOptions(int8_compute="fp32"), warm=False)
    a, b = int8.probabilities(CASES), fp32.probabilities(CASES)
    assert np.abs(a - b).max() < 0.05 and (a.argmax(1) == b.argmax(1)).all()
    assert "int8" in int8.arithmetic and "fp32 weights" in fp32.arithmetic


def test_a_matmulinteger_graph_is_loaded_as_it_is_on_every_cpu(tiny_bundle: Path, tmp_path: Path) -> None:
    # export.row_int8 bundles: ONNX Runtime has a uint8 x int8 kernel on every core, dot product or not.
    import json
    import shutil

    from edge.inference.bundle import verify, write_manifest
    from edge.inference.session import _graph_source

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["quantization"] = {"method": "row_int8"}
    write_manifest(copy, manifest)
    bundle = verify(copy)
    for mode in ("auto", "int8", "fp32"):
        source, arithmetic = _graph_source(bundle, RuntimeOptions(int8_compute=mode))
        assert source == str(bundle.model_file) and arithmetic.startswith("int8: MatMulInteger")
    assert "MatMulNBits graphs only" in arithmetic  # int8_compute = fp32 says it does not apply


def test_a_changed_graph_is_refused_before_it_is_rewritten(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from edge.errors import BundleError
    from edge.inference.bundle import verify
    from edge.inference.session import _graph_source

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    bundle = verify(copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")  # after verification
    with pytest.raises(BundleError) as caught:
        _graph_source(bundle, RuntimeOptions(int8_compute="fp32"))
    assert caught.value.code == "hash_mismatch"


def test_int8_compute_setting_is_validated(tmp_path: Path) -> None:
    from edge.service.config import ServiceConfig
    from edge.service.config_tables import ConfigError

    assert ServiceConfig(int8_compute="fp32").validate().runtime_options().int8_compute == "fp32"
    with pytest.raises(ConfigError) as caught:
        ServiceConfig(int8_compute="int4").validate()
    assert caught.value.field == "int8_compute"
