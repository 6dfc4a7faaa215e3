"""Power monitor against fake Jetson Orin (INA3221) and Raspberry Pi 5 (PMIC via vcgencmd) trees,
broken sensors included, and a Pi 4 that has no power sensor."""

from __future__ import annotations

import os

import pytest

from edge.board import power, report
from edge.board.sampler import Monitor, read_snapshot
from tests.kit import fake_boards as fb, fake_power as fp

BREAKS = {"missing": "missing", "garbage": "garbage", "directory": "unreadable", "loop": "unreadable"}
if os.geteuid() != 0:  # root reads chmod-000 files anyway
    BREAKS["unreadable"] = "unreadable"
MW = 1e-3  # every figure must hold to the milliwatt


def test_orin_nano_rails_in_watts_to_the_milliwatt(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    fp.set_rail(board, "VDD_IN", millivolts=5104, milliamps=1873)
    fp.set_rail(board, "VDD_CPU_GPU_CV", millivolts=5096, milliamps=641)
    reading = power.read(board.root)
    assert reading.source == "ina3221" and reading.available
    assert reading.rails_w["VDD_IN"] == pytest.approx(5.104 * 1.873, abs=MW)  # 9.560 W
    assert reading.rails_w["VDD_CPU_GPU_CV"] == pytest.approx(5.096 * 0.641, abs=MW)
    assert reading.rails_w["VDD_SOC"] == pytest.approx(5.064 * 0.456, abs=MW)
    # VDD_IN is the module's input: the total is it, never the input plus the rails inside it
    assert reading.total_w == pytest.approx(9.560, abs=MW)
    assert reading.input_v == pytest.approx(5.104)
    assert reading.sensor_errors == [] and reading.rails_found == 3


def test_agx_orin_without_an_input_rail_sums_its_rails(tmp_path):
    reading = power.read(fb.jetson_orin(tmp_path).root)
    expected = sum(mv * ma / 1e6 for mv, ma in fp.ORIN_AGX_RAILS.values())
    assert set(reading.rails_w) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"}
    assert reading.total_w == pytest.approx(expected, abs=MW) and reading.input_v is None


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_broken_input_rail_makes_the_total_unavailable(tmp_path, how):
    board = fb.jetson_orin(tmp_path, nano=True)
    board.break_file(fp.rail_file(board, "VDD_IN"), how)
    reading = power.read(board.root)
    board.restore_permissions()
    assert reading.source == "ina3221" and not reading.available and reading.total_w is None
    assert f"ina3221_{BREAKS[how]}:VDD_IN" in reading.sensor_errors
    assert "VDD_IN" not in reading.rails_w and "VDD_SOC" in reading.rails_w  # the others still read


def test_broken_sub_rail_leaves_the_input_total(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    board.break_file(fp.rail_file(board, "VDD_SOC", "in"), "garbage")
    fp.set_rail(board, "VDD_CPU_GPU_CV", milliamps=99999)  # 99.999 A: a fault, not a reading
    reading = power.read(board.root)
    assert reading.total_w == pytest.approx(6.096, abs=MW)
    assert set(reading.sensor_errors) == {"ina3221_garbage:VDD_SOC", "ina3221_out_of_range:VDD_CPU_GPU_CV"}


def test_pi5_pmic_rails_multiplied_and_summed_to_the_milliwatt(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    reading = power.read(board.root)
    assert reading.source == "pmic" and reading.available
    assert len(reading.rails_w) == len(fp.PI5_PMIC_RAILS) == reading.rails_found
    assert reading.rails_w["VDD_CORE"] == pytest.approx(2.345678 * 0.876543, abs=MW)  # 2.056 W
    assert reading.total_w == pytest.approx(fp.pmic_total_w(), abs=MW)
    assert reading.total_w == pytest.approx(3.528, abs=MW)
    assert reading.input_v == pytest.approx(5.123456)  # EXT5V_V: a voltage only, not a rail
    assert "EXT5V" not in reading.rails_w and "BATT" not in reading.rails_w
    assert reading.sensor_errors == []


def test_pi5_rail_name_matching_is_by_name_not_by_order(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    lines = fp.pmic_listing(fp.with_rail("VDD_CORE", amps=4.0, volts=0.9)).splitlines()
    fp.set_pmic(board, "\n".join(reversed(lines)) + "\n")
    reading = power.read(board.root)
    assert reading.rails_w["VDD_CORE"] == pytest.approx(3.6, abs=MW)


@pytest.mark.parametrize("line, code", [
    ("     VDD_CORE_A current(7)=banana A", "pmic_garbage:line"),
    ("     VDD_CORE_A current(7)=1e999A", "pmic_garbage:VDD_CORE_A"),  # inf
    ("     VDD_CORE_A current(7)=250.00000000A", "pmic_out_of_range:VDD_CORE_A"),
    ("     VDD_CORE_A current(7)=2.34567800V", "pmic_garbage:VDD_CORE_A"),
])
def test_pi5_garbage_rail_is_counted_and_the_total_unavailable(tmp_path, line, code):
    board = fb.raspberry_pi_5(tmp_path)
    listing = [text if not text.strip().startswith("VDD_CORE_A") else line for text in fp.pmic_listing().splitlines()]
    fp.set_pmic(board, "\n".join(listing) + "\n")
    reading = power.read(board.root)
    assert reading.source == "pmic" and reading.total_w is None
    assert any(e.startswith(code) for e in reading.sensor_errors), reading.sensor_errors
    assert "VDD_CORE" not in reading.rails_w and "HDMI" in reading.rails_w
    assert "banana" not in " ".join(reading.sensor_errors)  # unvetted text never reaches metrics


def test_pi5_rail_without_its_voltage_is_reported(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    fp.set_pmic(board, "".join(f"{x}\n" for x in fp.pmic_listing().splitlines() if "HDMI_V" not in x))
    reading = power.read(board.root)
    assert "pmic_missing_volt:HDMI" in reading.sensor_errors and reading.total_w is None


@pytest.mark.parametrize("output, rc, code", [
    ("error=1 error_msg=\"VCHI not initialized\"\n", 255, "pmic_command_failed:vcgencmd"),
    ("", 0, "pmic_garbage:listing"),
    ("\xff\xfe ohm\n", 0, "pmic_garbage:line1"),
])
def test_pi5_broken_command_is_an_unavailable_reading(tmp_path, output, rc, code):
    board = fb.raspberry_pi_5(tmp_path)
    fp.set_pmic(board, output, exit_code=rc)
    reading = power.read(board.root)
    assert reading.source == "pmic" and not reading.available and code in reading.sensor_errors


def test_pi5_without_vcgencmd_says_the_command_is_missing(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    (board.root / "usr/bin/vcgencmd").unlink()
    reading = power.read(board.root)
    assert reading.source == "pmic" and "pmic_command_missing:vcgencmd" in reading.sensor_errors


def test_pi4_has_no_power_sensor_and_says_so(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)  # its vcgencmd answers pmic_read_adc "Command not registered"
    reading = power.read(board.root)
    assert reading.source == "none" and not reading.available and reading.rails_w == {}
    assert reading.sensor_errors == [] and reading.warnings == [power.NO_SENSOR]
    checks = dict((name, (level, text)) for name, level, text in power.describe(board.root))
    assert checks["power sensor"][0] == "ok" and "no power sensor on this board" in checks["power sensor"][1]


def test_check_lists_power_and_warns_on_a_broken_sensor(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    text = {name: (level, msg) for name, level, msg in report.describe(board.root, board.throttle_command)}
    assert text["power sensor"] == ("ok", text["power sensor"][1]) and "6.096 W" in text["power sensor"][1]
    board.break_file(fp.rail_file(board, "VDD_IN"), "garbage")
    text = {name: (level, msg) for name, level, msg in report.describe(board.root, board.throttle_command)}
    assert text["power sensor"][0] == "warn" and "ina3221_garbage:VDD_IN" in text["power sensor"][1]
    assert report.exit_status(report.describe(board.root, board.throttle_command)) == 0  # a warning, not a failure


def test_snapshot_carries_power_with_its_source_and_errors(tmp_path):
    orin = fb.jetson_orin(tmp_path / "orin", nano=True)
    snap = read_snapshot(orin.monitor_config())
    assert snap.power_source == "ina3221" and snap.power_w == pytest.approx(6.096, abs=MW)
    assert snap.to_dict()["power_rails_w"]["VDD_SOC"] == pytest.approx(2.309, abs=MW)
    pi5 = fb.raspberry_pi_5(tmp_path / "pi5")
    fp.set_pmic(pi5, "garbage\n")
    with Monitor(pi5.monitor_config()) as monitor:  # a broken sensor never stops the sampler
        snap = monitor.snapshot()
        assert snap.power_source == "pmic" and snap.power_w is None
        assert "pmic_garbage:line1" in snap.sensor_errors and snap.temperatures_c  # thermal still read
    pi4 = fb.raspberry_pi_4(tmp_path / "pi4")
    snap = read_snapshot(pi4.monitor_config())
    assert snap.power_source == "none" and snap.power_w is None and "no_power_sensor" not in snap.warnings
