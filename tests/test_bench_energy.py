"""bench/energy.py on fake boards: the measured path (idle, then loaded board power from the fake
Orin's INA3221 and the fake Pi 5's PMIC) and the labelled estimate where there is no sensor."""

from __future__ import annotations

import time

import pytest

from bench import energy
from bench.energy_only import _pmic_follows_load
from tests.kit import fake_boards as fb, fake_power as fp


def busy_loop(seconds: float = 1.0, inferences: int = 100) -> int:
    """Stands in for the triage loop: keeps one core busy for ``seconds``, 'answers' ``inferences``."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(i * i for i in range(2000))
    return inferences


def test_fake_orin_measures_loaded_minus_idle_from_its_input_rail(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    with fp.follow_cpu_load(board, "VDD_IN", watts_per_busy_core=2.0):
        result = energy.measure(busy_loop, root=str(board.root), idle_s=0.5)
    assert result["method"] == "board_power_sensor" and result["source"] == "ina3221"
    assert result["idle_w"] == pytest.approx(6.096, abs=0.3)  # VDD_IN at idle, plus the sampler's own bit
    assert result["loaded_w"] > result["idle_w"] + 0.3  # up to one busy core at 2 W (less on a shared machine)
    # The fake draws 2 W per CPU-second per wall second; the loop spends 1 CPU-second on 100
    # "inferences": 0.02 J each, whatever the wall time was — the measurement must find that.
    assert result["joules_per_inference"] == pytest.approx(2.0 * 1.0 / 100, rel=0.4)
    assert result["joules_per_inference"] == pytest.approx(
        (result["loaded_w"] - result["idle_w"]) * result["seconds"] / 100, rel=0.01)
    assert result["samples"]["idle"] >= 3 and result["samples"]["loaded"] >= 3


def test_fake_pi5_measures_from_its_pmic_listing(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    with _pmic_follows_load(board):
        result = energy.measure(busy_loop, root=str(board.root), idle_s=0.6)
    assert result["method"] == "board_power_sensor" and result["source"] == "pmic"
    assert result["idle_w"] == pytest.approx(fp.pmic_total_w(), abs=0.5)
    assert result["loaded_w"] > result["idle_w"] and result["joules_per_inference"] > 0


def test_pi4_without_a_sensor_gets_the_labelled_estimate(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    result = energy.measure(lambda: busy_loop(0.2, 10), root=str(board.root))
    assert result["method"] == "estimate" and result["board"] == "raspberry-pi-4"
    assert "no board power sensor" in result["detail"] and "not measured here" in result["assumptions"]
    assert result["joules_per_inference"] == pytest.approx(result["cpu_seconds_per_inference"] * 0.95, rel=0.01)


def test_broken_sensor_falls_back_to_the_estimate_and_says_why(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    board.break_file(fp.rail_file(board, "VDD_IN"), "garbage")
    result = energy.measure(lambda: busy_loop(0.2, 10), root=str(board.root))
    assert result["method"] == "estimate" and "ina3221_garbage:VDD_IN" in result["detail"]
