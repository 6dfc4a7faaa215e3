"""The server layer's part of the latency promise: waitress hooks that start the clock when a
request reaches the box and decide admission there, before the request waits for a WSGI thread.

Why a hook and not only the scheduler: waitress queues completed requests for its thread pool;
measured at 128 clients, 96.7 % of answers were late although the service's own latency (timed
from the thread's pickup) said p99 233 ms. So:

* :class:`ArrivalParser` stamps ``arrived`` (``time.perf_counter()``) when the request is complete,
  taken back to when the kernel received its last segment (:class:`EdgeChannel` reads with
  ``recvmsg`` and ``SO_TIMESTAMPNS``: time waiting to be read counts too);
  :class:`ArrivalTask` passes it to the app as ``environ["edge.arrived"]``: deadlines, latency_ms
  and the latency histogram all count from there.
* :class:`ArrivalDispatcher` asks the scheduler at arrival (``Scheduler.reserve``). Admitted
  decision requests hold a reservation (the queue admission sees includes them from arrival);
  refused ones are answered at once (degraded, or 503 in strict mode) — never behind requests
  waiting for the model: a refused ``POST /v1/triage`` by the event loop itself
  (``edge.service.answer_in_loop``), anything else by a small separate pool.
* :class:`JsonErrorTask`: waitress's own 400/413/431/500 are JSON with the API's error shape,
  and never echo what the client sent.

Under overload the event loop is the one thread that never waits: it always has bytes to read.
CPython hands the GIL to a thread that waited (for a lock, a condition, a socket) only when the
running thread blocks or at the 5 ms switch interval, so 40 handler threads, each waiting a few
times per request, starved behind it. Waitress's own "Task queue depth" warning — written under
its queue lock on every request — happened to be that blocking point; silenced, answers fell
from ~470/s to 37-70/s at 320 clients with the loop thread at 100 % CPU. So a pool with a backlog
yields the GIL on purpose (``time.sleep(0)``) after each request it queues — back-pressure: the
loop reads no faster than the handlers answer — and reports the backlog itself, at most once per
``QUEUE_REPORT_S``, instead of a journal line per request. (Yielding at most every 2 or 10 ms
instead was measured too: 467 and 313 answers/s, service p99 3.9 and 2.2 s.)
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.wasyncore import _DISCONNECTED

from edge.errors import EdgeError
from edge.service.event_loop import mark

from edge.inference.triager import MAX_EXPLAIN_SPANS

log = logging.getLogger(__name__)

DECISION_PATHS = {"/v1/triage": False, "/v1/triage/batch": True}  # path -> is a batch
PROBE_PATHS = ("/livez", "/readyz")  # the supervisor's probes get a thread of their own
SHED_THREADS = 8  # refused requests the loop does not answer itself (batches, FHIR, pages, pipelined ones)
QUEUE_REPORT_S = 10.0  # at most one "requests waiting for a thread" log line per this many seconds
# Linux's SO_TIMESTAMPNS (= its SCM_ message type; the same number on x86-64 and arm64, 32-bit too):
# the kernel stamps each received segment with the wall clock; Python names neither constant.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
KERNEL_STAMP = struct.Struct("@ll")  # struct timespec: seconds, nanoseconds (native longs)
STAMP_SPACE = socket.CMSG_SPACE(KERNEL_STAMP.size)
MAX_KERNEL_WAIT_S = 30.0  # a longer wait means the wall clock stepped: fall back to the read time

SERVER_ERRORS = {  # waitress status -> (code, message); fixed text: nothing from the request
    400: ("bad_request", "The request is not valid HTTP/1.1; check the request line, headers and chunked body."),
    413: ("body_too_large", "The body is larger than this server accepts."),
    431: ("headers_too_large", "The request headers are larger than this server accepts."),
    500: ("internal_error", "Internal error; the event was logged."),
    501: ("not_implemented", "This transfer encoding is not supported; send a Content-Length body."),
}


class ArrivalParser(HTTPRequestParser):
    arrived: float | None = None
    shed: str | None = None  # why the server layer refused the request at arrival
    reservation: Any = None  # what it admitted at arrival (edge.service.scheduler.Reservation)

    def __init__(self, adj: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(adj)
        self._clock = clock

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if self.completed and self.arrived is None:
            self.arrived = self._clock()
        return consumed


def enable_kernel_stamps(sock: socket.socket) -> None:
    """Ask the kernel to stamp received data (Linux; inherited by accepted connections). Where it
    cannot, arrival is the read time (``arrival_from_kernel``)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        pass


