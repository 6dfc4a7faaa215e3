"""The server's event loop (edge.service.event_loop) on a real server: requests are read in the
order they reached the box, not in descriptor order, and a request's deadline clock starts at the
kernel's receive stamp, so time spent waiting to be read counts in ``latency_ms`` and admission;
an answer bigger than the socket takes is finished by the loop."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from edge.service.app import create_app
from edge.service.server import EdgeServer
from tests.servicekit import make_config

BODY = json.dumps({"complaint": "ankle sprain", "age": 30}).encode()
REQUEST = (b"POST /v1/triage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


@pytest.fixture()
def server(tiny_bundle: Path, tmp_path: Path) -> Iterator[EdgeServer]:
    config = make_config(tmp_path, tiny_bundle, deadline_ms=5000, deadline_max_ms=5000)
    app = create_app(config, monitor=False, audit=False)
    edge_server = EdgeServer(app, config)
    thread = threading.Thread(target=edge_server.serve_forever, name="test-waitress", daemon=True)
    thread.start()
    try:
        yield edge_server
    finally:
        edge_server.stop()
        thread.join(10)
        app.extensions["edge"].stop()


def _body(sock: socket.socket, chunk: int = 65536) -> bytes:
    """The body of the next answer on ``sock`` (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(chunk)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(chunk)
    return body


def _answer(sock: socket.socket) -> dict[str, Any]:
    return json.loads(_body(sock))


def _hold_loop(server: EdgeServer, seconds: float) -> threading.Event:
    """Keep the event loop thread busy (a trigger thunk runs in it) for ``seconds``."""
    holding = threading.Event()

    def hold() -> None:
        holding.set()
        time.sleep(seconds)

    server._server.trigger.pull_trigger(hold)
    assert holding.wait(5), "the loop never ran the thunk"
    return holding


def _settle(server: EdgeServer) -> None:
    """Wait until every connection is idle and the loop watches it again: handler threads mark a
    connection just after its answer is out, and the loop re-registers it at its next iteration."""
    channels = list(server._server.active_channels.values())
    for _ in range(250):
        if all(channel.readable() for channel in channels):
            break
        time.sleep(0.02)
    time.sleep(0.05)
    for _ in range(2):  # the second thunk runs in an iteration that began after the first: marks drained
        ran = threading.Event()
        server._server.trigger.pull_trigger(ran.set)
        assert ran.wait(5)


def _idle_connections(server: EdgeServer, count: int) -> list[socket.socket]:
    """``count`` keep-alive connections, each accepted, answered once and watched again."""
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(count)]
    for sock in connections:
        sock.sendall(REQUEST)
        _answer(sock)
    _settle(server)
    return connections


def _read_order(server: EdgeServer) -> list[int]:
    """The client ports of requests in the order the loop hands them over, from now on."""
    order: list[int] = []
    dispatcher = server._server.task_dispatcher
    add_task = dispatcher.add_task

    def recording(task: Any) -> None:
        order.append(task.addr[1])
        add_task(task)

    dispatcher.add_task = recording
    return order


def test_requests_are_read_first_come_first_served(server: EdgeServer) -> None:
    connections = _idle_connections(server, 4)
    try:
        read_order = _read_order(server)
        _hold_loop(server, 0.3)
        # Highest descriptor first: a select loop would read them lowest first.
        sent = list(reversed(connections))
        for sock in sent:
            sock.sendall(REQUEST)
            time.sleep(0.02)
        for sock in sent:
            assert "level" in _answer(sock)
        assert read_order == [sock.getsockname()[1] for sock in sent]
    finally:
        for sock in connections:
            sock.close()


def test_a_new_connection_is_read_at_once_not_after_the_queue(server: EdgeServer) -> None:
    # A probe or a reconnecting client would otherwise wait twice (accept, then first read).
    old = _idle_connections(server, 3)
    try:
        read_order = _read_order(server)
        _hold_loop(server, 0.3)
        for sock in old:  # queued first...
            sock.sendall(REQUEST)
            time.sleep(0.02)
        new = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        new.sendall(REQUEST)  # ...but the newcomer is read first
        try:
            for sock in [*old, new]:
                assert "level" in _answer(sock)
            assert read_order[0] == new.getsockname()[1], read_order
            assert read_order[1:] == [sock.getsockname()[1] for sock in old]
        finally:
            new.close()
    finally:
        for sock in old:
            sock.close()


