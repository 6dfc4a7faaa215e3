"""The device status page on a fake Raspberry Pi 4 that overheats and throttles: temperatures
with their history chart, throttle and under-voltage flags, memory and pressure, latency, the
policy's state and transitions, and the model's identity and evaluation figures."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.timeout(180)

EVALUATION = {"ktas_cv": {"accuracy": 0.612, "under_triage_rate": 0.081, "critical_recall": 0.934}}


def _bundle_with_evaluation(path):
    from edge.inference.bundle import MANIFEST, write_manifest
    from tests.kit.tiny_bundle import build_tiny_bundle

    bundle = build_tiny_bundle(path)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["evaluation"] = EVALUATION
    write_manifest(bundle, manifest)
    return bundle


def _triage(url: str, case: dict) -> dict:
    request = urllib.request.Request(url + "/v1/triage", data=json.dumps(case).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_status_page_under_a_hot_throttling_board(start_service, page_factory, tmp_path):
    from playwright.sync_api import expect

    bundle = _bundle_with_evaluation(tmp_path / "bundle")
    service = start_service(bundle=bundle, temp_c=48.0)
    for complaint in ("ankle sprain", "fever and cough", "headache"):
        _triage(service.url, {"complaint": complaint, "age": 30})

    page = page_factory("1280x800")
    page.goto(service.url + "/status")
    temps = page.locator("#temps")
    expect(temps).to_contain_text("cpu-thermal")
    expect(temps).to_contain_text("48.0 °C")
    expect(page.locator('#policy [data-key="thermal_state"]')).to_have_text("normal")
    expect(page.locator('#throttle [data-flag="throttled"]')).to_have_text("ok")
    expect(page.locator("#latency")).to_contain_text("p99")
    assert re.search(r"n\s*3", page.locator("#latency").inner_text())

    # The board heats past the Pi's hot threshold and the firmware reports throttling and
    # under-voltage, now and since boot.
    service.board.set_all_temps(82.0)
    service.board.set_throttled(0x50005)
    service.board.set_under_voltage_alarm(True)

    expect(temps).to_contain_text("82.0 °C")
    expect(page.locator(".temp-row.hot")).to_have_count(1)
    expect(page.locator('#throttle [data-flag="throttled"]')).to_have_text("now")
    expect(page.locator('#throttle [data-flag="under_voltage"]')).to_have_text("now")
    expect(page.locator("#throttle")).to_contain_text("has occurred")
    expect(page.locator('#policy [data-key="thermal_state"]')).to_have_text("hot")
    expect(page.locator("#transitions")).to_contain_text("normal")
    expect(page.locator("#transitions")).to_contain_text("hot")
    # The history chart has drawn a line through several samples, and a limit line.
    expect(page.locator("#temps svg polyline")).to_have_count(1)
    points = page.locator("#temps svg polyline").get_attribute("points").split()
    assert len(points) >= 2
    expect(page.locator("#temps svg line.spark-limit")).to_have_count(1)

    model = page.locator("#model")
    sha256 = service.state.runtime.identity()["sha256"]
    expect(model).to_contain_text("tiny-test")
    expect(model).to_contain_text(sha256)
    evaluation = page.locator("#evaluation")
    expect(evaluation).to_contain_text("ktas_cv.critical_recall")
    expect(evaluation).to_contain_text("0.934")
    expect(page.locator("#memory")).to_contain_text("Available memory")
    expect(page.locator("#memory")).to_contain_text("3100 MB")
    expect(page.locator("#memory")).to_contain_text("Memory pressure (some, 10 s)")
    screenshot(page, "status-hot")
    assert page.js_errors == []


def test_status_page_shows_board_power_with_its_history(start_service, page_factory):
    from playwright.sync_api import expect

    from tests.kit.fake_boards import jetson_orin
    from tests.kit.fake_power import set_rail

    service = start_service(make_board=lambda root, temp_c: jetson_orin(root, temp_c=temp_c, nano=True))
    page = page_factory("1280x800")
    page.goto(service.url + "/status")
    board_power = page.locator("#power")
    expect(board_power.locator('[data-power="total"]')).to_have_text("6.10 W")
    expect(board_power).to_contain_text("ina3221")
    expect(board_power).to_contain_text("VDD_SOC")
    set_rail(service.board, "VDD_IN", milliamps=2000)  # 10.16 W under load
    expect(board_power.locator('[data-power="total"]')).to_have_text("10.16 W")
    expect(board_power.locator("svg polyline")).to_have_count(1)  # the history has two samples or more
    assert page.js_errors == []


def test_status_page_says_when_a_board_has_no_power_sensor(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service()  # a Raspberry Pi 4
    page = page_factory("1280x800")
    page.goto(service.url + "/status")
    expect(page.locator("#power")).to_contain_text("No power sensor on this board.")
    assert page.js_errors == []
