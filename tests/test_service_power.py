"""Board power and energy per triage in the running service: a real server pointed (monitor_root) at
a fake Jetson Orin Nano tree shows its input power in /metrics and on the status page, meters
the energy of every answered triage, and keeps answering when the sensor breaks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.kit import fake_boards as fb, fake_power as fp
from tests.servicekit import make_config, serving, wait_for

CANARY = "canary-complaint-okapi"
CASE = {"complaint": f"ankle sprain {CANARY}", "age": 30, "hr": 88}


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the exposition text, None if absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} (\S+)$", metrics, re.M)
    return float(match.group(1)) if match else None


def test_service_on_a_fake_orin_exposes_input_power_and_energy_per_triage(tiny_bundle: Path, tmp_path: Path) -> None:
    board = fb.jetson_orin(tmp_path / "orin", nano=True)
    fp.set_rail(board, "VDD_IN", millivolts=5104, milliamps=1873)  # 9.560 W
    config = make_config(tmp_path, tiny_bundle, monitor_root=str(board.root), monitor_interval_s=0.05)
    with serving(config, monitor=None) as (client, app):
        metrics = client.get("/metrics").body.decode()
        assert sample(metrics, "edge_board_power_total_watts", source="ina3221") == pytest.approx(9.560, abs=1e-3)
        assert sample(metrics, "edge_board_power_watts", rail="VDD_IN", source="ina3221") == pytest.approx(9.560, abs=1e-3)
        assert sample(metrics, "edge_board_power_watts", rail="VDD_SOC", source="ina3221") == pytest.approx(2.309, abs=1e-3)
        assert sample(metrics, "edge_board_input_volts", source="ina3221") == pytest.approx(5.104)
        assert sample(metrics, "edge_board_power_sensor", source="ina3221") == 1
        assert 'edge_temperature_celsius{sensor="CPU-therm"} 50.0' in metrics  # existing names unchanged

        answers = [client.post("/v1/triage", CASE).json for _ in range(3)]
        assert all(a["degraded"] is None for a in answers)
        metrics = client.get("/metrics").body.decode()
        assert sample(metrics, "edge_energy_inferences_total", source="ina3221") == 3
        joules = sample(metrics, "edge_energy_joules_total", source="ina3221")
        per_triage = sample(metrics, "edge_energy_joules_per_triage", source="ina3221")
        # board power × inference time: above zero, below the power × each answer's whole latency
        assert joules is not None and 0 < joules <= 9.561 * sum(a["latency_ms"] for a in answers) / 1000
        assert per_triage == pytest.approx(joules / 3)
        assert CANARY not in metrics

        status = client.get("/status/api").json
        assert status["power"]["source"] == "ina3221"
        assert status["power"]["total_w"] == pytest.approx(9.560, abs=1e-3)
        assert {r["name"] for r in status["power"]["rails"]} == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
        assert wait_for(lambda: len(client.get("/status/api").json["power"]["history"]) >= 1)

        # The sensor breaks: the total disappears (not a stale or made-up number), errors are counted,
        # and triage goes on with model answers.
        board.break_file(fp.rail_file(board, "VDD_IN"), "garbage")
        assert wait_for(lambda: sample(client.get("/metrics").body.decode(), "edge_board_power_total_watts",
                                       source="ina3221") is None)
        metrics = client.get("/metrics").body.decode()
        assert sample(metrics, "edge_sensor_errors") >= 1
        assert sample(metrics, "edge_board_power_watts", rail="VDD_SOC", source="ina3221") is not None
        assert client.post("/v1/triage", CASE).json["degraded"] is None
        assert client.get("/readyz").status == 200
        metrics = client.get("/metrics").body.decode()
        assert sample(metrics, "edge_energy_inferences_total", source="ina3221") == 4
        assert sample(metrics, "edge_energy_joules_total", source="ina3221") == pytest.approx(joules)  # nothing made up
        assert client.get("/status/api").json["power"]["total_w"] is None


def test_service_on_a_pi4_says_there_is_no_power_sensor(tiny_bundle: Path, tmp_path: Path) -> None:
    board = fb.raspberry_pi_4(tmp_path / "pi4")
    config = make_config(tmp_path, tiny_bundle, monitor_root=str(board.root),
                         monitor={"throttle_command": list(board.throttle_command or ())})
    with serving(config, monitor=None) as (client, _):
        assert client.post("/v1/triage", CASE).json["degraded"] is None
        metrics = client.get("/metrics").body.decode()
        assert sample(metrics, "edge_board_power_sensor", source="none") == 1
        assert "edge_board_power_total_watts{" not in metrics
        assert sample(metrics, "edge_energy_inferences_total", source="none") == 1
        assert "edge_energy_joules_total{" not in metrics  # no sensor: no joules made up
        power = client.get("/status/api").json["power"]
        assert power["source"] == "none" and power["total_w"] is None and power["rails"] == []
