"""Memory monitor: cgroup v2, PSI and meminfo from fake board trees; warnings for missing limits/PSI."""

from __future__ import annotations

import pytest

from edge.board import memory
from tests.kit import fake_boards as fb


def test_reads_cgroup_psi_and_meminfo(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    board.set_cgroup(current_mb=300, max_mb=512, high_mb=400, events={"high": 3, "oom_kill": 1})
    board.set_psi("memory", some_avg10=12.5, full_avg10=4.25, some_avg60=3.0)
    board.set_meminfo(total_mb=3794, available_mb=900)
    reading = memory.read(board.root)
    assert reading.cgroup_path == fb.CGROUP_PATH
    assert reading.cgroup_current_mb == pytest.approx(300)
    assert reading.cgroup_max_mb == pytest.approx(512)
    assert reading.cgroup_high_mb == pytest.approx(400)
    assert reading.cgroup_events["high"] == 3 and reading.cgroup_events["oom_kill"] == 1
    assert reading.psi["memory.some.avg10"] == 12.5 and reading.psi["memory.full.avg10"] == 4.25
    assert reading.psi["memory.some.avg60"] == 3.0 and "cpu.some.avg10" in reading.psi
    assert reading.mem_total_mb == pytest.approx(3794) and reading.mem_available_mb == pytest.approx(900)
    assert reading.rss_mb and reading.rss_mb > 1
    assert reading.warnings == [] and reading.sensor_errors == []


def test_no_memory_controller_warns(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    board.remove_memory_controller()
    reading = memory.read(board.root)
    assert reading.warnings == [memory.MEMORY_CONTROLLER_MISSING]
    assert reading.cgroup_current_mb is None and reading.cgroup_max_mb is None
    checks = {name: (level, msg) for name, level, msg in memory.describe(board.root)}
    assert checks["memory limits"][0] == "warn"
    assert "does not enforce memory limits" in checks["memory limits"][1]


def test_unlimited_or_root_cgroup_warns_limit_unset(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    board.set_cgroup(current_mb=100, max_mb=None)  # memory.max = "max"
    assert memory.read(board.root).warnings == [memory.MEMORY_LIMIT_UNSET]
    (board.cgroup_dir / "memory.max").unlink()  # the root cgroup has no memory.max
    assert memory.read(board.root).warnings == [memory.MEMORY_LIMIT_UNSET]


@pytest.mark.parametrize("cgroup_text", ["12:memory:/user.slice\n1:name=systemd:/\n",
                                         "4:memory:/x\n1:cpu:/\n0::/\n"])
def test_cgroup_v1_warns(tmp_path, cgroup_text):
    board = fb.jetson_orin(tmp_path)
    (board.root / "proc/self/cgroup").write_text(cgroup_text)
    reading = memory.read(board.root)
    assert reading.warnings == [memory.CGROUP_V2_UNAVAILABLE] and reading.cgroup_current_mb is None


@pytest.mark.parametrize("mode", ["missing", "disabled"])
def test_psi_off_warns(tmp_path, mode):
    board = fb.jetson_orin(tmp_path)
    board.psi_off(mode)
    reading = memory.read(board.root)
    assert reading.warnings == [memory.PSI_UNAVAILABLE] and reading.psi == {}
    checks = {name: level for name, level, _ in memory.describe(board.root)}
    assert checks["pressure stall info"] == "warn"


@pytest.mark.parametrize("psi_text", ["some avg10=abc avg60=0 avg300=0 total=0\n", "banana\n",
                                      "some avg10=250.00 avg60=0.00 avg300=0.00 total=1\n"])
def test_psi_garbage_is_sensor_error(tmp_path, psi_text):
    board = fb.raspberry_pi_4(tmp_path)
    (board.root / "proc/pressure/memory").write_text(psi_text)
    reading = memory.read(board.root)
    assert "psi_garbage:memory" in reading.sensor_errors
    assert "memory.some.avg10" not in reading.psi and "cpu.some.avg10" in reading.psi


@pytest.mark.parametrize("file_name, how, code", [
    ("memory.current", "garbage", "cgroup_garbage:memory.current"),
    ("memory.current", "directory", "cgroup_unreadable:memory.current"),
    ("memory.max", "garbage", "cgroup_garbage:memory.max"),
    ("memory.events", "loop", "cgroup_unreadable:memory.events"),
])
def test_broken_cgroup_files(tmp_path, file_name, how, code):
    board = fb.raspberry_pi_5(tmp_path)
    board.break_file(board.cgroup_dir / file_name, how)
    assert code in memory.read(board.root).sensor_errors


def test_meminfo_garbage(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    (board.root / "proc/meminfo").write_text("MemTotal: lots\n")
    reading = memory.read(board.root)
    assert reading.mem_available_mb is None and "meminfo_garbage:meminfo" in reading.sensor_errors
    assert dict((n, lvl) for n, lvl, _ in memory.describe(board.root))["system memory"] == "fail"


def test_real_root_never_raises():
    reading = memory.read("/")
    assert reading.mem_total_mb and reading.mem_total_mb > 0
    assert all(isinstance(check, tuple) and len(check) == 3 for check in memory.describe("/"))


def test_report_combines_thermal_and_memory_checks(tmp_path):
    from edge.board import report

    board = fb.raspberry_pi_4(tmp_path)
    checks = report.describe(board.root, board.throttle_command)
    assert {name for name, _, _ in checks} >= {"thermal sensors", "throttle bits", "system memory",
                                              "memory limits", "pressure stall info"}
    assert report.exit_status(checks) == 0 and report.exit_status(checks, strict=True) == 0
    board.remove_memory_controller()
    checks = report.describe(board.root, board.throttle_command)
    assert report.exit_status(checks) == 0 and report.exit_status(checks, strict=True) == 1
    board.break_sensor("cpu-thermal", "garbage")
    assert report.exit_status(report.describe(board.root, board.throttle_command)) == 1
