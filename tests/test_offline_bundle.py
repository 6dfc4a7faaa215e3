"""The offline install bundle: per-target pins, the installer script, and (slow, needs PyPI) real
bundles whose wheel sets resolve with ``pip --no-index`` for each board's platform and Python."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "deploy"))
import build_bundle  # noqa: E402

CONSTRAINTS = REPO / "deploy" / "constraints"
EXPECTED_ORT = {"3.11": "1.32.0", "3.10": "1.23.2"}


def _pins(path: Path) -> dict[str, str]:
    return dict(line.split("==", 1) for line in build_bundle.pinned_requirements(path))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("target", build_bundle.TARGETS)
@pytest.mark.parametrize("python", build_bundle.PYTHONS)
def test_every_runtime_dependency_is_pinned_per_target(target: str, python: str) -> None:
    pins = _pins(CONSTRAINTS / f"{target}-py{python}.txt")
    assert pins["onnxruntime"] == EXPECTED_ORT[python]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, _, marker = requirement.partition(";")
        name = _normal(re.split(r"[<>=!~ \[]", name.strip())[0])
        if "python_version < '3.11'" in marker and python == "3.11":
            assert name not in pins
            continue
        if "platform_machine == 'aarch64'" in marker and target != "aarch64":
            continue
        assert name in pins, f"{name} is a runtime dependency but not pinned for {target} py{python}"
    # build-time stacks must never reach a board
    assert not {"torch", "transformers", "optimum", "scikit-learn"} & set(pins)


def test_install_script_is_valid_posix_sh() -> None:
    result = subprocess.run(["sh", "-n", str(REPO / "deploy" / "install.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if shutil.which("shellcheck"):
        check = subprocess.run(["shellcheck", "-s", "sh", str(REPO / "deploy" / "install.sh")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "deploy" / "build_bundle.py"), "--target", "aarch64",
                             "--python", "3.11", "--model", str(tmp_path / "nope"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "No model bundle" in result.stderr and "--model" in result.stderr
    assert not list(tmp_path.glob("*.tar.gz"))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("target,python", [("aarch64", "3.11"), ("aarch64", "3.10"), ("x86_64", "3.11")])
def test_bundle_builds_and_its_wheels_resolve_offline(tmp_path: Path, target: str, python: str) -> None:
    from tests.kit.tiny_bundle import build_tiny_bundle

    model = tmp_path / "models" / "triage-minilm-int8"
    build_tiny_bundle(model)
    spec = build_bundle.BundleSpec(target, python, model, tmp_path / "dist")
    try:
        tarball = build_bundle.build(spec)  # includes the no-index resolution check
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot reach the package index to download wheels: {error}")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile(f"{spec.name}/BUNDLE.json"))
    wheels = [Path(n).name for n in names if n.endswith(".whl")]
    assert meta["target"] == target and meta["python"] == python
    ort = [w for w in wheels if w.startswith("onnxruntime-")]
    assert len(ort) == 1 and ort[0].startswith(f"onnxruntime-{EXPECTED_ORT[python]}-")
    assert target in ort[0] and f"cp{python.replace('.', '')}" in ort[0]
    binary = [w for w in wheels if not w.endswith("-none-any.whl") and "py2.py3-none-any" not in w]
    assert all(target in w for w in binary), f"a wheel for the wrong platform: {binary}"
    assert any(w.startswith("edge_triage-") for w in wheels) and any(w.startswith("pip-") for w in wheels)
    assert (python == "3.10") == any(w.startswith("tomli-") for w in wheels)
    for required in ("install.sh", "SHA256SUMS", "constraints.txt", "systemd/edge-triage.service",
                     "models/triage-minilm-int8/manifest.json"):
        assert f"{spec.name}/{required}" in names


# --- verify-arm: the comparison that gates ARM parity, and a real emulated run -----------------

import verify_arm  # noqa: E402
from arm_cpuinfo import CPU_MODELS, cpuinfo_text  # noqa: E402


def _answer(level: int, probabilities: list[float]) -> dict:
    return {"level": level, "model_level": level, "probabilities": probabilities}


def test_parity_passes_identical_and_tiny_differences() -> None:
    x86 = [_answer(3, [0.1, 0.2, 0.4, 0.2, 0.1]), _answer(1, [0.9, 0.1, 0.0, 0.0, 0.0])]
    arm = [_answer(3, [0.1, 0.2, 0.4004, 0.1996, 0.1]), _answer(1, [0.9, 0.1, 0.0, 0.0, 0.0])]
    assert verify_arm.compare(x86, arm)["ok"]


def test_parity_fails_on_level_flip_and_on_probability_drift() -> None:
    x86 = [_answer(5, [0.0, 0.0, 0.07, 0.36, 0.57]), _answer(2, [0.1, 0.6, 0.2, 0.1, 0.0])]
    flipped = verify_arm.compare(x86, [_answer(4, [0.0, 0.0, 0.07, 0.38, 0.55]), x86[1]])
    assert not flipped["ok"] and flipped["level_mismatches"] == 1 and flipped["arm_more_urgent"] == 1
    assert flipped["mismatches"][0]["case_index"] == 0
    drift = verify_arm.compare(x86, [x86[0], _answer(2, [0.1, 0.57, 0.23, 0.1, 0.0])])
    assert not drift["ok"] and drift["level_mismatches"] == 0 and drift["max_abs_prob_diff"] > verify_arm.PROB_TOLERANCE
    rounding = verify_arm.compare(x86, [x86[0], _answer(2, [0.1, 0.59, 0.21, 0.1, 0.0])])  # int8 kernels differ by ISA
    assert rounding["ok"] and rounding["max_abs_prob_diff"] <= verify_arm.PROB_TOLERANCE
    assert not verify_arm.compare(x86, x86[:1])["ok"]


def test_fake_cpuinfo_is_arm_for_each_board() -> None:
    for cpu, part in (("cortex-a72", "0xd08"), ("cortex-a76", "0xd0b")):
        text = cpuinfo_text(cpu)
        assert text.count("processor\t:") == 4 and f"CPU part\t: {part}" in text and "CPU implementer\t: 0x41" in text
    assert "max" not in CPU_MODELS


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_verify_arm_runs_under_qemu_on_a_tiny_bundle(tmp_path: Path) -> None:
    data = REPO.parent / "shared" / "data" / "ktas-moon2019" / "data.csv"
    if not data.exists():
        pytest.skip(f"KTAS data not found at {data}")
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64-static missing (apt-get install qemu-user-static)")
    from tests.kit.tiny_bundle import build_tiny_bundle

    model = tmp_path / "models" / "triage-minilm-int8"
    build_tiny_bundle(model)
    try:
        tarball = build_bundle.build(build_bundle.BundleSpec("aarch64", "3.11", model, tmp_path / "dist"))
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot reach the package index to download wheels: {error}")
    report = tmp_path / "verify-arm.json"
    code = verify_arm.main(["--bundle", str(tarball), "--data", str(data), "--limit", "25", "--skip-eval",
                            "--work", "/var/tmp/edge-triage-arm", "--report", str(report)])
    result = json.loads(report.read_text())
    assert code == 0, json.dumps(result)[:3000]
    for cpu in ("cortex-a72", "cortex-a76"):
        run = result["runs"][cpu]
        assert run["platform"].startswith("aarch64 ") and run["check_exit"] == 0
        assert run["parity"]["ok"] and run["parity"]["cases"] == 25
