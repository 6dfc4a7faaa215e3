"""Serving: waitress (a production WSGI server, never Flask's ``app.run``), graceful SIGTERM, and
systemd integration — READY=1 only once the model is loaded and warmed (``create_app`` does both
before returning) and watchdog pings only while the service's own workers are healthy, so a stuck
inference worker stops the pings and systemd restarts us.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Any, Callable, Iterable

import waitress
from flask import Flask

from edge.service import sdnotify
from edge.service.answer_in_loop import LoopAnswerer
from edge.service.arrival import (ArrivalDispatcher, EdgeChannel, enable_kernel_stamps, error_body,
                                 scheduler_admission)
from edge.service.event_loop import EpollLoop, WatchedMap
from edge.service.fast_triage import TriageFastPath
from edge.service.server_log import withhold_request_text
from edge.service.config import ServiceConfig
from edge.service.state import ServiceState

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

ACCEPT_PER_EVENT = 64  # connections taken from the kernel's accept backlog per loop iteration, at most


class EdgeServer:
    def __init__(self, app: Flask, config: ServiceConfig) -> None:
        self.app = app
        self.config = config
        self.state: ServiceState = app.extensions["edge"]
        self._stop = threading.Event()
        withhold_request_text()  # waitress's own log lines never carry a path or header a client sent
        svc = self.state
        # Admission at arrival (edge.service.arrival): the deadline clock starts when a request is complete,
        # and one that cannot make it is answered at once instead of queueing for a thread.
        dispatcher = ArrivalDispatcher(scheduler_admission(
            svc.scheduler, config.deadline_ms / 1000.0, (config.deadline_min_ms / 1000.0, config.deadline_max_ms / 1000.0),
            lambda: svc.runtime.triager.model is not None))
        dispatcher.set_thread_count(config.http_threads)
        self.dispatcher = dispatcher
        fast_path = TriageFastPath(app, svc)
        self._server: Any = waitress.create_server(
            ProxyReached(fast_path), _dispatcher=dispatcher, map=WatchedMap(), host=config.host, port=config.port, threads=config.http_threads,
            ident="edge-triage",
            # Flask enforces the JSON body limit with a JSON 413; waitress's cap only stops giant bodies early.
            max_request_body_size=max(1 << 20, 4 * config.max_body_bytes),
            channel_timeout=30, connection_limit=1024, expose_tracebacks=False,
            # The nginx front (edge.service.front) proxies ward clients from 127.0.0.1 with X-Forwarded-For:
            # trusted from there only, so a ward client is seen by its own (non-loopback) address
            # and needs the token; the header from anyone else is dropped.
            trusted_proxy="127.0.0.1", trusted_proxy_count=1,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
            clear_untrusted_proxy_headers=True,
        )
        self._server.channel_class = EdgeChannel  # arrival stamps; JSON errors from waitress itself
        self._server.application = json_proxy_errors(self._server.application)  # waitress's proxy-header layer
        loop = EpollLoop(self._server)
        self._server.asyncore = loop  # first come, first read (edge.service.event_loop)
        dispatcher.answer_now = LoopAnswerer(loop, fast_path).take  # refused requests: no thread hand-off
        enable_kernel_stamps(self._server.socket)  # arrival = when the kernel got the request
        accept_in_bursts(self._server)
        self.state.telemetry.gauges["edge_http_queue_depth"] = (
            "Requests waiting for an HTTP thread (admitted at arrival; refused ones are answered at once).",
            lambda: len(dispatcher.queue))

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    def status_line(self) -> str:
        decision = self.state.decision
        identity = self.state.runtime.identity() or {}
        parts = [f"serving {identity.get('name', 'rules-only')} {identity.get('version', '')}".strip()]
        if decision is not None:
            parts.append(f"thermal={getattr(decision, 'thermal_state', '?')} memory={getattr(decision, 'memory_state', '?')}")
        return "; ".join(parts)

    def _watchdog(self, interval: float) -> None:
        # Ping at half the interval, and only when healthy: silence is how systemd learns we are stuck.
        was_healthy = True
        while not self._stop.wait(interval / 2):
            healthy = self.state.healthy()
            if healthy:
                sdnotify.watchdog()
                sdnotify.status(self.status_line())
            elif was_healthy:  # once per episode, not every half interval
                log.error("inference worker stuck or dead; withholding watchdog pings")
                sdnotify.status("unhealthy: inference worker stuck; watchdog pings withheld")
            if healthy and not was_healthy:
                log.warning("inference worker healthy again; watchdog pings resumed")
            was_healthy = healthy

    def serve_forever(self) -> None:
        """Run until :meth:`stop` (another thread) or SIGTERM/SIGINT (main thread)."""
        interval = sdnotify.watchdog_interval()
        if interval:
            threading.Thread(target=self._watchdog, args=(interval,), name="watchdog", daemon=True).start()
        identity = self.state.runtime.identity() or {}
        log.info("model %s %s (sha256 %s…) loaded and warmed; deadline %g ms, %d worker(s), queue %d",
                 identity.get("name"), identity.get("version"), str(identity.get("sha256"))[:12],
                 self.config.deadline_ms, self.config.workers, self.config.queue_size)
        log.info("listening on http://%s:%d", self.host, self.port)
        sdnotify.ready(self.status_line())
        try:
            self._server.run()  # returns when the socket map empties; SystemExit shuts the dispatcher down
        finally:
            self._stop.set()

    def stop(self) -> None:
        """Finish requests in progress (up to 5 s), close the sockets, stop the service parts."""
        self._stop.set()
        sdnotify.stopping("shutting down")
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        import waitress.wasyncore as wasyncore

        closed = threading.Event()

        def close_sockets() -> None:
            wasyncore.close_all(self._server._map)
            closed.set()

        # Close from inside the event loop's own thread (its trigger runs thunks there): closing
        # the socket map under a running loop from another thread races with its poll.
        self._server.trigger.pull_trigger(close_sockets)
        if not closed.wait(3.0):  # the loop is not running (never started or already gone)
            close_sockets()
        self.state.stop()  # idempotent: serve() may call it again


PROXIED = "edge.proxy_headers_ok"  # environ key: waitress's proxy-header layer passed the request on
BAD_FORWARDING = error_body("bad_forwarding_header", "A forwarding header (X-Forwarded-For, X-Forwarded-Proto, "
                            "Forwarded) is malformed; send none, or what a proxy would.")


class ProxyReached:
    """The app as waitress's proxy-header layer sees it: marks the request as passed on."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[PROXIED] = True
        return self.app(environ, start_response)


