"""POST /v1/triage answered by the WSGI fast path (edge.service.fast_triage) is the same answer,
the same error and the same headers as the Flask route gives, on a real server; the fast path
only takes over once Flask has served a request (the web pages attach their listener then)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.service.fast_triage import TriageFastPath
from tests.servicekit import make_config, serving

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/triage", {"body": {"complaint": "chest pain radiating to the left arm", "age": 60, "hr": 120}}),
    ("/v1/triage?explain=1", {"body": {"complaint": "headache", "age": 30}}),
    ("/v1/triage?deadline_ms=250&strict=0", {"body": {"complaint": "cough", "age": 5}}),
    ("/v1/triage", {"body": {"complaint": "cough", "age": 10**400}}),
    ("/v1/triage", {"raw": b'{"complaint": "cough", "age": 1e999}'}),
    ("/v1/triage", {"body": {"complaint": "cough", "Secret-Name": 1}}),
    ("/v1/triage", {"body": ["not", "an", "object"]}),
    ("/v1/triage", {"raw": b"{not json"}),
    ("/v1/triage", {"body": {"complaint": "cough"}, "content_type": "text/plain"}),
    ("/v1/triage", {"body": {"complaint": "x" * 70_000}}),
    ("/v1/triage?strict=maybe", {"body": {"complaint": "cough"}}),
    ("/v1/triage?deadline_ms=1", {"body": {"complaint": "cough"}}),
    # From the trusted front (127.0.0.1) for a ward client: waitress makes 10.1.2.3 the remote address.
    ("/v1/triage", {"body": {"complaint": "cough"}, "headers": {"X-Forwarded-For": "10.1.2.3"}, "remote": "10.1.2.3"}),
]
VARIABLE = ("request_id", "latency_ms")


def _comparable(reply: Any) -> tuple[int, Any, dict[str, str]]:
    body = reply.json
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VARIABLE}
    headers = {k.lower(): v for k, v in reply.headers.items() if k.lower() in ("content-type", "cache-control", "retry-after")}
    return reply.status, body, headers


def test_fast_path_answers_exactly_as_the_flask_route(tiny_bundle: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path, tiny_bundle, max_body_bytes=65536)
    with serving(config, audit=False) as (client, app):
        calls = {"fast": 0}
        original = TriageFastPath.triage

        def counting(self: TriageFastPath, environ: dict[str, Any], start_response: Any) -> Any:
            calls["fast"] += 1
            return original(self, environ, start_response)

        assert not app._got_first_request
        first = client.get("/livez")  # Flask's first request: from here on the fast path answers
        assert first.status == 200 and app._got_first_request
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TriageFastPath, "triage", counting)
            fast = [_comparable(client.post(path, **{k: v for k, v in kwargs.items() if k != "remote"}))
                    for path, kwargs in REQUESTS]
        assert calls["fast"] == len(REQUESTS), "every POST /v1/triage went through the fast path"
        # The same requests through Flask: the app itself, bypassing the middleware.
        flask = []
        with app.test_client() as test_client:
            for path, kwargs in REQUESTS:
                data = kwargs.get("raw") or json.dumps(kwargs["body"]).encode()
                response = test_client.post(path, data=data, content_type=kwargs.get("content_type", "application/json"),
                                            environ_base={"REMOTE_ADDR": kwargs.get("remote", "127.0.0.1")})
                flask.append(_comparable(type("R", (), {"status": response.status_code, "headers": dict(response.headers),
                                                       "json": response.get_json(silent=True)
                                                       if response.is_json else None})()))
    for request, via_fast, via_flask in zip(REQUESTS, fast, flask):
        assert via_fast == via_flask, request[0]
    statuses = {status for status, _, _ in fast}
    assert {200, 400, 403, 413, 415} <= statuses, statuses
