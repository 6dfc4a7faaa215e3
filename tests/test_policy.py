"""Adaptive policy driven through every state by fake board trees and an injected clock."""

from __future__ import annotations

import logging

import pytest

from edge.board.sampler import HealthSnapshot, read_snapshot
from edge.board.policy import (MEMORY_STATES, POLICY_TABLE, THERMAL_STATES, LevelTracker, Policy, PolicyConfig,
                         PolicyDecision)
from tests.kit import fake_boards as fb


class Driver:
    """Reads the fake board and updates the policy at explicit times (seconds)."""

    def __init__(self, board: fb.FakeBoard, config: PolicyConfig | None = None) -> None:
        self.board = board
        self.policy = Policy(config or PolicyConfig(max_threads=4, max_queue=16))

    def at(self, now: float) -> PolicyDecision:
        return self.policy.update(read_snapshot(self.board.monitor_config()), now)


def test_pi4_walks_every_thermal_state_with_sustain_and_hysteresis(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.board.policy")
    board = fb.raspberry_pi_4(tmp_path, temp_c=50.0)
    drive = Driver(board)
    assert drive.at(0).thermal_state == "normal"

    board.set_temp("cpu-thermal", 72.0)
    assert drive.at(10).thermal_state == "normal"      # just crossed: not sustained yet
    assert drive.at(14.9).thermal_state == "normal"
    warm = drive.at(15)
    assert warm.thermal_state == "warm" and warm.intra_op_threads == 3 and warm.max_queue == 12

    board.set_temp("cpu-thermal", 81.0)
    assert drive.at(16).thermal_state == "warm"
    hot = drive.at(21)
    assert (hot.thermal_state, hot.intra_op_threads, hot.max_tokens, hot.max_queue) == ("hot", 2, 96, 8)
    assert hot.ready and not hot.rules_only

    board.set_temp("cpu-thermal", 86.0)
    assert drive.at(22).thermal_state == "hot"
    critical = drive.at(27)
    assert critical.thermal_state == "critical" and critical.rules_only and not critical.ready
    assert critical.degraded_reason == "thermal" and critical.max_queue == 0 and critical.intra_op_threads == 1

    # 83 °C is below the 85 °C threshold but inside the 3 °C hysteresis band: stays critical
    board.set_temp("cpu-thermal", 83.0)
    assert drive.at(100).thermal_state == "critical"
    assert drive.at(500).thermal_state == "critical"
    board.set_temp("cpu-thermal", 81.0)                # below 82: leaving needs 30 s sustained
    assert drive.at(501).thermal_state == "critical"
    assert drive.at(530.9).thermal_state == "critical"
    back = drive.at(531)
    assert back.thermal_state == "hot" and back.ready and not back.rules_only and back.degraded_reason is None

    board.set_temp("cpu-thermal", 78.0)                # inside the hot band's hysteresis
    assert drive.at(1000).thermal_state == "hot"
    board.set_temp("cpu-thermal", 55.0)
    assert drive.at(1001).thermal_state == "hot"
    assert drive.at(1031).thermal_state == "normal"     # below warm too, sustained: straight down

    counts = drive.policy.transition_counts
    assert counts == {"thermal:normal→warm": 1, "thermal:warm→hot": 1, "thermal:hot→critical": 1,
                      "thermal:critical→hot": 1, "thermal:hot→normal": 1}
    recent = drive.policy.transitions()
    assert [(t.old, t.new) for t in recent] == [("normal", "warm"), ("warm", "hot"), ("hot", "critical"),
                                                ("critical", "hot"), ("hot", "normal")]
    assert all(t.at > 0 for t in recent)
    messages = [r.getMessage() for r in caplog.records if r.name == "edge.board.policy"]
    assert any("thermal hot→critical (max 86.0 °C" in m for m in messages)
    assert [r.levelno for r in caplog.records if "→" in r.getMessage()] == \
        [logging.WARNING] * 3 + [logging.INFO] * 2


def test_short_spikes_do_not_escalate(tmp_path):
    board = fb.raspberry_pi_5(tmp_path, temp_c=50.0)
    drive = Driver(board)
    for start in (0, 10, 20):
        board.set_temp("cpu-thermal", 95.0)
        assert drive.at(start).thermal_state == "normal"
        assert drive.at(start + 4).thermal_state == "normal"
        board.set_temp("cpu-thermal", 50.0)
        assert drive.at(start + 4.5).thermal_state == "normal"
    board.set_temp("cpu-thermal", 95.0)
    drive.at(40)
    assert drive.at(45).thermal_state == "critical"    # sustained: jumps straight to critical
    assert drive.policy.transition_counts == {"thermal:normal→critical": 1}


def test_pi5_fan_trips_do_not_lower_limits(tmp_path):
    board = fb.raspberry_pi_5(tmp_path, temp_c=68.0)  # above the 67.5 °C fan trip: still fine
    drive = Driver(board)
    drive.at(0)
    assert drive.at(10).thermal_state == "normal"


@pytest.mark.parametrize("temp, state", [(83.0, "normal"), (90.0, "warm"), (95.0, "hot"), (99.5, "critical")])
def test_jetson_thresholds_follow_trip_points(tmp_path, temp, state):
    board = fb.jetson_orin(tmp_path, temp_c=50.0)
    board.set_temp("GPU-therm", temp)  # one hot zone is enough
    drive = Driver(board)
    drive.at(0)
    decision = drive.at(10)
    assert decision.thermal_state == state
    assert "GPU-therm" in decision.thermal_detail or state == "normal"


def test_jetson_walk_and_back(tmp_path):
    board = fb.jetson_orin(tmp_path, temp_c=50.0, nano=True)  # absent CV zones must not matter
    drive = Driver(board)
    states = []
    # 10 s steps; entering needs 5 s sustained, leaving 30 s
    for step, temp in enumerate([50, 86, 86, 95, 95, 100, 100, 97, 95, 95, 95, 95, 60, 60, 60, 60]):
        fb.set_jetson_temps(board, temp)
        states.append(drive.at(step * 10.0).thermal_state)
    assert states == ["normal", "normal", "warm", "warm", "hot", "hot", "critical",
                      "critical",  # 97 °C: under the 99 °C limit but within the 3 °C hysteresis
                      "critical", "critical", "critical", "hot",
                      "hot", "hot", "hot", "normal"]


@pytest.mark.parametrize("bits, state", [(0x0, "normal"), (0x50000, "normal"), (0x1, "warm"),
                                         (0x2, "hot"), (0x4, "hot"), (0x8, "hot"), (0xF, "hot")])
def test_pi_throttle_bits_push_toward_hot(tmp_path, bits, state):
    board = fb.raspberry_pi_4(tmp_path, temp_c=50.0)
    board.set_throttled(bits)
    drive = Driver(board)
    drive.at(0)
    decision = drive.at(5)
    assert decision.thermal_state == state
    if bits & 0x4:
        assert "throttled" in decision.thermal_detail


def test_rpi_volt_alarm_means_warm(tmp_path):
    board = fb.raspberry_pi_5(tmp_path, temp_c=50.0)
    board.set_under_voltage_alarm(True)
    drive = Driver(board)
    drive.at(0)
    decision = drive.at(5)
    assert decision.thermal_state == "warm" and "under-voltage" in decision.thermal_detail


@pytest.mark.parametrize("builder", [fb.raspberry_pi_4, fb.raspberry_pi_5, fb.jetson_orin])
def test_every_sensor_broken_is_treated_as_hot(tmp_path, builder):
    board = builder(tmp_path)
    modes = ["garbage", "directory", "loop", "missing"]
    for index, zone in enumerate(list(board._zones)):
        board.break_sensor(zone, modes[index % len(modes)])
    for name in ("rp1_adc",):
        if name in board._hwmon:
            board.break_file(board.hwmon_file(name, "temp1_input"), "garbage")
    drive = Driver(board)
    drive.at(0)
    decision = drive.at(5)
    assert decision.thermal_state == "hot" and not decision.rules_only and decision.ready
    assert "temperature sensors broken" in decision.thermal_detail


def test_one_broken_sensor_does_not_change_state(tmp_path):
    board = fb.jetson_orin(tmp_path, temp_c=50.0)
    board.break_sensor("CPU-therm", "garbage")
    drive = Driver(board)
    drive.at(0)
    assert drive.at(60).thermal_state == "normal"


def test_board_without_sensors_stays_normal(tmp_path):
    board = fb.FakeBoard(tmp_path)
    drive = Driver(board)
    drive.at(0)
    decision = drive.at(60)
    assert decision.thermal_state == "normal" and decision.thermal_detail == "no temperature sensors"


def test_memory_walks_ok_pressure_critical_and_back_via_cgroup(tmp_path):
    board = fb.raspberry_pi_4(tmp_path)
    drive = Driver(board)
    board.set_cgroup(current_mb=400, max_mb=1000)
    assert drive.at(0).memory_state == "ok"
    board.set_cgroup(current_mb=880)
    assert drive.at(1).memory_state == "ok"
    pressure = drive.at(3)
    assert (pressure.memory_state, pressure.max_tokens, pressure.max_queue, pressure.intra_op_threads) == \
        ("pressure", 96, 8, 4)
    assert "cgroup memory of limit 88%" in pressure.memory_detail
    board.set_cgroup(current_mb=960)
    drive.at(4)
    critical = drive.at(6)
    assert critical.memory_state == "critical" and critical.rules_only and not critical.ready
    assert critical.degraded_reason == "memory"
    board.set_cgroup(current_mb=910)                    # inside critical's hysteresis band
    assert drive.at(100).memory_state == "critical"
    board.set_cgroup(current_mb=820)                    # inside pressure's band, below critical's
    drive.at(101)
    assert drive.at(131).memory_state == "pressure"
    board.set_cgroup(current_mb=500)
    drive.at(132)
    assert drive.at(162).memory_state == "ok"
    assert drive.policy.transition_counts == {"memory:ok→pressure": 1, "memory:pressure→critical": 1,
                                              "memory:critical→pressure": 1, "memory:pressure→ok": 1}


def test_memory_high_and_psi_and_system_memory(tmp_path):
    board = fb.jetson_orin(tmp_path)
    drive = Driver(board)
    board.set_cgroup(current_mb=300, max_mb=None, high_mb=290)
    drive.at(0)
    assert drive.at(2).memory_state == "pressure"
    board.set_cgroup(current_mb=100, high_mb=None)
    board.set_psi("memory", some_avg10=25.0, full_avg10=2.0)
    assert drive.at(100).memory_state == "pressure"
    board.set_psi("memory", some_avg10=60.0, full_avg10=30.0)
    drive.at(101)
    assert drive.at(103).memory_state == "critical"
    board.set_psi("memory", some_avg10=0.0, full_avg10=0.0)
    board.set_meminfo(total_mb=30536, available_mb=600)  # 98% used
    assert drive.at(500).memory_state == "critical"


def test_oom_events_jump_to_critical_at_once(tmp_path):
    board = fb.raspberry_pi_5(tmp_path)
    board.set_cgroup(current_mb=100, max_mb=1000, events={"oom_kill": 2})  # before start: history
    drive = Driver(board)
    assert drive.at(0).memory_state == "ok"
    board.set_cgroup(events={"high": 1})
    assert drive.at(1).memory_state == "pressure"       # no sustain needed for an event
    board.set_cgroup(events={"high": 1, "oom_kill": 3})
    decision = drive.at(2)
    assert decision.memory_state == "critical" and "OOM" in decision.memory_detail
    assert drive.at(20).memory_state == "critical"      # first quiet sample: the 30 s start now
    assert drive.at(49).memory_state == "critical"
    assert drive.at(50).memory_state == "ok"


def test_thermal_reason_wins_when_both_critical():
    policy = Policy(PolicyConfig(max_threads=4, thermal_enter_after_s=0, memory_enter_after_s=0))
    snap = HealthSnapshot(time=1.0, temperatures_c={"cpu-thermal": 90.0}, max_temp_c=90.0, temp_sensors_found=1,
                          cgroup_current_mb=990.0, cgroup_max_mb=1000.0)
    decision = policy.update(snap, 0.0)
    assert (decision.thermal_state, decision.memory_state, decision.degraded_reason) == \
        ("critical", "critical", "thermal")


def test_table_covers_every_state():
    assert {state for monitor, state in POLICY_TABLE if monitor == "thermal"} == set(THERMAL_STATES)
    assert {state for monitor, state in POLICY_TABLE if monitor == "memory"} == set(MEMORY_STATES)
    for (monitor, state), effect in POLICY_TABLE.items():
        assert effect.rules_only == (state == "critical") and effect.ready == (state != "critical")


def test_level_tracker_counts_time_from_first_crossing():
    tracker = LevelTracker(3, enter_after_s=5, leave_after_s=10)
    assert tracker.update(0, entry=2, hold=2) == 0
    assert tracker.update(3, entry=1, hold=2) == 0      # level 1 held since t=0; level 2 lapsed
    assert tracker.update(5, entry=1, hold=1) == 1
    assert tracker.update(6, entry=0, hold=1) == 1
    assert tracker.update(100, entry=0, hold=0) == 1    # exit starts counting now
    assert tracker.update(110, entry=0, hold=0) == 0
    assert tracker.update(111, entry=0, hold=0, instant=2) == 2


def test_recent_transitions_are_bounded():
    policy = Policy(PolicyConfig(thermal_enter_after_s=0, thermal_leave_after_s=0, recent_transitions=5))
    for step in range(20):
        temp = 90.0 if step % 2 == 0 else 40.0
        policy.update(HealthSnapshot(time=float(step), temperatures_c={"z": temp}, max_temp_c=temp,
                                     temp_sensors_found=1), float(step))
    assert len(policy.transitions()) == 5
    assert sum(policy.transition_counts.values()) == 20


@pytest.mark.parametrize("temp, state", [(69.0, "normal"), (72.0, "warm"), (82.0, "hot"), (86.0, "critical")])
def test_jetson_mainline_kernel_uses_default_thresholds(tmp_path, temp, state):
    # no passive/critical trips (tj-thermal has fan trips only): config defaults 70/80/85 °C apply
    board = fb.jetson_orin(tmp_path, upstream_kernel=True, temp_c=50.0)
    board.set_temp("tj-thermal", temp)
    drive = Driver(board)
    drive.at(0)
    assert drive.at(10).thermal_state == state
