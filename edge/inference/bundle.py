"""Model bundle (docs/design.md, "Bundle manifest"): a directory with ``model.onnx``, ``tokenizer.json`` and
``manifest.json``. Loading verifies every file's sha256 and the feature encoding before
anything is served, and says exactly what is wrong when it refuses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edge.errors import BundleError
from edge.clinical.features import FEATURE_NAMES, FEATURE_VERSION

MANIFEST = "manifest.json"
SCHEMA = "edge-triage-bundle/1"
PATH_FIELDS = {"model_file": "model.onnx", "tokenizer_file": "tokenizer.json"}  # field -> default
KNOWLEDGE_FILES = ("abbreviations_file", "rfv_labels_file")  # knowledge.<key>: files the runtime reads
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

    def relative(self, field: str) -> str:
        """The bundle-relative path the manifest names in ``field`` (``verify`` checked it)."""
        return str(self.manifest.get(field, PATH_FIELDS[field]))

    @property
    def model_file(self) -> Path:
        return self.path / self.relative("model_file")

    @property
    def tokenizer_file(self) -> Path:
        return self.path / self.relative("tokenizer_file")

    @property
    def sha256(self) -> str:
        """The model graph's sha256: what identifies the answers' source in results and audit.

        Looked up by the very relative path that is loaded, never by base name: a manifest naming
        ``sub/model.onnx`` must not borrow the hash of a top-level ``model.onnx``."""
        return str(self.manifest["files"][self.relative("model_file")])

    def knowledge_file(self, key: str) -> Path | None:
        """A knowledge file the manifest names (``knowledge.<key>``), verified like the graph; None
        when the bundle has none."""
        name = (self.manifest.get("knowledge") or {}).get(key)
        return None if name is None else self.path / name

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


def inside(root: Path, name: Any, field: str) -> Path:
    """``root / name`` when ``name`` is a plain relative path that stays inside ``root`` (itself
    resolved), else :class:`BundleError` naming the manifest field.

    A bundle is a trust boundary: a manifest that could point outside its directory (``..``, an
    absolute path, a symlink anywhere on the way) would let a verified hash vouch for other bytes.
    """
    shown = repr(name)[:80]
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BundleError("bundle_path_invalid", f"manifest {field} must be a non-empty relative path string.",
                          field=field)
    pure = PurePosixPath(name)
    if pure.is_absolute() or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise BundleError("bundle_path_absolute", f"manifest {field} {shown} is absolute; name files relative to "
                          "the bundle directory.", field=field)
    if any(part in ("..", ".") for part in name.split("/")) or "" in name.split("/"):
        raise BundleError("bundle_path_outside", f"manifest {field} {shown} must be a normalized path inside the "
                          "bundle directory (no '..', '.', or empty parts).", field=field)
    candidate = root.joinpath(*pure.parts)
    # Refuse symlinks anywhere below the bundle root, even ones pointing inside: resolve() must
    # not move the path, so what was hashed is what the loader opens.
    for depth in range(1, len(pure.parts) + 1):
        if root.joinpath(*pure.parts[:depth]).is_symlink():
            raise BundleError("bundle_path_symlink", f"manifest {field} {shown} goes through a symbolic link; "
                              "copy the real file into the bundle directory.", field=field)
    if candidate.resolve() != candidate:
        raise BundleError("bundle_path_outside", f"manifest {field} {shown} resolves outside the bundle directory.",
                          field=field)
    return candidate


def verify(path: str | Path) -> Bundle:
    """Load and verify a bundle or raise :class:`BundleError` saying what is wrong."""
    path = Path(path).resolve()
    manifest = read_manifest(path)
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise BundleError("manifest_invalid", "manifest 'files' must map every bundle file to its sha256.")
    for name, expected in files.items():
        file_path = inside(path, name, f"'files' entry {str(name)[:80]!r}")
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
    for field in PATH_FIELDS:
        relative = manifest.get(field, PATH_FIELDS[field])
        inside(path, relative, f"'{field}'")
        if relative not in files:  # by the same relative path: no base-name lookup
            raise BundleError("bundle_path_unlisted", f"manifest '{field}' {str(relative)[:80]!r} is not listed in "
                              "'files' by that path, so its sha256 is unverified; rebuild the bundle.", field=field)
    knowledge = manifest.get("knowledge") or {}
    if not isinstance(knowledge, dict):
        raise BundleError("manifest_invalid", "manifest 'knowledge' must be an object.", field="knowledge")
    for key in KNOWLEDGE_FILES:
        if key in knowledge:
            inside(path, knowledge[key], f"'knowledge.{key}'")
            if knowledge[key] not in files:
                raise BundleError("bundle_path_unlisted", f"manifest 'knowledge.{key}' is not listed in 'files' by "
                                  "that path, so its sha256 is unverified; rebuild the bundle.", field=f"knowledge.{key}")
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
