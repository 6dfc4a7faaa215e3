"""``edge-triage serve`` as systemd runs it: READY=1 only once the model is loaded and warmed,
watchdog pings only while the inference worker is healthy, clean exit on SIGTERM; and
``edge-triage check``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.inference.session import TriageModel
from tests.servicekit import Client, SlowTriager, make_config, serving
from tests.test_security import _start_serve, _token_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield path, sock
    sock.close()


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    return out


def test_ready_after_warm_up_then_watchdog_then_clean_stop(tiny_bundle, tmp_path, notify_socket) -> None:
    path, sock = notify_socket
    process, lines, base = _start_serve(tmp_path, tiny_bundle, _token_file(tmp_path),
                                        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    try:
        first = sock.recv(4096).decode() if _wait_readable(sock, 30) else ""
        assert first.startswith("READY=1"), first
        assert "STATUS=serving tiny-test" in first
        # READY came after warm-up: the service is ready to give model answers right now.
        client = Client(base)
        assert client.get("/readyz").status == 200
        assert client.post("/v1/triage", {"complaint": "cough"}).json["degraded"] is None
        assert any(m == "WATCHDOG=1" for m in _messages(sock, 1.0))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
    assert any(m.startswith("STOPPING=1") for m in _messages(sock, 0.5))


def _wait_readable(sock: socket.socket, seconds: float) -> bool:
    import select

    return bool(select.select([sock], [], [], seconds)[0])


def test_stuck_worker_stops_the_watchdog_pings(tiny_bundle, tmp_path, notify_socket, monkeypatch) -> None:
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    release = threading.Event()
    slow = SlowTriager(TriageModel.load(tiny_bundle), 60.0, release)
    config = make_config(tmp_path, tiny_bundle, deadline_ms=100, deadline_max_ms=100, worker_stuck_s=0.3)
    with serving(config, triager=slow, audit=False) as (client, _):
        assert "WATCHDOG=1" in _messages(sock, 0.5)
        reply = client.post("/v1/triage", {"complaint": "cough"})  # the worker now hangs
        assert reply.json["degraded"] == "deadline"
        time.sleep(0.5)  # now stuck for longer than worker_stuck_s
        _messages(sock, 0.2)  # drop pings sent before the worker counted as stuck
        assert "WATCHDOG=1" not in _messages(sock, 0.6), "a stuck worker must silence the watchdog"
        assert client.get("/readyz").status == 503
        release.set()
        assert "WATCHDOG=1" in _messages(sock, 1.0), "pings resume when the worker recovers"


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "check", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "EDGE_TRIAGE_AUDIT_DB": "/tmp/none/a.sqlite3"})


def test_check_passes_on_a_good_bundle_and_fails_on_a_bad_one(tiny_bundle, tmp_path) -> None:
    from tests.kit.fake_boards import raspberry_pi_4

    board = raspberry_pi_4(tmp_path / "pi4")
    good = _check("--model", str(tiny_bundle), "--monitor-root", str(board.root))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "[  ok] model bundle" in good.stdout and "thermal sensors" in good.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    bad = _check("--model", str(broken), "--json", "--monitor-root", str(board.root))
    assert bad.returncode == 1
    assert '"status": "fail"' in bad.stdout and "manifest_missing" in bad.stdout


def test_check_fails_when_sensors_are_missing(tiny_bundle, tmp_path) -> None:
    empty_root = tmp_path / "empty"
    empty_root.mkdir()
    done = _check("--model", str(tiny_bundle), "--monitor-root", str(empty_root))
    assert done.returncode == 1 and "system memory" in done.stdout
