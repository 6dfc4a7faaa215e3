"""Requests refused at arrival are answered by the event loop (edge.service.answer_in_loop), on a
real server: no pool thread takes them, the answer is sent only once its audit row is committed,
errors are answered at once, and pipelined requests on one connection keep their order."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from edge.inference.session import TriageModel
from edge.inference.triager import DEGRADED_LEVEL
from tests.servicekit import Client, SlowTriager, make_config, serving_with_server, wait_for

CASE = {"complaint": "ankle sprain", "age": 30, "pain": 3}


@pytest.fixture(scope="module")
def model(tiny_bundle: Path) -> TriageModel:
    return TriageModel.load(tiny_bundle)


@pytest.fixture
def busy(model: TriageModel, tiny_bundle: Path, tmp_path: Path) -> Iterator[tuple[Client, Any, list[Any]]]:
    """A server whose two HTTP threads and one queue slot are held by requests waiting for the
    model, so every further triage request is refused at arrival; yields (client, app, what
    reached the shed pool, the server)."""
    release = threading.Event()
    config = make_config(tmp_path, tiny_bundle, deadline_ms=5000, http_threads=2, queue_size=1, workers=1)
    with serving_with_server(config, triager=SlowTriager(model, 30.0, release)) as (client, app, server):
        pooled: list[Any] = []
        pool_add = server.dispatcher.shed_pool.add_task
        server.dispatcher.shed_pool.add_task = lambda task: (pooled.append(task), pool_add(task))
        assert client.get("/livez").status == 200  # Flask's first request: the fast path answers from here
        scheduler = app.extensions["edge"].scheduler
        with ThreadPoolExecutor(2) as pool:
            held: list[Future] = []
            for admitted in (lambda: scheduler.in_service == 1, lambda: scheduler.depth == 1):
                held.append(pool.submit(client.post, "/v1/triage", CASE))
                assert wait_for(admitted, 5.0, 0.02)
            try:
                yield client, app, pooled, server
            finally:
                release.set()
                assert all(f.result(timeout=20).status == 200 for f in held)


def test_a_refused_request_is_answered_by_the_loop_once_its_row_is_committed(busy) -> None:
    client, app, pooled, _server = busy
    audit = app.extensions["edge"].audit
    with ThreadPoolExecutor(1) as pool:
        with audit._lock:  # the writer cannot commit while this is held
            reply = pool.submit(client.post, "/v1/triage", CASE)
            threading.Event().wait(0.5)
            assert not reply.done(), "the answer went out before its audit row was committed"
        answer = reply.result(timeout=10)
    assert answer.status == 200 and answer.json["degraded"] == "overload"
    assert answer.json["level"] <= DEGRADED_LEVEL and "clinician review now" in answer.json["reasons"][0]
    assert audit.get(answer.json["request_id"]) is not None
    assert answer.json["latency_ms"] >= 400, "latency runs to the committed answer (the writer was held 0.5 s)"
    assert pooled == [], "the event loop answered it: no shed thread"


def test_refused_errors_and_strict_refusals_are_answered_at_once_by_the_loop(busy) -> None:
    client, app, pooled, _server = busy
    strict = client.post("/v1/triage?strict=1", CASE)
    bad = client.post("/v1/triage", raw=b"{not json")
    huge = client.post("/v1/triage", {"complaint": "cough", "hr": 10**400})
    assert strict.status == 503 and strict.json["error"]["code"] == "overloaded" and int(strict.headers["Retry-After"]) >= 1
    assert bad.status == 400 and bad.json["error"]["code"] == "invalid_json"
    assert huge.status == 400 and "10000" not in huge.body.decode()
    assert pooled == []
    assert app.extensions["edge"].audit.count() == 0, "nothing answered was audited: none was a decision"


def test_pipelined_refused_requests_are_answered_in_order(busy) -> None:
    client, app, pooled, _server = busy
    port = int(client.base.rsplit(":", 1)[1])
    bodies = [json.dumps({**CASE, "complaint": name}).encode() for name in ("cough", "sore throat")]
    requests = b"".join(b"POST /v1/triage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(requests)  # both in one segment: the loop reads both at once
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answers = [json.loads(part.partition(b"\r\n\r\n")[2]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [a["degraded"] for a in answers] == ["overload", "overload"]
    audit = app.extensions["edge"].audit
    rows = [audit.get(a["request_id"]) for a in answers]
    assert rows[0]["seq"] < rows[1]["seq"], "answered in the order they were sent"
    assert len(pooled) <= 1, "the first was answered by the loop (the second may go to the pool after it)"


def test_the_loop_answers_exactly_as_the_shed_pool(busy) -> None:
    client, _app, pooled, server = busy
    requests = [("/v1/triage", {"body": CASE}), ("/v1/triage?explain=1", {"body": {"complaint": "chest pain", "age": 70}}),
                ("/v1/triage?strict=1", {"body": CASE}), ("/v1/triage", {"raw": b"[1, 2"}),
                ("/v1/triage", {"body": {"complaint": "cough", "Secret-Name": 1}})]

    def comparable(reply: Any) -> tuple[int, Any, dict[str, str]]:
        body = reply.json
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in ("request_id", "latency_ms")}
        # Date and Content-Length vary with the moment and latency_ms's digits
        return reply.status, body, {k.lower(): v for k, v in reply.headers.items() if k.lower() not in ("date", "content-length")}

    in_loop = [comparable(client.post(path, **kwargs)) for path, kwargs in requests]
    assert pooled == []
    server.dispatcher.answer_now = None  # as before: every refused request to the shed pool
    by_pool = [comparable(client.post(path, **kwargs)) for path, kwargs in requests]
    assert len(pooled) == len(requests)
    assert in_loop == by_pool
