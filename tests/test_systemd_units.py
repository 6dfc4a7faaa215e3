"""The shipped systemd units pass ``systemd-analyze verify`` and the service's offline security
exposure is 2.0 or better, with the real systemd tools (apt-get install systemd)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "systemd"
SERVICE = UNITS / "edge-triage.service"
KIOSK = UNITS / "edge-triage-kiosk.service"
FRONT = UNITS / "edge-triage-front.service"
MAX_EXPOSURE = 2.0
MAX_KIOSK_EXPOSURE = 5.0  # Chromium needs the GPU, input, a tty and its namespace sandbox

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt-get install systemd)",
)


def _system_unit_dir() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.skip("no systemd system units on this machine (sysinit.target not found)")


def _exec_paths(unit_text: str) -> list[str]:
    paths = []
    for line in unit_text.replace("\\\n", " ").splitlines():
        if re.match(r"Exec(Start|StartPre|StartPost|Stop|Reload)=", line):
            command = shlex.split(line.split("=", 1)[1])
            paths.append(command[0].lstrip("-@:+!"))
    return paths


def verify_units(tmp_path: Path, units: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify --root`` on a throw-away root holding the distribution's units, the
    units under test and placeholder executables at their ExecStart paths (the real ones exist only
    on an installed board)."""
    root = tmp_path / "root"
    shutil.copytree(_system_unit_dir(), root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for name, text in units.items():
        (unit_dir / name).write_text(text)
        for exe in _exec_paths(text):
            target = root / exe.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=60)


def exposure(unit: Path) -> tuple[float, str]:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no exposure score in systemd-analyze output:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1)), result.stdout


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    result = verify_units(tmp_path, {unit.name: unit.read_text() for unit in (SERVICE, KIOSK, FRONT)})
    # verify exits 0 even for unknown keys and bad values, which it only prints: demand silence too.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_verify_check_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = SERVICE.read_text().replace("MemoryMax=800M", "MemoryMax=lots\nWatchdogSecs=30")
    result = verify_units(tmp_path, {SERVICE.name: broken})
    output = result.stdout + result.stderr
    assert "Invalid memory limit" in output and "WatchdogSecs" in output


def test_service_security_exposure_at_most_2(tmp_path: Path) -> None:
    score, report = exposure(SERVICE)
    assert score <= MAX_EXPOSURE, report


def test_kiosk_security_exposure_at_most_5() -> None:
    score, report = exposure(KIOSK)
    assert score <= MAX_KIOSK_EXPOSURE, report


def test_front_security_exposure_at_most_2() -> None:
    score, report = exposure(FRONT)
    assert score <= MAX_EXPOSURE, report


def test_front_contract_directives() -> None:
    from edge.service.front import FrontSettings

    d = _directives(FRONT.read_text())
    assert d["DynamicUser"] == ["yes"] and d["NoNewPrivileges"] == ["yes"]
    assert d["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"] == d["AmbientCapabilities"]
    assert d["RuntimeDirectory"] == ["edge-triage-front"]
    assert FrontSettings().state_dir == "/run/edge-triage-front", "pid and temp paths live in the RuntimeDirectory"
    credentials = {value.split(":")[0] for value in d["LoadCredential"]}
    assert {Path(FrontSettings().cert).name, Path(FrontSettings().key).name} == credentials
    assert all("/run/credentials/edge-triage-front.service/" in p for p in (FrontSettings().cert, FrontSettings().key))


def test_kiosk_contract_directives() -> None:
    d = _directives(KIOSK.read_text())
    assert d["User"] == ["edge-kiosk"] and d["UMask"] == ["0077"] and d["NoNewPrivileges"] == ["yes"]
    assert d["CapabilityBoundingSet"] == [""] and d["ProtectSystem"] == ["strict"]
    assert d["IPAddressDeny"] == ["any"] and d["IPAddressAllow"] == ["localhost"], "the kiosk talks to loopback only"
    assert d["DevicePolicy"] == ["closed"]
    # Chromium's renderer sandbox builds user, pid and net namespaces; nothing else is allowed.
    assert set(d["RestrictNamespaces"][0].split()) == {"user", "pid", "net"}
    assert any("--app=http://127.0.0.1:" in line for line in d["ExecStart"])


def test_exposure_parser_sees_a_weak_unit(tmp_path: Path) -> None:
    weak = tmp_path / "weak.service"
    weak.write_text("[Service]\nExecStart=/bin/true\n")
    score, _ = exposure(weak)
    assert score > 9.0


def _directives(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_service_contract_directives() -> None:
    d = _directives(SERVICE.read_text())
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"] and "WatchdogSec" in d
    assert "StartLimitIntervalSec" in d and "StartLimitBurst" in d
    assert d["DynamicUser"] == ["yes"] and d["StateDirectory"] == ["edge-triage"]
    assert d["CapabilityBoundingSet"] == [""] and d["NoNewPrivileges"] == ["yes"]
    assert d["SystemCallFilter"][0] == "@system-service"
    assert set(d["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # ProcSubset=pid hides /proc/cpuinfo, /proc/meminfo and /proc/pressure from onnxruntime,
    # psutil and the PSI monitor.
    assert "ProcSubset" not in d
    state_env = [v for v in d["Environment"] if v.startswith("EDGE_TRIAGE_AUDIT_DB=")]
    assert state_env == ["EDGE_TRIAGE_AUDIT_DB=/var/lib/edge-triage/audit.sqlite3"]


def test_example_config_loads_with_the_service_loader(tmp_path: Path) -> None:
    config = pytest.importorskip("edge.service.config", reason="edge.service.config (service) not present")
    loaded = config.load_config(UNITS / "config.toml.example", env={})
    assert loaded.host == "127.0.0.1", "the shipped example must bind loopback only"
    env = {}
    for line in (UNITS / "edge-triage.env.example").read_text().splitlines():
        if line.startswith("# EDGE_TRIAGE_"):
            key, value = line[2:].split("=", 1)
            env[key] = value
    assert env, "the env example documents no overrides"
    config.load_config(UNITS / "config.toml.example", env=env)
