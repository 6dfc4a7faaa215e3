"""The server layer's part of the promise (edge.service.arrival), on a real waitress server: admission at
arrival answers a request that cannot make its deadline at once — while every HTTP thread is busy
waiting for the model — and waitress's own errors are JSON that echo nothing of the request."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edge.inference.session import TriageModel
from edge.inference.triager import DEGRADED_LEVEL
from tests.servicekit import SlowTriager, make_config, serving

CASE = {"complaint": "ankle sprain", "age": 30, "pain": 3}


@pytest.fixture(scope="module")
def model(tiny_bundle: Path) -> TriageModel:
    return TriageModel.load(tiny_bundle)


def _raw(port: int, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # Send in pieces and stop once the server answers: it stops reading at its limit, and unread
        # bytes make the kernel reset the connection on close, which drops an answer not yet read.
        # So a thread reads from the start, taking the answer the moment it lands (reading only
        # after sending lost it now and then on a busy machine).
        received: list[bytes] = []

        def read() -> None:
            try:
                while chunk := sock.recv(65536):
                    received.append(chunk)
            except ConnectionResetError:
                pass  # the reset after the answer: what arrived before it is kept

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for start in range(0, len(payload), 8192):
            if received or not reader.is_alive():
                break
            try:
                sock.sendall(payload[start:start + 8192])
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has answered and closed
            time.sleep(0.002)
        reader.join(10)
        data = b"".join(received)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_refused_at_arrival_is_answered_while_every_thread_waits_for_the_model(model, tiny_bundle, tmp_path) -> None:
    release = threading.Event()
    slow = SlowTriager(model, 30.0, release)
    # Two HTTP threads, one inference slot: the first two requests hold both threads waiting.
    config = make_config(tmp_path, tiny_bundle, deadline_ms=5000, http_threads=2, queue_size=1, workers=1)
    with serving(config, triager=slow, audit=False) as (client, app):
        scheduler = app.extensions["edge"].scheduler
        with ThreadPoolExecutor(2) as pool:
            held = []
            for admitted in (lambda: scheduler.in_service == 1, lambda: scheduler.depth == 1):
                held.append(pool.submit(client.post, "/v1/triage", CASE))
                for _ in range(250):  # bounded wait: first one in service, then one queued
                    if admitted():
                        break
                    threading.Event().wait(0.02)
                assert admitted()
            shed = client.post("/v1/triage", CASE)
            strict = client.post("/v1/triage?strict=1", CASE)
            livez = client.get("/livez")  # its own thread: not behind the two held ones
            still_waiting = [not f.done() for f in held]
            release.set()
            first = [f.result(timeout=20) for f in held]
    assert all(still_waiting), "the refused requests must not have waited for the held threads"
    assert livez.status == 200
    assert shed.status == 200 and shed.json["degraded"] == "overload"
    assert shed.json["level"] <= DEGRADED_LEVEL and "clinician review now" in shed.json["reasons"][0]
    assert strict.status == 503 and strict.json["error"]["code"] == "overloaded" and int(strict.headers["Retry-After"]) >= 1
    assert all(r.status == 200 for r in first)
    assert scheduler._reserved == 0 and scheduler._reserved_cost == 0.0, "every reservation was given back"


def test_a_bad_request_gives_its_reservation_back(model, tiny_bundle, tmp_path) -> None:
    config = make_config(tmp_path, tiny_bundle)
    with serving(config, triager=SlowTriager(model, 0.0), audit=False) as (client, app):
        for _ in range(5):
            assert client.post("/v1/triage", raw=b"{not json").status == 400
            assert client.post("/v1/triage", {"complaint": "x", "hr": 10**400}).status == 400
        assert app.extensions["edge"].scheduler._reserved == 0
        assert client.post("/v1/triage", CASE).json["degraded"] is None


@pytest.mark.parametrize("payload, status, code", [
    (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Patient-Smith: " + b"a" * 300000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"POST /v1/triage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
     413, "body_too_large"),
    (b"POST /v1/triage HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz-Smith\r\n", 400, "bad_request"),
    (b"GET /livez HTTP/1.1\r\nHost: x\r\nBad Header Smith\r\n\r\n", 400, "bad_request"),
    # from 127.0.0.1, the trusted proxy: waitress's proxy-header layer refuses it
    (b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-Proto: Smith\r\n\r\n", 400,
     "bad_forwarding_header"),
])
def test_server_layer_errors_are_json_and_echo_nothing(model, tiny_bundle, tmp_path, payload, status, code) -> None:
    config = make_config(tmp_path, tiny_bundle)
    with serving(config, triager=SlowTriager(model, 0.0), audit=False) as (client, _):
        port = int(client.base.rsplit(":", 1)[1])
        got, headers, body = _raw(port, payload)
    assert got == status and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert b"Smith" not in body and b"generated by" not in body


def test_an_abandoned_reservation_lapses_at_its_deadline() -> None:
    import time

    from edge.service.scheduler import Reservation, Scheduler
    from edge.inference.triager import Triager

    scheduler = Scheduler(lambda: Triager(None), queue_size=2, initial_service_s=0.001)
    holds = [scheduler.reserve(time.perf_counter(), 0.5) for _ in range(2)]
    assert all(isinstance(h, Reservation) for h in holds)
    assert scheduler.reserve(time.perf_counter(), 0.5) == "overload", "both slots are held"
    with scheduler._cond:
        scheduler._lapse(max(h.expires for h in holds))  # as if their deadlines had passed unreleased
    assert scheduler._reserved == 0 and isinstance(scheduler.reserve(time.perf_counter(), 0.5), Reservation)


def test_the_deadline_guard_grows_with_the_measured_tail_up_to_a_cap() -> None:
    from edge.service.scheduler import Scheduler
    from edge.inference.triager import Triager

    scheduler = Scheduler(lambda: Triager(None), initial_service_s=0.001)
    assert scheduler.guard_s(0.5) == 0.05 and scheduler.guard_s(0.1) == pytest.approx(0.01)
    for _ in range(64):
        scheduler.note_tail(0.08)  # audit, listeners and encoding took 80 ms on a busy box
    assert scheduler.guard_s(0.5) == pytest.approx(0.08)
    assert scheduler.guard_s(0.1) == pytest.approx(0.03), "never more than 30 % of the deadline"


class _QueuedTask:
    def service(self) -> None:  # never run: the pool below has no threads
        raise AssertionError("not expected to run")


def test_a_backlog_is_reported_once_per_interval_not_once_per_request(caplog, monkeypatch) -> None:
    # Waitress logged "Task queue depth" under its queue lock on every request: a journal flood at
    # exactly the load where the box can least afford it (edge.service.arrival's docstring).
    from edge.service import arrival

    pool = arrival.QuietTaskDispatcher("test threads")  # no threads: every task waits
    with caplog.at_level("WARNING"):
        for _ in range(50):
            pool.add_task(_QueuedTask())
    assert not [r for r in caplog.records if "waited for a thread" in r.getMessage()]
    assert not [r for r in caplog.records if r.name == "waitress.queue"]
    assert pool.deepest == 50
    monkeypatch.setattr(arrival, "QUEUE_REPORT_S", 0.0)
    with caplog.at_level("WARNING"):
        pool.add_task(_QueuedTask())
    reports = [r.getMessage() for r in caplog.records if "waited for a thread" in r.getMessage()]
    assert reports == [reports[0]] and "up to 51 requests" in reports[0]
    assert pool.deepest == 0  # the report resets the window


def test_one_accept_event_drains_the_backlog(model, tiny_bundle, tmp_path) -> None:
    # Waitress took one connection per loop iteration; behind nginx at 320 clients, 136-261
    # connections waited in the kernel's backlog and requests stalled up to nginx's 504.
    from edge.service.app import create_app
    from edge.service.server import EdgeServer
    from edge.inference.triager import Triager
    from waitress.channel import HTTPChannel

    config = make_config(tmp_path, tiny_bundle)
    app = create_app(config, triager=Triager(model), monitor=False)
    server = EdgeServer(app, config)  # bound and listening; its event loop never runs here
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
    try:
        listener = server._server
        channels = lambda: sum(isinstance(c, HTTPChannel) for c in listener._map.values())  # noqa: E731
        deadline = time.monotonic() + 5
        while channels() < 20 and time.monotonic() < deadline:
            listener.handle_accept()  # one accept event, as the loop would deliver it
            if channels() and channels() < 20:
                break
        assert channels() == 20  # all of them from the first event that found any
    finally:
        for client in clients:
            client.close()
        server.stop()
        app.extensions["edge"].stop()
