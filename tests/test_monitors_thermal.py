"""Thermal monitor against fake Raspberry Pi 4/5 and Jetson Orin sysfs trees, broken sensors included."""

from __future__ import annotations

import os

import pytest

from edge.board import thermal
from edge.board.thermal import ZoneLimits
from tests.kit import fake_boards as fb

# break mode -> the error code the monitor must report
BREAKS = {"missing": "missing", "garbage": "garbage", "directory": "unreadable", "loop": "unreadable"}
if os.geteuid() != 0:  # root reads chmod-000 files anyway
    BREAKS["unreadable"] = "unreadable"


def read(board: fb.FakeBoard) -> thermal.ThermalReading:
    return thermal.read(board.root, board.throttle_command)


def test_pi4_layout_reads_zone_once_and_throttle_bits(tmp_path):
    board = fb.raspberry_pi_4(tmp_path, temp_c=61.3)
    reading = read(board)
    # the cpu_thermal hwmon mirrors the zone: counted once
    assert reading.temperatures_c == {"cpu-thermal": 61.3}
    assert reading.zone_limits == {"cpu-thermal": ZoneLimits(passive_c=None, critical_c=110.0)}
    assert reading.zone_kinds["cpu-thermal"] == "cpu"
    assert reading.throttle_raw == 0 and not any(reading.throttle.values())
    assert reading.cpu_freq_ratio == pytest.approx(1500000 / 1800000, abs=1e-3)
    assert reading.sensor_errors == [] and reading.warnings == []


