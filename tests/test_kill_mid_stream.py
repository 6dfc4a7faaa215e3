"""``kill -9`` of a served process in the middle of an overload loses no answered decision: every
request id a client received — model answers, and refused requests that the event loop answers
once their row's group commit lands (edge.service.answer_in_loop) — is in the audit log
afterwards. A real ``edge-triage serve``, real SQLite, real SIGKILL."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bench.server import HOST, start

CLIENTS = 24
BODY = json.dumps({"complaint": "chest pain and short of breath", "age": 64, "hr": 118}).encode()


def _client(port: int, stop: threading.Event, answers: list[tuple[str, str | None]]) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/triage", body=BODY, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            return  # the service is gone
        if response.status == 200:
            answers.append((payload["request_id"], payload["degraded"]))


@pytest.mark.parametrize("round_", range(3))  # each kill lands at another moment of the group commit
def test_every_answer_received_before_kill_9_is_in_the_audit_log(tiny_bundle: Path, round_: int) -> None:
    # A short deadline and few threads: most requests are refused at arrival and answered by the
    # loop. synchronous=FULL: each commit waits for its fsync, so a kill often lands inside one.
    handle = start(tiny_bundle, extra={"deadline_ms": 20, "deadline_min_ms": 10, "http_threads": 4, "queue_size": 4,
                                       "audit_synchronous": "FULL"})
    try:
        answers: list[tuple[str, str | None]] = []
        stop = threading.Event()
        clients = [threading.Thread(target=_client, args=(handle.port, stop, answers), daemon=True)
                   for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        until = time.monotonic() + 20
        while time.monotonic() < until and (len(answers) < 400 or sum(d is not None for _, d in answers) < 50):
            time.sleep(0.02)
        handle.process.kill()  # SIGKILL, mid-stream: clients are still sending
        handle.process.wait(timeout=10)
        stop.set()
        for thread in clients:
            thread.join(10)
        received = list(answers)
        refused = sum(degraded is not None for _, degraded in received)
        assert len(received) >= 400 and refused >= 50, f"{len(received)} answers, {refused} degraded: not the load intended"
        with sqlite3.connect(handle.settings["audit_db"]) as db:  # opening recovers the WAL, as a restart would
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            logged = {row[0] for row in db.execute("SELECT request_id FROM decisions")}
        lost = [request_id for request_id, _ in received if request_id not in logged]
        assert lost == [], f"{len(lost)} of {len(received)} answered decisions missing from the audit log"
    finally:
        handle.stop()
