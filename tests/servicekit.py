"""Helpers for the service tests: a real waitress server on an ephemeral loopback port in a
thread, a tiny HTTP client, and a triager that is slow on purpose (a test double for slowness
only: it runs the real model after sleeping)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from edge.service.config import ServiceConfig
from edge.inference.session import TriageModel
from edge.inference.triager import Triager


def make_config(tmp_path: Path, bundle: Path, **overrides: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "port": 0, "model_dir": str(bundle), "audit_db": str(tmp_path / "audit.sqlite3"),
        "audit_key_file": str(tmp_path / "audit.key"), "monitor_interval_s": 0.5,
    }
    values.update(overrides)
    return ServiceConfig(**values).validate()


class SlowTriager(Triager):
    """The real model, after ``delay_s`` of sleep per inference call (or until ``release`` is set)."""

    def __init__(self, model: TriageModel | None, delay_s: float, release: threading.Event | None = None) -> None:
        super().__init__(model)
        self.delay_s = delay_s
        self.release = release
        self.calls = 0

    def triage_batch(self, cases: Sequence[Any], **kwargs: Any):  # type: ignore[override]
        self.calls += 1
        if self.release is not None:
            self.release.wait(self.delay_s)
        else:
            time.sleep(self.delay_s)
        return super().triage_batch(cases, **kwargs)


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0, interval_s: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; its last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                content_type: str | None = "application/json", headers: dict[str, str] | None = None,
                timeout: float = 20.0) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = dict(headers or {})
        if data is not None and content_type:
            all_headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
                return Reply(response.status, dict(response.headers), payload, time.perf_counter() - began)
        except urllib.error.HTTPError as error:
            payload = error.read()
            return Reply(error.code, dict(error.headers), payload, time.perf_counter() - began)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)


@contextlib.contextmanager
def serving(config: ServiceConfig, **parts: Any) -> Iterator[tuple[Client, Any]]:
    """Build the app (``parts`` as for create_app), serve it on waitress, yield (client, app)."""
    with serving_with_server(config, **parts) as (client, app, _server):
        yield client, app


@contextlib.contextmanager
def serving_with_server(config: ServiceConfig, **parts: Any) -> Iterator[tuple[Client, Any, Any]]:
    """:func:`serving`, also yielding the ``EdgeServer`` (its dispatcher and pools)."""
    from edge.service.app import create_app
    from edge.service.server import EdgeServer

    parts.setdefault("monitor", False)
    app = create_app(config, **parts)
    server = EdgeServer(app, config)
    thread = threading.Thread(target=server.serve_forever, name="test-waitress", daemon=True)
    thread.start()
    try:
        yield Client(f"http://127.0.0.1:{server.port}"), app, server
    finally:
        server.stop()
        thread.join(10)
        app.extensions["edge"].stop()
