"""Model bundle (DESIGN.md): a directory with ``model.onnx``, ``tokenizer.json`` and
``manifest.json``. Loading verifies every file's sha256 and the feature encoding before
anything is served, and says exactly what is wrong when it refuses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BundleError
from edge.features import FEATURE_NAMES, FEATURE_VERSION

MANIFEST = "manifest.json"
SCHEMA = "edge-triage-bundle/1"
REQUIRED_KEYS = (
    "schema", "name", "version", "created", "base_model", "labels", "max_seq_len", "inputs",
    "output", "features", "calibration", "decision", "files", "quantization", "target",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its directory and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def model_file(self) -> Path:
        return self.path / self.manifest.get("model_file", "model.onnx")

    @property
    def tokenizer_file(self) -> Path:
        return self.path / self.manifest.get("tokenizer_file", "tokenizer.json")

    @property
    def sha256(self) -> str:
        """The model graph's sha256: what identifies the answers' source in results and audit."""
        return str(self.manifest["files"][self.model_file.name])

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise BundleError("bundle_not_found", f"Model bundle directory {path} does not exist; pass --model DIR.")
    if not manifest_path.is_file():
        raise BundleError("manifest_missing", f"{manifest_path} is missing; rebuild the bundle with `edge-export build`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError("manifest_unreadable", f"{manifest_path} is not valid JSON ({error}).") from error
    if not isinstance(manifest, dict):
        raise BundleError("manifest_invalid", f"{manifest_path} must hold a JSON object.")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError("manifest_incomplete", f"{manifest_path} lacks {', '.join(missing)}; rebuild the bundle.")
    if manifest["schema"] != SCHEMA:
        raise BundleError("schema_unsupported", f"Bundle schema {manifest['schema']!r} is not {SCHEMA!r}; use a matching runtime.")
    return manifest


def verify(path: str | Path) -> Bundle:
    """Load and verify a bundle or raise :class:`BundleError` saying what is wrong."""
    path = Path(path).resolve()
    manifest = read_manifest(path)
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise BundleError("manifest_invalid", "manifest 'files' must map every bundle file to its sha256.")
    for name, expected in files.items():
        file_path = path / name
        if Path(name).name != name:
            raise BundleError("manifest_invalid", f"Bundle file name {name!r} must not contain a directory.")
        if not file_path.is_file():
            raise BundleError("file_missing", f"Bundle file {name} is listed in the manifest but missing from {path}.")
        actual = sha256_file(file_path)
        if actual != expected:
            raise BundleError(
                "hash_mismatch",
                f"Bundle file {name} does not match its manifest sha256 (expected {expected[:12]}…, found "
                f"{actual[:12]}…): the bundle is corrupt or was modified; reinstall it.",
            )
    bundle = Bundle(path, manifest)
    for required in (bundle.model_file.name, bundle.tokenizer_file.name):
        if required not in files:
            raise BundleError("manifest_invalid", f"manifest 'files' must list {required}.")
    spec = manifest["features"]
    if spec.get("version") != FEATURE_VERSION or tuple(spec.get("names", ())) != FEATURE_NAMES:
        raise BundleError(
            "feature_mismatch",
            f"Bundle encodes structured features as {spec.get('version')!r}, this runtime as "
            f"{FEATURE_VERSION!r}; install a bundle built for this runtime version.",
        )
    if manifest["labels"] != [1, 2, 3, 4, 5]:
        raise BundleError("manifest_invalid", "manifest 'labels' must be [1, 2, 3, 4, 5].")
    return bundle


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Fill in the sha256 of every file already listed (or present) and write the manifest."""
    names = sorted(set(manifest.get("files", {})) | {p.name for p in path.iterdir() if p.is_file() and p.name != MANIFEST})
    manifest["files"] = {name: sha256_file(path / name) for name in names if (path / name).is_file()}
    manifest.setdefault("schema", SCHEMA)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
