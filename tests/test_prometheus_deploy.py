"""deploy/prometheus: the fleet's scrape config, alert rules and Grafana dashboard.

promtool checks the config and rules and runs the rules' unit tests; the metric names the rules
and the dashboard use are checked against a live scrape of a real service on a fake Raspberry Pi,
so a renamed metric breaks this test rather than silently emptying a panel or an alert.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kit.fake_boards import raspberry_pi_4
from tests.servicekit import make_config, serving

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
RULES = DEPLOY / "edge-triage.rules.yml"
DASHBOARD = DEPLOY / "grafana-fleet-dashboard.json"
PROMQL_METRIC = re.compile(r"\b(edge_[a-z0-9_]+|up)\b")
PROMETHEUS_BUILTIN = {"up"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'; `make test` installs it)")
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_rules() -> None:
    done = _run(_promtool(), "check", "rules", str(RULES), cwd=DEPLOY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = _run(_promtool(), "test", "rules", "tests/edge-triage.rules.test.yml", cwd=DEPLOY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    # The config names a token file the operator creates; give the copy one, as an install would.
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    (copy / "edge-triage.token").write_text("x" * 40 + "\n")
    done = _run(_promtool(), "check", "config", "prometheus.yml", cwd=copy)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_scrape_config_discovers_boxes_from_files() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "edge-triage")
    assert job["file_sd_configs"][0]["files"] == ["targets/*.yml"]
    assert job["authorization"]["credentials_file"]
    targets = yaml.safe_load((DEPLOY / "targets" / "ward.example.yml").read_text())
    assert all(re.fullmatch(r"[\w.-]+:\d+", t) for group in targets for t in group["targets"])


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_every_alert_the_issue_asks_for_is_there() -> None:
    names = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert names >= {"EdgeBoardHot", "EdgeBoardThrottled", "EdgeUnderVoltage", "EdgeMemoryPressure",
                     "EdgeDegradedAnswers", "EdgeDeadlineMisses", "EdgeNotReady", "EdgeModelMismatch"}


def test_the_dashboard_parses_and_covers_the_fleet() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "edge-triage-fleet" and len(dashboard["panels"]) >= 10
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert any("edge_model_info" in e for e in _dashboard_exprs())


def _scraped_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def test_rules_and_dashboard_use_only_metrics_the_service_exports(tiny_bundle: Path, tmp_path: Path) -> None:
    board = raspberry_pi_4(tmp_path / "board", temp_c=50.0)
    board.install_vcgencmd()
    config = make_config(tmp_path, tiny_bundle, monitor_root=str(board.root), monitor_interval_s=0.05,
                         monitor={"throttle_command": list(board.throttle_command or ())})
    with serving(config, monitor=None) as (client, app):
        assert client.post("/v1/triage", {"complaint": "ankle sprain", "age": 30}).status == 200
        text = client.get("/metrics").body.decode()
    exported = _scraped_names(text)
    sha256 = app.extensions["edge"].runtime.identity()["sha256"]
    assert f'sha256="{sha256}"' in next(line for line in text.splitlines() if line.startswith("edge_model_info{"))
    used = {name for expr in _rule_exprs() + _dashboard_exprs() for name in PROMQL_METRIC.findall(expr)}
    assert len(used) >= 15
    missing = sorted(used - exported - PROMETHEUS_BUILTIN)
    assert not missing, f"metrics the rules or dashboard use but the service does not export: {missing}"
