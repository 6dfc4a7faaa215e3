"""TEST HELPER: a real nginx running the rendered front config as an unprivileged-style process
(``nginx -p PREFIX -c CONF -g 'daemon off;'``) on an ephemeral loopback port, in front of a
service on another loopback port. Used by tests/test_front_nginx.py and bench.overload."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from edge.service.front import FrontSettings, make_certificate, prepare_state_dir, render


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(prefix: Path, upstream_port: int, **overrides) -> tuple[Path, FrontSettings]:
    cert, key = make_certificate(prefix / "tls", "localhost")
    settings = FrontSettings(listen=f"127.0.0.1:{free_port()}", upstream=f"127.0.0.1:{upstream_port}",
                             cert=str(cert), key=str(key), state_dir=str(prefix / "state"),
                             error_log=str(prefix / "error.log"), user="root" if os.geteuid() == 0 else None)
    settings = replace(settings, **overrides)
    prepare_state_dir(settings)
    conf = prefix / "nginx.conf"
    conf.write_text(render(settings), encoding="utf-8")
    return conf, settings


def check_config(nginx: str, prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nginx, "-t", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def running_front(prefix: Path, upstream_port: int, **overrides) -> Iterator[FrontSettings]:
    nginx = nginx_binary()
    assert nginx, "nginx is not installed"
    conf, settings = write_config(prefix, upstream_port, **overrides)
    process = subprocess.Popen([nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    host, port = settings.listen.rsplit(":", 1)
    try:
        for _ in range(200):  # bounded: up to ~10 s for nginx to listen
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {process.stderr.read().decode(errors='replace')[-800:]}")
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.2):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("nginx did not start listening")
        yield settings
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
