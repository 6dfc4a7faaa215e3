"""The adaptive policy wired into the running service: a fake Raspberry Pi 4 tree heats up and runs
out of memory under a real server, and the service changes what it does — threads, tokens,
rules-only degraded answers, readiness — and shows it in /metrics."""

from __future__ import annotations

from pathlib import Path

from tests.kit.fake_boards import raspberry_pi_4
from tests.servicekit import make_config, serving, wait_for

CASE = {"complaint": "ankle sprain", "age": 30}
FAST_POLICY = {"thermal_enter_after_s": 0.0, "thermal_leave_after_s": 0.0,
               "memory_enter_after_s": 0.0, "memory_leave_after_s": 0.0}


def test_board_heat_and_memory_drive_the_service(tiny_bundle: Path, tmp_path: Path) -> None:
    board = raspberry_pi_4(tmp_path / "board", temp_c=50.0)
    config = make_config(tmp_path, tiny_bundle, threads=2, monitor_root=str(board.root), monitor_interval_s=0.05,
                         monitor={"throttle_command": list(board.throttle_command or ())}, policy=FAST_POLICY)
    with serving(config, monitor=None) as (client, app):
        state = app.extensions["edge"]
        assert state.monitor is not None and state.policy is not None
        assert client.post("/v1/triage", CASE).json["degraded"] is None
        metrics = client.get("/metrics").body.decode()
        assert 'edge_temperature_celsius{sensor="cpu-thermal"} 50.0' in metrics
        assert 'edge_policy_thermal_state{state="normal"} 1' in metrics

        board.set_all_temps(82.0)  # hot: fewer threads, shorter inputs, model still answers
        assert wait_for(lambda: getattr(state.decision, "thermal_state", None) == "hot")
        assert wait_for(lambda: state.runtime.options.intra_op_threads == 1)
        assert state.scheduler.max_tokens == 96
        assert client.post("/v1/triage", CASE).json["degraded"] is None

        board.set_all_temps(90.0)  # critical: rules-only, not ready
        assert wait_for(lambda: client.get("/readyz").status == 503)
        hot = client.post("/v1/triage", CASE).json
        assert hot["degraded"] == "thermal" and hot["review_required"] and hot["level"] <= 2
        strict = client.post("/v1/triage?strict=1", CASE)
        assert strict.status == 503 and strict.json["error"]["code"] == "degraded_mode"
        metrics = client.get("/metrics").body.decode()
        assert 'edge_policy_thermal_state{state="critical"} 1' in metrics
        assert 'edge_degraded_total{reason="thermal"}' in metrics
        assert "edge_policy_transitions_total{" in metrics

        board.set_all_temps(50.0)
        assert wait_for(lambda: client.get("/readyz").status == 200)
        assert wait_for(lambda: state.runtime.options.intra_op_threads == 2)
        assert client.post("/v1/triage", CASE).json["degraded"] is None

        board.set_cgroup(current_mb=1010, max_mb=1024)  # memory critical
        assert wait_for(lambda: client.get("/readyz").status == 503)
        assert client.post("/v1/triage", CASE).json["degraded"] == "memory"
        board.set_cgroup(current_mb=100, max_mb=1024)
        assert wait_for(lambda: client.get("/readyz").status == 200)
        assert client.post("/v1/triage", CASE).json["degraded"] is None