def json_proxy_errors(proxied: WSGIApp) -> WSGIApp:
    """Waitress's proxy-header layer answers a malformed forwarding header from the trusted proxy
    (anything on 127.0.0.1) itself, as text naming the header. Every error of the server layer is
    JSON in the API's shape and echoes nothing: this answers those requests so. (Waitress's own
    answer is a generator that has not called ``start_response`` yet: it is dropped unread.)"""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result = proxied(environ, start_response)
        if environ.get(PROXIED):
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        start_response("400 Bad Request", [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                           ("Content-Length", str(len(BAD_FORWARDING)))])
        return [BAD_FORWARDING]

    return app


def accept_in_bursts(listener: Any) -> None:
    """Waitress accepts one connection per event-loop iteration. Under overload an iteration is
    long (it reads every ready connection and hands each request over), and a front that opens
    connections faster than that leaves them in the kernel's accept backlog, established but
    unread: measured behind nginx at 320 clients, 136-261 connections waited there, requests
    stalled 1-15 s and nginx answered 504. So each accept event drains the backlog, up to
    ``ACCEPT_PER_EVENT`` connections and never past the connection limit."""
    accept_one = listener.handle_accept

    def handle_accept() -> None:
        for _ in range(ACCEPT_PER_EVENT):
            before = len(listener._map)
            accept_one()  # returns without a channel when the backlog is empty (EAGAIN) or on error
            if len(listener._map) == before or len(listener._map) >= listener.adj.connection_limit:
                return

    listener.handle_accept = handle_accept


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C: waitress's loop catches SystemExit and drains its workers."""

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)


def serve(app: Flask, config: ServiceConfig) -> int:
    server = EdgeServer(app, config)
    # Everything built at start (app, model, tables) lives as long as the process: move it out of
    # the cyclic collector's reach, so a full collection under load scans only what requests made
    # (measured at 320 clients: full collections of 23-34 ms with every answer waiting behind
    # them, 0.5 ms frozen). No collection first: it would add ~30 ms to the start, for ~140
    # objects of start-up garbage kept.
    gc.freeze()
    install_signal_handlers()
    try:
        server.serve_forever()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        sdnotify.stopping("shutting down")
        server.state.stop()
        log.info("stopped")
    return 0
