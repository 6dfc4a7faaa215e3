"""POST /v1/triage without Flask's per-request machinery: the one route that must keep up with
a ward's worth of clients on two cores.

Measured under 10x overload (320 keep-alive clients, every answer through one GIL), Flask and
Werkzeug's request and response objects, context locals, routing and hooks were about a third
of the CPU each answer cost — more than the rules, the audit row and the JSON together. This
WSGI middleware answers ``POST /v1/triage`` itself, through the same pieces the Flask route uses
(access check, ``parse_case``, :func:`edge.service.http_request.api_request`, the error shape, the
telemetry and the deadline guard's tail), and hands every other request to the Flask app
unchanged. ``tests/test_fast_triage.py`` holds the two paths to the same answers and errors.

A request refused at arrival and read by the event loop is answered in the loop's own thread
(``edge.service.answer_in_loop``): it sets ``environ[LATER]`` and the answer is handed to that
callable once its audit row is committed, instead of being returned.

Until Flask has served its first request the route goes to Flask too: the web pages attach their
staff-queue listener on the first request of any kind, and a decision must not slip past it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from edge.clinical.case import parse_case
from edge.errors import EdgeError
from edge.service import answering
from edge.service.http_request import api_request, body_too_large_message, decode_json, require_json
from edge.service.scheduler import Overloaded
from edge.service.state import ServiceState

log = logging.getLogger(__name__)

PATH = "/v1/triage"
ENDPOINT = "triage"  # the Flask endpoint's name: the same telemetry labels either way
StartResponse = Callable[..., Any]
Response = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body
Deliver = Callable[[str, list[tuple[str, str]], bytes], None]
LATER = "edge.later"  # environ key: where to deliver an answer sent later (edge.service.answer_in_loop)


class _Later(list):
    """What the app returns when the answer goes to ``environ[LATER]`` instead (empty: a server
    that ignored the key would send nothing, and the channel's own answer must not be doubled)."""


LATER_RESPONSE = _Later()


def _is_json(content_type: str) -> bool:
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _first_values(query: str) -> dict[str, str]:
    """Each query parameter's first value, as Flask's ``request.args.get`` reads it."""
    args: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        args.setdefault(name, value)
    return args


class TriageFastPath:
    def __init__(self, app: Flask, service: ServiceState) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = service.config.max_body_bytes

    def ready(self) -> bool:
        """Whether POST /v1/triage is answered here yet (module docstring)."""
        return bool(getattr(self.app, "_got_first_request", False))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" or not self.ready():
            return self.app(environ, start_response)
        return self.triage(environ, start_response)

    def _body(self, environ: dict[str, Any]) -> Any:
        require_json(_is_json(environ.get("CONTENT_TYPE", "")))
        try:
            length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            length = 0
        if length > self.max_body_bytes:
            raise EdgeError("body_too_large", body_too_large_message(self.max_body_bytes), http_status=413)
        return decode_json(environ["wsgi.input"].read(length) if length else b"")

    def triage(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The answer, or — where the server layer asked for it (``environ[LATER]``, a request
        refused at arrival) and the request is valid — :data:`LATER_RESPONSE`: ``environ[LATER]``
        is then called with (status, headers, body) once the answer's audit row is committed."""
        service = self.service
        started = environ.get("edge.arrived") or time.perf_counter()
        later: Deliver | None = environ.get(LATER)
        service.telemetry.begin()
        try:
            service.access.check(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"), admin=False)
            case = parse_case(self._body(environ))
            request = api_request(service, [case], source=answering.source_tag(environ.get("HTTP_X_EDGE_SOURCE")),
                                  args=_first_values(environ.get("QUERY_STRING", "")), environ=environ, started=started)
            if later is not None and request.shed is not None:
                answering.answer_later(service, request, lambda answer: later(*self._reply(answer, started)))
                return LATER_RESPONSE
            status, headers, body = self._reply(answering.answer(service, request), started)
        except EdgeError as error:
            status, headers, body = self._error(error, started)
        except Exception as error:
            log.error("unexpected %s handling %s", type(error).__name__, ENDPOINT)  # type only: no PHI
            status, headers, body = self._error(EdgeError("internal_error", "Internal error; the event was logged."),
                                                started, http_status=500)
        finally:
            reservation = environ.get("edge.reservation")
            if reservation is not None:  # refused before the scheduler (bad input): free its queue slot now
                reservation.release()
        start_response(status, headers)
        return [body]

    def _reply(self, answer: answering.Answer, started: float) -> Response:
        response = self._response(answer.results[0].to_dict(), 200, [], started)
        # what audit, listeners and encoding added after the result
        self.service.scheduler.note_tail(time.perf_counter() - started - answer.answered_s)
        return response

    def _error(self, error: EdgeError, started: float, http_status: int | None = None) -> Response:
        headers = [("Retry-After", str(int(error.retry_after_s)))] if isinstance(error, Overloaded) else []
        return self._response(error.to_dict(), http_status or error.http_status, headers, started)

    def _response(self, payload: dict[str, Any], status: int, headers: list[tuple[str, str]], started: float) -> Response:
        body = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store")]
        self.service.telemetry.end(ENDPOINT, status, time.perf_counter() - started)
        return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown').upper()}", headers, body  # status line as Werkzeug's
