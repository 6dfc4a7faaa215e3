"""NHAMCS 2016-2020 for the build: one parsed data set per survey year, cached on disk.

The SAS files take seconds each to parse; the parsed cases are cached by the files' sha256 and
the reader's source, so a rebuild reads them once. Years are kept apart: the honest protocol
trains on 2016-2018, chooses settings on 2019, reports 2020 once (``export.esi_protocol``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.clinical.datasets import Dataset, LabelledCase
from edge.clinical.datasets import nhamcs

NHAMCS_DIR = "nhamcs-ed-2016-2020"
YEARS = (2016, 2017, 2018, 2019, 2020)


def labels_path(root: Path) -> Path:
    return root / NHAMCS_DIR / "rfv_labels.json"


def available(root: Path) -> bool:
    return labels_path(root).is_file() and all((root / NHAMCS_DIR / f"ed{y}_sas.zip").is_file() for y in YEARS)


def load_years(root: Path, years: tuple[int, ...] = YEARS) -> dict[int, Dataset]:
    from export.encoders import cache_dir

    labels = {str(k): str(v) for k, v in json.loads(labels_path(root).read_text(encoding="utf-8")).items()}
    out = {}
    reader = hashlib.sha256(Path(nhamcs.__file__).read_bytes()).hexdigest()[:12]
    for year in years:
        path = root / NHAMCS_DIR / f"ed{year}_sas.zip"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        cached = cache_dir() / f"nhamcs-{year}-{digest}-{reader}.pkl"
        if cached.is_file():
            out[year] = pickle.loads(cached.read_bytes())
            continue
        dataset = nhamcs.load(path, labels)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps(dataset))
        out[year] = dataset
    return out


@dataclass
class Rows:
    """Visits of some years as arrays for training and scoring."""

    cases: list[LabelledCase]

    @property
    def texts(self) -> list[str]:
        return [c.case.complaint for c in self.cases]

    @property
    def levels(self) -> np.ndarray:
        return np.asarray([c.truth for c in self.cases], dtype=np.int64)

    @property
    def outcome(self) -> np.ndarray:
        return np.asarray([1 if c.critical_outcome else 0 for c in self.cases], dtype=np.int64)

    @property
    def admitted(self) -> np.ndarray:
        return np.asarray([bool(c.admitted) for c in self.cases])


def rows(years: dict[int, Dataset], which: tuple[int, ...]) -> Rows:
    return Rows([c for y in which for c in years[y].cases])