def test_a_connection_accepted_before_its_request_lands_is_still_watched(server: EdgeServer) -> None:
    # The loop accepts at the top of every iteration; a client that connects while the loop is
    # busy and sends only later must be watched before the loop sleeps, or its request waits for
    # the loop's next wake-up (its 1 s timeout).
    for _ in range(3):
        _hold_loop(server, 0.1)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            time.sleep(0.25)  # the loop has accepted it at the top of its next iteration, and sleeps
            began = time.perf_counter()
            sock.sendall(REQUEST)
            assert "level" in _answer(sock)
            assert time.perf_counter() - began < 0.5, "the request waited for the loop's timeout"


def test_time_waiting_to_be_read_counts_in_latency(server: EdgeServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(REQUEST)
        assert _answer(sock)["latency_ms"] < 250, "an idle loop reads at once"
        _hold_loop(server, 0.4)
        began = time.perf_counter()
        sock.sendall(REQUEST)  # lands in the socket queue while the loop is busy
        answer = _answer(sock)
        waited_ms = (time.perf_counter() - began) * 1000.0
    assert waited_ms >= 300
    # The service's clock started when the kernel had the request, not when the loop read it.
    assert waited_ms - 50 <= answer["latency_ms"] <= waited_ms + 5, (answer["latency_ms"], waited_ms)


def test_an_answer_too_big_for_the_socket_is_finished_by_the_loop(server: EdgeServer) -> None:
    # A tiny send buffer on the server side and a client that reads late: the handler thread
    # cannot send it all, so the loop must watch the connection for write space and send the rest.
    server._server.set_socket_options = lambda conn: conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.5)
        body = _body(sock, chunk=1024)
        assert len(body) > 8192, "big enough not to fit the buffers"
        assert json.loads(body)["openapi"].startswith("3.")
        sock.sendall(REQUEST)  # the connection is still good for the next request
        assert "level" in _answer(sock)


def test_the_socket_map_keeps_no_record_nobody_reads() -> None:
    from edge.service.event_loop import WatchedMap

    watched = WatchedMap()
    watched[5] = object()
    del watched[5]
    assert not watched.changed, "no epoll loop runs this map: nothing may pile up"
    watched.watching = True
    watched[6] = object()
    watched.clear()
    assert list(watched.changed) == [6, 6]


def test_connections_on_descriptors_past_1023_are_served(server: EdgeServer) -> None:
    # select() stops at descriptor 1023; the server takes 1,024 connections (and has other files).
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2600:
        pytest.skip(f"the hard descriptor limit ({hard}) is too low to open 1,000 connections both ways")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2600), hard))
    held = []
    try:
        for _ in range(1000):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        for _ in range(250):
            if len(server._server.active_channels) >= 1000:
                break
            time.sleep(0.02)
        assert max(server._server._map) > 1023
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(REQUEST)  # a new connection, accepted on a high descriptor
            assert "level" in _answer(sock)
        held[-1].sendall(REQUEST)
        assert "level" in _answer(held[-1])
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_accepting_while_handler_threads_mark_connections_never_kills_the_loop() -> None:
    """Handler threads append to the map's change record at any time (``mark``); the loop reads the
    part its own accept added. Iterating the live deque let an append land mid-iteration: the loop
    thread died of "deque mutated during iteration" and the server stopped answering (seen once in
    the browser tests on a loaded machine)."""
    from types import SimpleNamespace

    from edge.service.event_loop import EpollLoop, WatchedMap

    watched = WatchedMap()
    watched.watching = True
    server = SimpleNamespace(maintenance=lambda now: None, _map=watched, active_channels={},
                             handle_accept=lambda: [watched.note(-n) for n in range(64)])  # accepted descriptors
    loop = EpollLoop(server)
    stop = threading.Event()

    def handler_threads() -> None:
        while not stop.is_set():
            watched.note(7)
            if len(watched.changed) > 4096:
                time.sleep(0)

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows: widen every race
    marker = threading.Thread(target=handler_threads, daemon=True)
    marker.start()
    try:
        for _ in range(3000):
            loop._accept_now({}, watched)  # raises RuntimeError if it iterates the deque as it grows
            watched.changed.clear()
    finally:
        stop.set()
        marker.join(5)
        sys.setswitchinterval(interval)