def test_pi_throttle_bits_decoded(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    board.set_throttled(0x50005)  # under-voltage + throttled now, both also "occurred"
    flags = read(board).throttle
    assert flags["under_voltage"] and flags["throttled"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert not flags["freq_capped"] and not flags["soft_temp_limit"] and not flags["freq_capped_occurred"]
    board.set_throttled(0x8)
    assert read(board).throttle["soft_temp_limit"]


@pytest.mark.parametrize("output, rc, code", [
    ("throttled=banana\n", 0, "throttle_garbage:vcgencmd"),
    ("", 0, "throttle_garbage:vcgencmd"),
    ("error=1 error_msg=\"VCHI not initialized\"\n", 255, "throttle_command_failed:vcgencmd"),
])
def test_pi_throttle_command_broken_is_reported_not_raised(tmp_path, output, rc, code):
    board = fb.raspberry_pi_4(tmp_path)
    board.set_throttled(0, output=output, exit_code=rc)
    reading = read(board)
    assert code in reading.sensor_errors
    assert reading.throttle_raw is None
    assert "throttle_bits_unknown" in reading.warnings


def test_pi_without_vcgencmd_has_unknown_bits_but_volt_alarm(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    board.set_under_voltage_alarm(True)
    reading = thermal.read(board.root, ("/nonexistent/vcgencmd", "get_throttled"))
    assert reading.throttle == {"under_voltage": True}
    assert "throttle_bits_unknown" in reading.warnings
    checks = dict((name, (level, msg)) for name, level, msg in thermal.describe(board.root, None))
    assert checks["throttle bits"][0] == "warn"


def test_pi5_fan_trips_are_not_limits_and_rp1_is_read(tmp_path):
    board = fb.raspberry_pi_5(tmp_path, temp_c=68.0)
    reading = read(board)
    assert reading.zone_limits["cpu-thermal"] == ZoneLimits(passive_c=None, critical_c=110.0)
    assert reading.temperatures_c == {"cpu-thermal": 68.0, "rp1_adc/temp1": 45.0}


def test_jetson_orin_zones_and_trip_limits(tmp_path):
    board = fb.jetson_orin(tmp_path, temp_c=55.0)
    board.set_temp("GPU-therm", 71.5)
    reading = read(board)
    assert set(reading.temperatures_c) == set(fb.JETSON_ORIN_ZONES)
    assert reading.temperatures_c["GPU-therm"] == 71.5
    assert all(limits == ZoneLimits(99.0, 104.5) for limits in reading.zone_limits.values())
    assert reading.zone_kinds["tj-therm"] == "junction" and reading.zone_kinds["SOC1-therm"] == "soc"
    assert reading.throttle == {}  # no vcgencmd on a Jetson: unknown, and no warning
    assert reading.warnings == []


def test_jetson_orin_nano_absent_clusters_are_out_of_range(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    reading = read(board)
    assert sorted(e for e in reading.sensor_errors) == [f"zone_out_of_range:CV{i}-therm" for i in range(3)]
    assert "CV0-therm" not in reading.temperatures_c and "CPU-therm" in reading.temperatures_c


@pytest.mark.parametrize("how, code", sorted(BREAKS.items()))
def test_broken_zone_is_reported_and_ignored(tmp_path, how, code):
    board = fb.jetson_orin(tmp_path, temp_c=60.0)
    board.break_sensor("GPU-therm", how)
    reading = read(board)
    assert f"zone_{code}:GPU-therm" in reading.sensor_errors
    assert "GPU-therm" not in reading.temperatures_c
    assert len(reading.temperatures_c) == len(fb.JETSON_ORIN_ZONES) - 1
    board.restore_permissions()


@pytest.mark.parametrize("text, code", [
    ("hot\n", "zone_garbage"), ("\n", "zone_garbage"), ("45.5\n", "zone_garbage"),
    ("-5000\n", "zone_out_of_range"), ("0\n", "zone_out_of_range"), ("999999\n", "zone_out_of_range"),
    ("1" * 5000, "zone_garbage"),
])
def test_garbage_and_absurd_values(tmp_path, text, code):
    board = fb.raspberry_pi_4(tmp_path)
    board.zone_file("cpu-thermal").write_text(text)
    reading = read(board)
    assert reading.sensor_errors == [f"{code}:cpu-thermal"]
    assert reading.temperatures_c == {}
    assert "all_temperature_sensors_broken" in reading.warnings


def test_missing_zone_type_falls_back_to_directory_name(tmp_path):
    board = fb.raspberry_pi_4(tmp_path, temp_c=50.0)
    board.break_sensor("cpu-thermal", "missing", file_name="type")
    reading = read(board)
    assert reading.temperatures_c["thermal_zone0"] == 50.0
    assert reading.sensor_errors == ["zone_type_missing:thermal_zone0"]


def test_broken_trip_point_keeps_other_limits(tmp_path):
    board = fb.jetson_orin(tmp_path)
    board.break_sensor("CPU-therm", "garbage", file_name="trip_point_1_temp")
    reading = read(board)
    assert "trip_garbage:CPU-therm/trip_point_1" in reading.sensor_errors
    assert reading.zone_limits["CPU-therm"] == ZoneLimits(passive_c=None, critical_c=104.5)


def test_all_sensors_broken_fails_check(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    board.break_sensor("cpu-thermal", "directory")
    board.break_file(board.hwmon_file("rp1_adc", "temp1_input"), "garbage")
    reading = read(board)
    assert reading.temperatures_c == {} and reading.temp_sensors_found == 2
    assert "hwmon_garbage:rp1_adc/temp1" in reading.sensor_errors
    checks = {name: level for name, level, _ in thermal.describe(board.root, board.throttle_command)}
    assert checks["thermal sensors"] == "fail" and checks["sensor errors"] == "warn"


def test_board_without_sensors_warns(tmp_path):
    reading = thermal.read(tmp_path, None)
    assert reading.temp_sensors_found == 0 and reading.warnings == ["no_temperature_sensors"]
    assert thermal.describe(tmp_path, None)[0][:2] == ("thermal sensors", "warn")


def test_cpu_frequency_cap_and_broken_cpufreq(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    board.set_cpu_freq(900000, scaling_max_khz=1200000)
    reading = read(board)
    assert reading.cpu_freq_ratio == pytest.approx(0.5)
    assert reading.cpu_freq_cap_ratio == pytest.approx(1200000 / 1800000, abs=1e-3)
    board.break_file(board.root / "sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "garbage")
    reading = read(board)
    assert reading.cpu_freq_ratio is None and "cpufreq_garbage:cpu0" in reading.sensor_errors


def test_describe_healthy_pi4(tmp_path):
    board = fb.raspberry_pi_4(tmp_path, temp_c=55.0)
    board.set_throttled(0x50000)
    checks = {name: (level, msg) for name, level, msg in thermal.describe(board.root, board.throttle_command)}
    assert checks["thermal sensors"] == ("ok", "1 readable; hottest cpu-thermal 55.0 °C")
    assert checks["throttle bits"][0] == "ok" and "under_voltage_occurred" in checks["throttle bits"][1]
    board.set_throttled(0x4)
    checks = {name: level for name, level, _ in thermal.describe(board.root, board.throttle_command)}
    assert checks["throttle bits"] == "warn"


def test_parse_throttled():
    assert thermal.parse_throttled("throttled=0x0") == 0
    assert thermal.parse_throttled("throttled=0xe0000\n") == 0xE0000
    assert thermal.parse_throttled("throttled=0xZZ") is None
    assert thermal.parse_throttled("temp=45.0'C") is None


def test_default_command_name_is_found_inside_a_fake_root_only(tmp_path):
    board = fb.raspberry_pi_4(tmp_path / "pi")
    board.set_throttled(0x4)
    # the plain name resolves to the fake board's own /usr/bin/vcgencmd, not the host's PATH
    assert thermal.read(board.root, thermal.DEFAULT_THROTTLE_COMMAND).throttle["throttled"]
    assert thermal.resolve_command(tmp_path / "empty", ("vcgencmd", "get_throttled")) is None


def test_board_model_from_device_tree(tmp_path):
    assert read(fb.raspberry_pi_5(tmp_path / "pi5")).board_model == "Raspberry Pi 5 Model B Rev 1.0"
    orin = fb.jetson_orin(tmp_path / "orin", upstream_kernel=True)
    reading = read(orin)
    assert reading.board_model == "NVIDIA Jetson AGX Orin Developer Kit"
    # a mainline Jetson's "cpu-thermal" is not a Pi: no vcgencmd warning
    assert "throttle_bits_unknown" not in reading.warnings
    assert thermal.read(tmp_path / "nothing", None).board_model is None


def test_jetson_mainline_names_and_fan_trips(tmp_path):
    board = fb.jetson_orin(tmp_path, upstream_kernel=True, temp_c=60.0)
    reading = read(board)
    assert set(reading.temperatures_c) == set(fb.JETSON_ORIN_UPSTREAM_ZONES)
    assert reading.zone_kinds["tj-thermal"] == "junction" and reading.zone_kinds["gpu-thermal"] == "gpu"
    assert reading.zone_limits == {}  # fan (active) trips are not limits
