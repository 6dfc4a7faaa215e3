"""The status page speaks to people: warnings in words, and a short model card with figures and
the data they were measured on, from a real service on a fake board with no temperature sensor."""

from __future__ import annotations

import json
from pathlib import Path

from tests.kit.fake_boards import FakeBoard
from edge.web.words import WARNING_WORDS, model_card, warning_in_words
from tests.conftest import SHIPPED_BUNDLE
from tests.servicekit import make_config, serving


def test_every_warning_code_the_monitors_raise_has_words() -> None:
    from edge.board import memory, thermal

    codes = set(thermal.WARNING_TEXT) | {memory.MEMORY_CONTROLLER_MISSING, memory.MEMORY_LIMIT_UNSET,
                                         memory.PSI_UNAVAILABLE, memory.CGROUP_V2_UNAVAILABLE}
    assert codes <= set(WARNING_WORDS)
    assert all("_" not in warning_in_words(code).split("—")[0] for code in codes)
    assert warning_in_words("new_code") == "Board monitor warning: new code."


def test_the_model_card_names_figures_and_their_data() -> None:
    card = model_card(json.loads((SHIPPED_BUNDLE / "manifest.json").read_text()))
    manifest = json.loads((SHIPPED_BUNDLE / "manifest.json").read_text())
    scales = ", ".join(manifest.get("scales") or {"ktas": None}).upper()
    assert (card["name"], card["scale"]) == ("triage-minilm-int8", scales)
    first = card["figures"][0]
    assert first["label"] == "Accuracy" and first["value"].endswith("%") and "1014 cases" in first["data"]
    if "esi" in (manifest.get("scales") or {}):  # each scale's figures name the data they come from
        esi = [f for f in card["figures"] if f["label"].startswith("ESI: ")]
        assert esi and all("NHAMCS" in f["data"] for f in esi)


def test_the_status_api_carries_words_and_the_card(tiny_bundle: Path, tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "board")  # memory files only: no thermal zone at all
    config = make_config(tmp_path, tiny_bundle, monitor_root=str(board.root), monitor_interval_s=0.05)
    with serving(config, monitor=None) as (client, _):
        data = client.get("/status/api").json
    data = data.get("data", data)
    assert "no_temperature_sensors" in data["warnings"]
    assert WARNING_WORDS["no_temperature_sensors"] in data["warnings_text"]
    assert data["model"]["card"]["name"] == "tiny-test" and "quantization" not in data["model"]["card"]


def test_a_bundle_without_the_cv_table_shows_its_recorded_figures() -> None:
    card = model_card({"name": "x", "version": "1", "evaluation": {"ktas_cv": {"critical_recall": 0.934}}})
    assert card["figures"] == [{"label": "ktas_cv.critical_recall", "value": "0.934", "data": "as recorded in the bundle"}]