def arrival_from_kernel(stamp_s: float | None) -> float:
    """``time.perf_counter()`` of the moment the kernel received data stamped ``stamp_s`` (wall
    clock); the read time itself when there is no stamp or the wall clock has stepped since."""
    now = time.perf_counter()
    if stamp_s is None:
        return now
    waited = time.time() - stamp_s
    return now - waited if 0.0 <= waited <= MAX_KERNEL_WAIT_S else now


class ArrivalTask(WSGITask):
    def write(self, data: bytes) -> None:
        # A whole small answer goes out as one send: header and body in one segment, one syscall.
        if (not self.wrote_header and self.complete and data and self.has_body and not self.chunked_response
                and self.content_length == len(data)):
            self.wrote_header = True
            self.content_bytes_written += len(data)
            self.channel.write_soon(self.build_response_header() + data)
            return
        super().write(data)

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        request = self.request
        environ["edge.arrived"] = getattr(request, "arrived", None) or time.perf_counter()
        environ["edge.shed"] = getattr(request, "shed", None)
        environ["edge.reservation"] = getattr(request, "reservation", None)
        return environ

    def execute(self) -> None:
        try:
            super().execute()
        finally:  # a request refused before it reached the scheduler (bad JSON…) gives its slot back
            reservation = getattr(self.request, "reservation", None)
            if reservation is not None:
                reservation.release()


def error_body(code: str, message: str) -> bytes:
    """A server-layer error as a body in the API's error shape (``EdgeError.to_dict``)."""
    return json.dumps(EdgeError(code, message).to_dict()).encode()


class JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        error = self.request.error
        body = error_body(*SERVER_ERRORS.get(error.code, ("http_error", "The request could not be processed.")))
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class EdgeChannel(HTTPChannel):
    """A connection whose requests count from when the kernel received them: a request that
    waited in the socket's receive queue while the loop was busy has spent that time of its
    deadline too, and admission must see it (``recv`` keeps the kernel's stamp of the last
    segment read; each request's parser takes its arrival from it)."""

    task_class = ArrivalTask
    error_task_class = JsonErrorTask
    kernel_received: float | None = None  # wall-clock stamp of the last segment read

    def parser_class(self, adj: Any) -> ArrivalParser:  # waitress calls self.parser_class(self.adj)
        return ArrivalParser(adj, self.arrival_time)

    def arrival_time(self) -> float:
        return arrival_from_kernel(self.kernel_received)

    def recv(self, buffer_size: int) -> bytes:
        try:
            data, ancillary, _flags, _address = self.socket.recvmsg(buffer_size, STAMP_SPACE)
        except OSError as why:  # as wasyncore's recv
            if why.args[0] in _DISCONNECTED:
                self.handle_close()
                return b""
            raise
        if not data:  # the peer closed
            self.handle_close()
            return b""
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= KERNEL_STAMP.size:
                seconds, nanoseconds = KERNEL_STAMP.unpack_from(payload)
                self.kernel_received = seconds + nanoseconds * 1e-9
        return data

    def service(self) -> None:
        # A client that vanished before a thread got to it skips the task (and ArrivalTask's
        # release): give the slot back here; the scheduler also lapses it at its deadline.
        request = self.requests[0] if self.requests else None
        try:
            super().service()
        finally:
            reservation = getattr(request, "reservation", None)
            if reservation is not None:
                reservation.release()
            mark(self)  # readable again (or closing): the event loop must watch it again

    def write_soon(self, data: Any) -> int:
        written = super().write_soon(data)
        if self.total_outbufs_len:  # not all sent from this thread: the loop sends the rest
            mark(self)
        return written


Admit = Callable[[ArrivalParser], None]
AnswerNow = Callable[[HTTPChannel, ArrivalParser], bool]  # (channel, refused request) -> taken (edge.service.answer_in_loop)


