"""The sampling thread: snapshots, policy wiring, warnings once, prompt stop, survival of reader bugs."""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest

from edge.board import memory, sampler, thermal
from edge.board.sampler import HealthSnapshot, Monitor, MonitorConfig
from edge.board.policy import Policy, PolicyConfig
from tests.kit import fake_boards as fb


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sample_once_builds_a_frozen_snapshot(tmp_path):
    board = fb.raspberry_pi_4(tmp_path, temp_c=64.0)
    board.set_throttled(0x20002)
    board.set_cgroup(current_mb=256, max_mb=512, events={"oom": 1})
    board.set_psi("memory", some_avg10=1.5)
    monitor = Monitor(board.monitor_config())
    snap = monitor.sample_once()
    assert snap.temperatures_c == {"cpu-thermal": 64.0} and snap.max_temp_c == 64.0
    assert snap.throttle["freq_capped"] and snap.throttle["freq_capped_occurred"]
    assert snap.cgroup_current_mb == pytest.approx(256) and snap.cgroup_max_mb == pytest.approx(512)
    assert snap.cgroup_events["oom"] == 1 and snap.psi["memory.some.avg10"] == 1.5
    assert snap.mem_total_mb == pytest.approx(3794) and snap.rss_mb > 0
    assert snap.sensor_errors == () and snap.warnings == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.max_temp_c = 10.0  # type: ignore[misc]
    assert snap.to_dict()["temperatures_c"] == {"cpu-thermal": 64.0}
    assert monitor.snapshot() is snap


def test_broken_sensors_and_missing_protections_in_snapshot(tmp_path):
    board = fb.jetson_orin(tmp_path, nano=True)
    board.break_sensor("tj-therm", "loop")
    board.remove_memory_controller()
    board.psi_off("missing")
    snap = Monitor(board.monitor_config()).sample_once()
    assert "zone_unreadable:tj-therm" in snap.sensor_errors
    assert "zone_out_of_range:CV0-therm" in snap.sensor_errors
    assert set(snap.warnings) == {memory.MEMORY_CONTROLLER_MISSING, memory.PSI_UNAVAILABLE}
    assert "tj-therm" not in snap.temperatures_c and snap.max_temp_c == 50.0


def test_warnings_logged_once_not_every_sample(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="edge.board")
    board = fb.raspberry_pi_4(tmp_path)
    board.remove_memory_controller()
    board.psi_off("disabled")
    monitor = Monitor(board.monitor_config())
    for _ in range(3):
        monitor.sample_once()
    warned = [r.getMessage() for r in caplog.records if r.name == "edge.board"]
    assert len(warned) == 2
    assert any("memory_controller_missing" in m and "does not enforce memory limits" in m for m in warned)
    assert any("psi_unavailable" in m for m in warned)
    assert monitor.warnings == (memory.MEMORY_CONTROLLER_MISSING, memory.PSI_UNAVAILABLE)


def test_monitor_drives_policy_with_injected_clock(tmp_path):
    board = fb.raspberry_pi_5(tmp_path, temp_c=50.0)
    clock = FakeClock()
    monitor = Monitor(board.monitor_config(), policy=Policy(PolicyConfig(max_threads=4)), clock=clock)
    assert monitor.decision().thermal_state == "normal"
    board.set_temp("cpu-thermal", 90.0)
    monitor.sample_once()
    clock.now = 5.0
    monitor.sample_once()
    decision = monitor.decision()
    assert decision.thermal_state == "critical" and decision.rules_only and decision.degraded_reason == "thermal"


def test_thread_samples_and_stops_promptly(tmp_path):
    board = fb.raspberry_pi_4(tmp_path, temp_c=50.0)
    seen: list[HealthSnapshot] = []
    enough = threading.Event()

    def collect(snap: HealthSnapshot) -> None:
        seen.append(snap)
        if snap.temperatures_c.get("cpu-thermal") == 71.0:  # a sample taken after the change
            enough.set()

    monitor = Monitor(board.monitor_config(interval_s=0.01), on_sample=[collect])
    monitor.start()
    assert monitor.snapshot().temperatures_c == {"cpu-thermal": 50.0}  # available as soon as started
    board.set_temp("cpu-thermal", 71.0)
    assert enough.wait(60), "the sampling thread never saw the new temperature"
    monitor.stop()
    assert monitor._thread is None
    assert not any(t.name == "edge-monitor" and t.is_alive() for t in threading.enumerate())
    assert monitor.samples_taken >= 2 and monitor.snapshot().temperatures_c == {"cpu-thermal": 71.0}
    monitor.stop()  # idempotent


def test_stop_does_not_wait_a_long_interval(tmp_path):
    board = fb.jetson_orin(tmp_path)
    monitor = Monitor(dataclasses.replace(board.monitor_config(), interval_s=3600.0))
    with monitor:
        pass
    # stop() returned although the next sample was an hour away: the thread was woken, not waited for
    assert not any(t.name == "edge-monitor" and t.is_alive() for t in threading.enumerate())


def test_reader_bug_keeps_last_snapshot(tmp_path, monkeypatch, caplog):
    board = fb.raspberry_pi_4(tmp_path, temp_c=55.0)
    monitor = Monitor(board.monitor_config())
    first = monitor.sample_once()

    def explode(*args, **kwargs):
        raise RuntimeError("driver bug")

    monkeypatch.setattr(thermal, "read", explode)
    caplog.set_level(logging.ERROR, logger="edge.board")
    assert monitor.sample_once() is first
    assert monitor.sample_failures == 1
    monkeypatch.setattr(sampler.thermal, "read", explode)
    fresh = Monitor(board.monitor_config()).sample_once()
    assert fresh.sensor_errors == ("sampler_failed:monitor",)


def test_default_config_reads_real_root():
    snap = Monitor(MonitorConfig(throttle_command=None)).sample_once()
    assert snap.mem_total_mb and snap.mem_total_mb > 0
