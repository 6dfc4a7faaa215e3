"""Bundles are a trust boundary: every path a manifest names stays inside the bundle directory,
is listed in ``files`` by that very path, and is hashed where it is loaded from. Each way out is
refused by ``verify``, by ``edge-triage check`` and by a live reload (the old bundle keeps serving)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from edge.inference.bundle import sha256_file, verify
from edge.cli import main as cli_main
from edge.errors import BundleError
from tests.servicekit import make_config, serving


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _write(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def parent_model(bundle: Path) -> None:
    """The issue's case: model_file names a graph outside, whose base name is listed."""
    elsewhere = bundle.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(bundle / "model.onnx", elsewhere / "model.onnx")
    _write(bundle, {**_manifest(bundle), "model_file": "../elsewhere/model.onnx"})


def absolute_tokenizer(bundle: Path) -> None:
    _write(bundle, {**_manifest(bundle), "tokenizer_file": str((bundle / "tokenizer.json").resolve())})


def files_key_escapes(bundle: Path) -> None:
    manifest = _manifest(bundle)
    outside = bundle.parent / "outside.bin"
    outside.write_bytes(b"x")
    manifest["files"]["../outside.bin"] = sha256_file(outside)
    _write(bundle, manifest)


def symlink_out(bundle: Path) -> None:
    """model.onnx is a link to a graph outside the bundle (same bytes, so the hash alone passes)."""
    real = bundle.parent / "real-model.onnx"
    shutil.move(bundle / "model.onnx", real)
    os.symlink(real, bundle / "model.onnx")


def symlinked_directory(bundle: Path) -> None:
    other = bundle.parent / "otherdir"
    other.mkdir(exist_ok=True)
    shutil.copy(bundle / "model.onnx", other / "model.onnx")
    os.symlink(other, bundle / "sub")
    manifest = _manifest(bundle)
    manifest["files"]["sub/model.onnx"] = sha256_file(other / "model.onnx")
    _write(bundle, {**manifest, "model_file": "sub/model.onnx"})


def unlisted_by_path(bundle: Path) -> None:
    """sub/model.onnx is loaded but only the top-level model.onnx is listed (the base-name lookup)."""
    (bundle / "sub").mkdir()
    (bundle / "sub" / "model.onnx").write_bytes(b"another graph")
    _write(bundle, {**_manifest(bundle), "model_file": "sub/model.onnx"})


def dot_segments(bundle: Path) -> None:
    _write(bundle, {**_manifest(bundle), "model_file": "./model.onnx"})


def not_a_string(bundle: Path) -> None:
    _write(bundle, {**_manifest(bundle), "model_file": ["model.onnx"]})


WAYS_OUT: list[tuple[Callable[[Path], None], str, str]] = [
    (parent_model, "bundle_path_outside", "model_file"),
    (absolute_tokenizer, "bundle_path_absolute", "tokenizer_file"),
    (files_key_escapes, "bundle_path_outside", "files"),
    (symlink_out, "bundle_path_symlink", "files"),
    (symlinked_directory, "bundle_path_symlink", "files"),
    (unlisted_by_path, "bundle_path_unlisted", "model_file"),
    (dot_segments, "bundle_path_outside", "model_file"),
    (not_a_string, "bundle_path_invalid", "model_file"),
]
IDS = [way.__name__ for way, _, _ in WAYS_OUT]


@pytest.fixture
def bad_bundle(tiny_bundle: Path, tmp_path: Path) -> Callable[[Callable[[Path], None]], Path]:
    def make(way: Callable[[Path], None]) -> Path:
        bundle = tmp_path / "bundle"
        shutil.copytree(tiny_bundle, bundle)
        way(bundle)
        return bundle
    return make


@pytest.mark.parametrize("way, code, field", WAYS_OUT, ids=IDS)
def test_verify_refuses_each_way_out_naming_the_field(bad_bundle, way, code: str, field: str) -> None:
    with pytest.raises(BundleError) as info:
        verify(bad_bundle(way))
    assert info.value.code == code
    assert field in info.value.message and field in str(info.value.field)


def test_a_listed_file_in_a_subdirectory_is_fine(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "graphs").mkdir()
    shutil.move(bundle / "model.onnx", bundle / "graphs" / "model.onnx")
    manifest = _manifest(bundle)
    manifest["files"] = {"graphs/model.onnx": manifest["files"].pop("model.onnx"), **manifest["files"]}
    _write(bundle, {**manifest, "model_file": "graphs/model.onnx"})
    loaded = verify(bundle)
    assert loaded.model_file == bundle.resolve() / "graphs" / "model.onnx"
    assert loaded.sha256 == sha256_file(bundle / "graphs" / "model.onnx")


@pytest.mark.parametrize("way, code, field", WAYS_OUT, ids=IDS)
def test_check_command_refuses_each_way_out(bad_bundle, capsys, monkeypatch, tmp_path, way, code, field) -> None:
    monkeypatch.setenv("EDGE_TRIAGE_AUDIT_DB", str(tmp_path / "none" / "a.sqlite3"))
    status = cli_main(["check", "--model", str(bad_bundle(way)), "--json"])
    out = capsys.readouterr().out
    assert status == 1 and code in out


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("paths")
    token = tmp / "token"
    token.write_text("t" * 40)
    os.chmod(token, 0o600)
    with serving(make_config(tmp, tiny_bundle, token_file=str(token))) as (client, _):
        yield client


@pytest.mark.parametrize("way, code, field", WAYS_OUT, ids=IDS)
def test_reload_refuses_each_way_out_and_keeps_serving(served, bad_bundle, way, code: str, field: str) -> None:
    auth = {"Authorization": "Bearer " + "t" * 40}
    before = served.get("/info").json["model"]["sha256"]
    reply = served.post("/v1/admin/reload", {"model_dir": str(bad_bundle(way))}, headers=auth)
    assert reply.status == 422 and reply.json["error"]["code"] == code
    assert reply.json["error"]["details"]["serving"]["sha256"] == before
    assert served.post("/v1/triage", {"complaint": "cough"}).json["model"]["sha256"] == before
