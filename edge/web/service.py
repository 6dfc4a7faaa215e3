"""How the pages reach the service: through its own HTTP routes, dispatched in-process.

The kiosk and the staff board must take exactly the path a machine client takes — admission
control, deadline, degraded answers, audit record, result listeners — so a page never triages
by a side door. We call the app's WSGI callable directly (no socket) as a loopback client, after
the page's own access and CSRF checks have passed, and tag the call with ``X-Edge-Source``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from werkzeug.test import Client


def dispatch(method: str, path: str, *, body: Any = None, source: str,
             query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    client = Client(current_app)
    response = client.open(
        path, method=method, json=body, query_string=query or {},
        headers={"X-Edge-Source": source, "Accept": "application/json"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    try:
        payload = response.get_json(silent=True)
    finally:
        response.close()
    if not isinstance(payload, dict):
        payload = {"error": {"code": "bad_gateway", "message": "The service gave no JSON answer."}}
    return response.status_code, payload


def edge_state() -> Any:
    return current_app.extensions.get("edge")
