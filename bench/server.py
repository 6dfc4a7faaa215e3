"""A real ``edge-triage serve`` subprocess on 127.0.0.1 and an ephemeral port, configured by a
TOML file in a temporary directory (its own audit database, optionally a fake sensor root).
Cold start is measured here: process start to the first ``/readyz`` 200, with the service's
modules byte-compiled as on a board (:func:`byte_compile_runtime`).
"""

from __future__ import annotations

import compileall
import functools
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only: the load generator never targets anything else


@functools.cache
def byte_compile_runtime() -> None:
    """Byte-compile ``edge/`` once, as the board's install does (pip compiles the wheel it
    installs). A checkout run with ``PYTHONDONTWRITEBYTECODE=1`` — the service unit sets it, and
    so may a developer's shell — never writes ``.pyc`` files and compiles every module of the
    service from source at each start: measured 0.85-0.87 s cold start vs 0.58-0.71 s compiled
    (medians of 5, this 2-core VM). The cold-start figure is the board's, so compile first."""
    compileall.compile_dir(str(REPO / "edge"), quiet=1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("edge-triage")
    return [str(script), "serve"] if script.is_file() else [sys.executable, "-m", "edge.cli", "serve"]


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # strings, numbers and booleans are spelled the same in TOML


@dataclass
class ServerHandle:
    process: subprocess.Popen
    port: int
    workdir: Path
    cold_start_s: float
    log_path: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(model_dir: Path, *, monitor_root: str | None = None, extra: dict[str, Any] | None = None,
          tables: dict[str, dict[str, Any]] | None = None, ready_timeout_s: float = 60.0) -> ServerHandle:
    """Start the service and wait until ``/readyz`` answers 200 (or raise with its log tail)."""
    byte_compile_runtime()
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    port = free_port()
    settings: dict[str, Any] = {
        "host": HOST, "port": port, "model_dir": str(model_dir),
        "audit_db": str(workdir / "audit.sqlite3"), "audit_key_file": str(workdir / "audit.key"),
        **({"monitor_root": monitor_root} if monitor_root else {}), **(extra or {}),
    }
    config = workdir / "bench.toml"
    text = "".join(f"{k} = {_toml_value(v)}\n" for k, v in settings.items())
    for table, values in (tables or {}).items():  # e.g. [policy], [monitor]
        text += f"\n[{table}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    config.write_text(text, encoding="utf-8")
    log_path = workdir / "server.log"
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen([*serve_command(), "--config", str(config)], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle = ServerHandle(process, port, workdir, float("nan"), log_path, settings)
    deadline = started + ready_timeout_s
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            tail = handle.log_tail()
            handle.stop()
            raise RuntimeError(f"edge-triage serve exited with {process.returncode} before ready:\n{tail}")
        try:
            status, _ = handle.get("/readyz", timeout=1.0)
            if status == 200:
                handle.cold_start_s = time.perf_counter() - started
                return handle
        except OSError:
            pass  # not listening yet
        time.sleep(0.005)  # the cold-start figure is read at this resolution
    tail = handle.log_tail()
    handle.stop()
    raise RuntimeError(f"edge-triage serve was not ready within {ready_timeout_s:.0f} s:\n{tail}")
