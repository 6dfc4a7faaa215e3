"""Shared fixtures: a real tiny ONNX bundle (built once per session) and the data paths."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
KTAS_CSV = SHARED_DATA / "ktas-moon2019" / "data.csv"
SHIPPED_BUNDLE = REPO / "models" / "triage-minilm-int8"


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.kit.tiny_bundle import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture(scope="session")
def ktas_csv() -> Path:
    if not KTAS_CSV.is_file():
        pytest.skip(f"KTAS data not found at {KTAS_CSV}: the shared data folder is absent on this machine")
    return KTAS_CSV
