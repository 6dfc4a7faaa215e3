"""sd_notify over a real AF_UNIX datagram socket, both filesystem and abstract addresses."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from edge.service import sdnotify


@pytest.fixture
def filesystem_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch):
    name = f"edge-triage-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


def test_ready_with_status_reaches_filesystem_socket(filesystem_socket: socket.socket) -> None:
    assert sdnotify.is_enabled()
    assert sdnotify.ready("model loaded\nand warmed")
    assert filesystem_socket.recv(4096) == b"READY=1\nSTATUS=model loaded and warmed"


def test_each_message_kind_reaches_abstract_socket(abstract_socket: socket.socket) -> None:
    assert sdnotify.status("serving")
    assert abstract_socket.recv(4096) == b"STATUS=serving"
    assert sdnotify.watchdog()
    assert abstract_socket.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.stopping("bye")
    assert abstract_socket.recv(4096) == b"STOPPING=1\nSTATUS=bye"


def test_noop_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.is_enabled()
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False


def test_missing_socket_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.watchdog() is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None, "watchdog belongs to another process"
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert sdnotify.watchdog_interval() is None