class QuietTaskDispatcher(ThreadedTaskDispatcher):
    """Waitress's thread pool without its per-request "Task queue depth" warning (written under
    the queue lock, once per request, under exactly the load where the journal can least afford
    it): the deepest backlog is logged at most once per ``QUEUE_REPORT_S`` instead."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.deepest = 0  # since the last report
        self._reported = time.monotonic()

    def add_task(self, task: Any) -> None:
        with self.lock:
            self.queue.append(task)
            self.queue_cv.notify()
            waiting = len(self.queue) - (len(self.threads) - self.stop_count - self.active_count)
            self.deepest = max(self.deepest, waiting)
        if waiting > 0:
            time.sleep(0)  # a backlog: let a handler thread have the GIL now (module docstring)
        now = time.monotonic()
        if self.deepest > 0 and now - self._reported >= QUEUE_REPORT_S:
            log.warning("%s: up to %d requests waited for a thread in the last %.0f s", self.name, self.deepest,
                        now - self._reported)
            self.deepest, self._reported = 0, now


class ArrivalDispatcher(QuietTaskDispatcher):
    """Waitress's task queue, with admission at arrival. ``add_task`` runs in the event loop
    thread (with the channel's request lock held): ``admit`` must only look, never block."""

    def __init__(self, admit: Admit | None) -> None:
        super().__init__("http threads")
        self.admit = admit
        self.answer_now: AnswerNow | None = None  # refused requests the event loop answers itself
        self.shed_pool = QuietTaskDispatcher("shed threads")
        self.shed_pool.set_thread_count(SHED_THREADS)
        # Liveness must not queue behind decision requests: under overload a probe that waits is
        # a restart the box does not need.
        self.probe_pool = QuietTaskDispatcher("probe thread")
        self.probe_pool.set_thread_count(1)

    def add_task(self, task: Any) -> None:
        requests = getattr(task, "requests", None)
        request = requests[0] if requests else None
        if isinstance(request, ArrivalParser) and not request.error and request.command == "GET" \
                and request.path in PROBE_PATHS:
            self.probe_pool.add_task(task)
            return
        if self.admit is not None and isinstance(request, ArrivalParser) and request.arrived is not None:
            try:
                self.admit(request)
            except Exception as error:  # admission must never lose a request: fall back to the pool
                log.error("admission at arrival failed: %s", type(error).__name__)
            if request.shed is not None:
                if self.answer_now is None or not self.answer_now(task, request):
                    self.shed_pool.add_task(task)
                return
        super().add_task(task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        self.shed_pool.shutdown(cancel_pending=cancel_pending, timeout=min(timeout, 2))
        self.probe_pool.shutdown(cancel_pending=cancel_pending, timeout=min(timeout, 2))
        return super().shutdown(cancel_pending=cancel_pending, timeout=timeout)


def scheduler_admission(scheduler: Any, default_deadline_s: float, deadline_bounds_s: tuple[float, float],
                        has_model: Callable[[], bool]) -> Admit:
    """``admit`` for :class:`ArrivalDispatcher`: decision requests get a reservation or a shed
    reason from ``scheduler.reserve``; anything else (and anything malformed: the app answers
    400 for it) goes to the pool untouched."""

    def admit(request: ArrivalParser) -> None:
        if request.error or request.command != "POST" or request.path not in DECISION_PATHS:
            return
        if not has_model():  # rules-only service: every answer is fast, nothing to protect
            return
        query = parse_qs(request.query or "", keep_blank_values=True)
        deadline_s = default_deadline_s
        if "deadline_ms" in query:
            try:
                deadline_s = float(query["deadline_ms"][-1]) / 1000.0
            except ValueError:
                return
            if not deadline_bounds_s[0] <= deadline_s <= deadline_bounds_s[1]:
                return
        explain = query.get("explain", ["0"])[-1].strip().lower() in ("1", "true", "yes")
        # The body is not parsed yet: bound the explanation's variants by its size (a word takes
        # at least two bytes); the thread's submit prices it exactly and replaces this.
        variants = min(MAX_EXPLAIN_SPANS + 13, max(1, (request.content_length or 0) // 8)) if explain else 0
        verdict = scheduler.reserve(request.arrived, deadline_s, cases=1, variants=variants)
        if isinstance(verdict, str):
            request.shed = verdict
        else:
            request.reservation = verdict

    return admit
