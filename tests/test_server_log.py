"""The server layer's journal lines never carry text a client sent (edge.service.server_log): a
malformed proxy header from 127.0.0.1 on a real server, and waitress's per-path messages."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.service.server_log import WithholdRequestText
from tests.servicekit import make_config, serving

CANARY = "SMITH-JOHN-1962"


def test_a_malformed_proxy_header_is_logged_without_its_value(tiny_bundle: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(make_config(tmp_path, tiny_bundle), audit=False) as (client, _app):
        reply = client.get("/livez", headers={"X-Forwarded-Proto": CANARY})
    assert reply.status == 400 and reply.json["error"]["code"] == "bad_forwarding_header"
    assert "Malformed proxy header" in caplog.text, "the warning itself is kept"
    assert CANARY.lower() not in caplog.text.lower()  # waitress lowercases the value it logs


def test_paths_in_waitress_messages_are_withheld() -> None:
    for message in (f"Client disconnected while serving /v1/{CANARY}", f"Exception while serving /{CANARY}"):
        record = logging.LogRecord("waitress", logging.INFO, __file__, 1, message, None, None)
        assert WithholdRequestText().filter(record)
        assert CANARY not in record.getMessage() and "withheld" in record.getMessage()
    kept = logging.LogRecord("waitress", logging.WARNING, __file__, 1, "%d thread(s) still running", (3,), None)
    WithholdRequestText().filter(kept)
    assert kept.getMessage() == "3 thread(s) still running"
