"""Reading the HTTP request for a triage: the JSON body, the query flags and the deadline, and
the facts the server layer attached at arrival. Shared by the API, the FHIR route and the web
pages so each reads a request the same way and hands the same ``answering.Request`` on."""

from __future__ import annotations

import json
import time
from typing import Any, Mapping, Sequence

from flask import g, request

from edge.clinical.case import TriageCase
from edge.errors import EdgeError
from edge.service.answering import Answer, Request, answer
from edge.service.config import ServiceConfig
from edge.service.state import ServiceState


def require_json(is_json: bool) -> None:
    if not is_json:
        raise EdgeError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.",
                        http_status=415)


def decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise EdgeError("invalid_json", "The body is not valid JSON.") from None


def body_too_large_message(max_body_bytes: int) -> str:
    return f"The body is larger than {max_body_bytes} bytes."


def json_body() -> Any:
    """The Flask request's JSON body (the content type is checked before the body is read)."""
    require_json(request.is_json)
    return decode_json(request.get_data(cache=False))


def flag(name: str, args: Mapping[str, str] | None = None) -> bool:
    value = (request.args if args is None else args).get(name, "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    raise EdgeError("invalid_parameter", f"Query parameter '{name}' must be 0 or 1.", field=name)


def deadline_s(config: ServiceConfig, args: Mapping[str, str] | None = None) -> float:
    raw = (request.args if args is None else args).get("deadline_ms")
    if raw is None:
        return config.deadline_ms / 1000.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not config.deadline_min_ms <= value <= config.deadline_max_ms:  # NaN fails too
        raise EdgeError("invalid_deadline", f"'deadline_ms' must be a number from {config.deadline_min_ms:g} "
                        f"to {config.deadline_max_ms:g}.", field="deadline_ms")
    return value / 1000.0


def api_request(service: ServiceState, cases: Sequence[TriageCase], *, source: str, args: Mapping[str, str],
                environ: Mapping[str, Any], started: float) -> Request:
    """The ``answering.Request`` for an API request: its ``deadline_ms``, ``strict`` and
    ``explain`` query parameters (``args``, the first value of each) and what the server layer
    put in ``environ`` at arrival. The Flask routes and the WSGI fast path
    (edge.service.fast_triage) both read a request here."""
    return Request(
        cases=cases, source=source, deadline_s=deadline_s(service.config, args), strict=flag("strict", args),
        explain=flag("explain", args), started=started,
        shed=environ.get("edge.shed"), reservation=environ.get("edge.reservation"))


def decide(service: ServiceState, cases: Sequence[TriageCase], *, source: str, args: Mapping[str, str],
           environ: Mapping[str, Any], started: float) -> Answer:
    """Answer ``cases`` for an API request (:func:`api_request`)."""
    return answer(service, api_request(service, cases, source=source, args=args, environ=environ, started=started))


def triage(service: ServiceState, cases: Sequence[TriageCase], *, source: str, from_query: bool = True,
           explain: bool = False) -> Answer:
    """Answer ``cases`` for this (Flask) HTTP request. ``from_query``: the API's ``deadline_ms``,
    ``strict`` and ``explain`` parameters apply; the pages use the configured deadline and ``explain``."""
    started = g.get("started") or time.perf_counter()
    if from_query:
        result = decide(service, cases, source=source, args=request.args, environ=request.environ, started=started)
    else:
        result = answer(service, Request(
            cases=cases, source=source, deadline_s=service.config.deadline_ms / 1000.0, explain=explain,
            started=started, shed=request.environ.get("edge.shed"),
            reservation=request.environ.get("edge.reservation")))
    g.answered_s = result.answered_s  # the app's after_request feeds the scheduler's deadline guard
    return result
