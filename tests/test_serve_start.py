"""``edge-triage serve`` start-up: the bundle loads on its own thread while the web stack imports
(edge.cli.serve.BackgroundLoad); whatever the load raises still reaches the operator as a code
and a message, and the process exits 2 instead of serving."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli.serve import BackgroundLoad
from edge.errors import BundleError
from edge.inference.runtime import ModelRuntime
from edge.service.config import ServiceConfig

REPO = Path(__file__).resolve().parents[1]


def _serve(tmp_path: Path, model: Path) -> subprocess.CompletedProcess:
    args = ["--model", str(model), "--port", "0", "--config", str(_config(tmp_path))]
    return subprocess.run([sys.executable, "-m", "edge.cli", "serve", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "serve.toml"
    config.write_text(f'audit_db = "{tmp_path / "audit.sqlite3"}"\naudit_key_file = "{tmp_path / "audit.key"}"\n')
    return config


def test_background_load_returns_a_warmed_runtime(tiny_bundle: Path) -> None:
    runtime = BackgroundLoad(ServiceConfig(model_dir=str(tiny_bundle))).result()
    assert isinstance(runtime, ModelRuntime) and runtime.warmed
    assert runtime.bundle_path == tiny_bundle


def test_background_load_raises_the_load_error_on_the_caller(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as raised:
        BackgroundLoad(ServiceConfig(model_dir=str(tmp_path / "missing"))).result()
    assert raised.value.code == "bundle_not_found"


def test_serve_with_a_missing_bundle_exits_2_with_its_code(tmp_path: Path) -> None:
    done = _serve(tmp_path, tmp_path / "missing")
    assert done.returncode == 2 and "edge-triage serve: bundle_not_found:" in done.stderr


def test_serve_with_a_tampered_bundle_exits_2_with_its_code(tiny_bundle: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, tampered)
    with (tampered / "model.onnx").open("ab") as graph:
        graph.write(b"\0")
    done = _serve(tmp_path, tampered)
    assert done.returncode == 2 and "edge-triage serve: hash_mismatch:" in done.stderr
    assert not (tmp_path / "audit.sqlite3").exists()  # refused before anything was opened
