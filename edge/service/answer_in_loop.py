"""Requests refused at arrival are answered by the event loop itself, without a thread hand-off.

Under overload most requests are refused at arrival (``edge.service.arrival``: the model cannot
answer them by their deadline) and get the rules-only answer, "clinician review now". That answer
costs ~0.35 ms of Python, but sending each through a pool thread cost more than the answer: the
loop hands the request over, the thread wakes and takes the GIL, builds a WSGI task, answers,
then sleeps on its audit row's commit and wakes again — every hand-off a wait for the GIL behind
40 threads. At 320 clients on two cores the CPU stood ~25 % idle while answers per second were
the limit (787-947/s; a closed loop of 320 needs ~800 for a p99 inside the 500 ms deadline).
Answered here: 1,045-1,165/s on the same machine in the same hour.

So a refused ``POST /v1/triage`` is answered here, in the loop's thread, through the same WSGI
app (proxy headers, access check, ``parse_case``, the scheduler's degraded answer, error shapes;
``edge.service.fast_triage``), and its audit row is queued without waiting
(``AuditLog.record_later``). The answer is sent when the row's group commit lands — from the audit
writer's thread, which appends the bytes and wakes the loop to send them — so an answer is still
never sent before its row is committed. Everything else refused at arrival (batches, the FHIR
route, pages, requests read by a handler thread) keeps the shed pool.

The loop never waits here: a refused request never waits for the model, the locks taken are the
scheduler's, the telemetry's and the audit queue's (held for microseconds), and the app runs
after the read that completed the request, outside the channel's request lock
(``EpollLoop.call_soon``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from waitress.channel import ClientDisconnected, HTTPChannel

from edge.service.arrival import SERVER_ERRORS, ArrivalParser, ArrivalTask, EdgeChannel, error_body
from edge.service.event_loop import EpollLoop, mark
from edge.service.fast_triage import LATER, PATH, LATER_RESPONSE, TriageFastPath

log = logging.getLogger(__name__)


class LaterTask(ArrivalTask):
    """One request's response, written when the app delivers it rather than when it returns."""

    def deliver(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """Send the answer and finish the request as waitress's ``HTTPChannel.service`` would;
        from the loop thread (an error answered at once) or the audit writer's (after the commit)."""
        channel = self.channel
        try:
            if channel.connected:
                self.status = status
                self.response_headers = list(headers)
                self.content_length = len(body)
                self.complete = True
                self.write(body)
                self.finish()
            else:
                self.close_on_finish = True
        except ClientDisconnected:
            self.close_on_finish = True
        except Exception as error:  # the connection broke under us: close it, as waitress does
            log.error("sending an answer failed: %s", type(error).__name__)
            self.close_on_finish = True
        finally:
            _request_done(channel, self)


def _request_done(channel: EdgeChannel, task: LaterTask) -> None:
    """Waitress's bookkeeping after a request (``HTTPChannel.service``'s tail): close the
    connection if the answer said so, else drop the request and start the next pipelined one."""
    if task.close_on_finish:
        with channel.requests_lock:
            channel.close_when_flushed = True
            for request in channel.requests:
                request.close()
            channel.requests = []
    else:
        if channel.current_outbuf_count > 0:  # the next answer gets a buffer of its own (as waitress)
            channel.current_outbuf_count = channel.adj.outbuf_high_watermark
        task.request.close()
        with channel.requests_lock:
            if channel.requests and channel.requests[0] is task.request:
                channel.requests.pop(0)
            if channel.connected and channel.requests:
                channel.server.add_task(channel)
    channel.last_activity = time.time()
    mark(channel)  # the loop sends the answer, and reads this connection again


class LoopAnswerer:
    """``ArrivalDispatcher``'s ``answer_now``: takes a refused ``POST /v1/triage`` read by the loop."""

    def __init__(self, loop: EpollLoop, fast_path: TriageFastPath) -> None:
        self.loop = loop
        self.fast_path = fast_path

    def take(self, channel: HTTPChannel, request: ArrivalParser) -> bool:
        """Whether this request is answered here (then it must not go to a pool)."""
        if not (request.shed is not None and not request.error and request.command == "POST" and request.path == PATH
                and isinstance(channel, EdgeChannel) and self.fast_path.ready() and self.loop.in_loop()):
            return False
        self.loop.call_soon(lambda: self._answer(channel, request))
        return True

    def _answer(self, channel: EdgeChannel, request: ArrivalParser) -> None:
        task = LaterTask(channel, request)
        task.start()
        if not channel.connected:  # gone while we read it
            task.close_on_finish = True
            _request_done(channel, task)
            return
        status: list[Any] = []

        def start_response(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            status[:] = [status_line, headers]

        try:
            environ = task.get_environment()
            environ[LATER] = task.deliver
            body = channel.server.application(environ, start_response)  # waitress's proxy-header middleware, then ours
        except Exception as error:
            log.error("unexpected %s answering a refused request", type(error).__name__)  # type only: no PHI
            body = [error_body(*SERVER_ERRORS[500])]
            status[:] = ["500 Internal Server Error", [("Content-Type", "application/json"), ("Cache-Control", "no-store")]]
            task.close_on_finish = True
        if body is LATER_RESPONSE:
            return  # the audit writer delivers it
        task.deliver(status[0], status[1], b"".join(body))
