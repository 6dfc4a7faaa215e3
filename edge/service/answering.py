"""The one triage path every caller takes: the JSON API, the FHIR route, the kiosk and the staff
board. Admission and the deadline (the scheduler), the degraded answer when the model cannot
answer in time, the audit record, the decision counters and the result listeners (staff queue)
happen here and only here, so no page can triage by a side door.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from edge.clinical.case import TriageCase
from edge.inference.triager import TriageResult
from edge.service.scheduler import Reservation
from edge.service.state import ServiceState

log = logging.getLogger(__name__)

_SOURCE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def source_tag(raw: str | None) -> str:
    """A fixed-alphabet tag (kiosk, staff, api, an integrator's name): never free text in the audit log."""
    return _SOURCE_UNSAFE.sub("", raw or "")[:32] or "api"


@dataclass(frozen=True)
class Request:
    """What one caller asks for, and what the server layer already decided about it."""

    cases: Sequence[TriageCase]
    source: str
    deadline_s: float
    started: float  # perf_counter at arrival: the deadline runs from here
    strict: bool = False  # a deadline miss is an error instead of a degraded answer
    explain: bool = False
    shed: str | None = None  # refused at arrival by the server layer (edge.service.arrival)
    reservation: Reservation | None = None  # queue slot admitted at arrival


@dataclass(frozen=True)
class Answer:
    results: list[TriageResult]
    answered_s: float  # arrival to the last result (before audit, listeners and encoding)

    def to_dicts(self) -> list[dict]:
        return [result.to_dict() for result in self.results]


def _decide(service: ServiceState, request: Request) -> list[TriageResult]:
    for case in request.cases:  # a scale the bundle lacks is the client's 400, before any queueing
        service.runtime.triager.check_scale(case)
    return service.scheduler.submit(list(request.cases), deadline_s=request.deadline_s, strict=request.strict,
                                    explain=request.explain, started=request.started, shed=request.shed,
                                    reservation=request.reservation)


def _conclude(service: ServiceState, request: Request, results: list[TriageResult]) -> Answer:
    """After the audit rows are committed: counters, listeners (staff queue), latency."""
    answered_s = max(result.latency_ms for result in results) / 1000.0
    for case, result in zip(request.cases, results):
        service.telemetry.decision(result.degraded)
        service.notify_listeners(case, result, request.source)
    # latency_ms in the answer runs to here: the audit row's group commit is part of answering
    # (the row keeps the latency at decision time, before its own commit).
    ready_ms = (time.perf_counter() - request.started) * 1000.0
    for result in results:
        result.latency_ms = ready_ms
    return Answer(results, answered_s)


def _audit_failed(error: Exception) -> None:
    # The answer still goes out: withholding it is the worse harm.
    log.error("audit write failed: %s", type(error).__name__)


def answer(service: ServiceState, request: Request) -> Answer:
    """Results for ``request.cases`` in order; raises the scheduler's or the case's EdgeError."""
    results = _decide(service, request)
    if service.audit is not None:
        for case, result in zip(request.cases, results):
            try:
                service.audit.record(case, result, request.source)
            except Exception as error:
                _audit_failed(error)
    return _conclude(service, request, results)


def answer_later(service: ServiceState, request: Request, then: Callable[[Answer], None]) -> None:
    """:func:`answer` for a request refused at arrival (``request.shed``), without waiting for
    its audit rows: ``then(answer)`` runs once they are committed (on the audit writer's thread).
    For the event loop, which must never block (edge.service.answer_in_loop); a refused request
    never waits for the model, so deciding it here takes no longer than its rules. Raises the
    scheduler's or the case's EdgeError at once, as :func:`answer` does."""
    if request.shed is None:
        raise ValueError("answer_later answers only requests refused at arrival: others wait for the model")
    results = _decide(service, request)

    def committed(error: Exception | None) -> None:
        if error is not None:
            _audit_failed(error)
        then(_conclude(service, request, results))

    if service.audit is None:
        committed(None)
        return
    try:
        service.audit.record_later([(case, result, request.source) for case, result in zip(request.cases, results)],
                                   committed)
    except Exception as error:
        committed(error)
