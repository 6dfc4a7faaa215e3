"""The server's event loop: epoll, level-triggered, so connections are read first come, first served.

Why not waitress's own loop (``wasyncore``: ``select`` over every connection, then each ready one
in descriptor order): under overload one iteration is long (it reads every ready connection and
hands each request over), and a connection whose next request lands just after the ``select``
waits out the whole iteration and then its turn behind every lower descriptor. Measured at 320
keep-alive clients: client latencies spread from 135 to 982 ms around a 525 ms mean, while the
service, which only sees a request once it is read, reported p99 280 ms. epoll hands back
descriptors in the order they became ready (one still ready after it was returned goes to the back
of the kernel's ready list), so the oldest request is read first and the wait is shared evenly.

Interest is kept in step with each connection's ``readable()``/``writable()`` without looking at
every connection per iteration (waitress's loop does, twice): a connection's mask is recomputed
after the loop handles its event, when it enters or leaves the socket map (:class:`WatchedMap`),
and when a handler thread says its state changed (:func:`mark`: a request finished, output is
left to send, the connection should close), which also wakes the loop. A connection with nothing
to wait for (its request is being answered) is not registered at all, as in waitress's own poll
loop, so a reset peer cannot spin the loop. Waiting connections are accepted every iteration and
a new one's first request is read at once (``_accept_now``). (Keeping read interest on busy connections, parking
one only if data came early, measured worse — 320 clients, p99 684-758 vs 473-492 ms: under load
the next request usually lands before the handler thread has finished with the previous one, so
it parks anyway, after an extra event.)

``EVENTS_PER_WAIT`` bounds an iteration: since refused requests are answered in the loop
(``edge.service.answer_in_loop``), one event can cost ~0.4 ms, and a probe or a new connection
waits for the iteration in progress before it is accepted. Measured at 320 clients, 20 s each:
256 events per wait gave /livez p99 297-338 ms (66-71 probes answered), 32 gave 54-93 ms (90-94
probes) at the same answers per second (1,023-1,052 vs 1,035-1,074 direct; strict alike); 16 was
no better for probes and a little slower.
"""

from __future__ import annotations

import collections
import itertools
import logging
import select
import socket
import threading
from typing import Any, Callable

from waitress import wasyncore

log = logging.getLogger(__name__)

EVENTS_PER_WAIT = 32  # descriptors taken per epoll_wait (the rest stay queued in the kernel, in order); see below


class WatchedMap(dict):
    """The socket map (descriptor -> dispatcher) that records which descriptors changed hands
    while an epoll loop runs it (``watching``; otherwise nobody would drain the record)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: collections.deque[int] = collections.deque()  # appended from any thread
        self.watching = False

    def note(self, fd: int) -> None:
        if self.watching:
            self.changed.append(fd)

    def __setitem__(self, fd: int, obj: Any) -> None:
        super().__setitem__(fd, obj)
        self.note(fd)

    def __delitem__(self, fd: int) -> None:
        super().__delitem__(fd)
        self.note(fd)

    def clear(self) -> None:
        for fd in list(self.keys()):
            self.note(fd)
        super().clear()


def mark(channel: Any) -> None:
    """A handler thread changed ``channel``'s state (request done, output pending, closing): have
    the loop recompute its interest, and wake the loop to do it."""
    watched = getattr(channel, "_map", None)
    fd = getattr(channel, "_fileno", None)
    if isinstance(watched, WatchedMap) and watched.watching and fd is not None:
        watched.changed.append(fd)
        channel.server.pull_trigger()


class EpollLoop:
    """Stands in for the ``wasyncore`` module as ``server.asyncore`` (waitress's own hook): its
    :meth:`loop` runs the server's socket map. Falls back to waitress's loop where epoll is missing."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.thread: int | None = None  # the running loop's thread (threading.get_ident)
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        maintenance = server.maintenance

        def maintenance_then_mark(now: float) -> None:
            maintenance(now)  # marks idle connections will_close: they must be written (closed) now
            watched = server._map
            if isinstance(watched, WatchedMap):
                for fd, channel in list(server.active_channels.items()):
                    if channel.will_close:
                        watched.note(fd)

        server.maintenance = maintenance_then_mark

    def loop(self, timeout: float = 30.0, use_poll: bool = False, map: Any = None, count: int | None = None) -> None:
        if not hasattr(select, "epoll") or not isinstance(map, WatchedMap):
            wasyncore.loop(timeout=timeout, use_poll=use_poll, map=map, count=count)
            return
        epoll = select.epoll()
        registered: dict[int, int] = {}
        self.thread = threading.get_ident()
        map.watching = True
        for fd in list(map):  # the listener and the trigger are there before the loop starts
            map.note(fd)
        try:
            while map and (count is None or count > 0):
                self._iterate(epoll, registered, map, timeout)
                if count is not None:
                    count -= 1
        finally:
            self.thread = None
            map.watching = False
            map.changed.clear()
            epoll.close()

    def in_loop(self) -> bool:
        """Whether the caller is the running loop's own thread."""
        return self.thread is not None and self.thread == threading.get_ident()

    def call_soon(self, work: Callable[[], None]) -> None:
        """Run ``work`` in the loop thread as soon as the event being handled is done — outside the
        locks a dispatcher holds while it reads (the channel's request lock). Loop thread only."""
        self._soon.append(work)

    def _run_soon(self) -> None:
        soon = self._soon
        while soon:
            work = soon.popleft()
            try:
                work()
            except Exception as error:  # the loop must outlive any one piece of work
                log.error("event loop work failed: %s", type(error).__name__)

    def _iterate(self, epoll: Any, registered: dict[int, int], watched: WatchedMap, timeout: float) -> None:
        listener = self.server._fileno
        if listener is not None:
            _sync(epoll, registered, watched, listener)  # readable() runs maintenance and the connection limit
            if registered.get(listener):  # accepting: below the connection limit
                self._accept_now(registered, watched)
        changed = watched.changed
        while changed:  # after accepting: a connection whose request has not landed yet is watched now
            _sync(epoll, registered, watched, changed.popleft())
        for fd, flags in epoll.poll(timeout, EVENTS_PER_WAIT):
            obj = watched.get(fd)
            if obj is None:
                _sync(epoll, registered, watched, fd)  # gone since: drop the stale registration
                continue
            self._handle(obj, flags)
            if fd != listener:
                _sync(epoll, registered, watched, fd)

    def _handle(self, obj: Any, flags: int) -> None:
        """One event for one dispatcher, then the work it left for the loop (:meth:`call_soon`)."""
        wasyncore.readwrite(obj, flags)  # EPOLLIN/OUT/PRI/ERR/HUP have poll()'s values
        self._run_soon()

    def _accept_now(self, registered: dict[int, int], watched: WatchedMap) -> None:
        """Take waiting connections every iteration and read what a new one has already sent.

        A new connection is a probe (``/livez``, one connection each) or a client (re)connecting;
        left to the ready order it would wait twice, for its accept and then for its first read
        (measured: /livez p99 ~0.8 s at 320 keep-alive clients). Its request still goes through
        admission like any other, so being read early gives it no model time it cannot have."""
        before = len(watched.changed)
        self.server.handle_accept()  # returns at once when none waits (EAGAIN)
        # copy() is one C call, so no handler thread's mark() can land inside it; iterating the live
        # deque let one land mid-iteration and the loop thread died ("deque mutated during iteration").
        for fd in list(itertools.islice(watched.changed.copy(), before, None)):
            obj = watched.get(fd)
            if obj is None or obj.accepting or fd in registered or not obj.readable():
                continue
            if _has_input(obj):
                self._handle(obj, select.EPOLLIN)


def _has_input(obj: Any) -> bool:
    """Whether a connection has bytes (or its end) waiting: one non-blocking peek, no descriptor
    limit (``select`` fails past descriptor 1023, and the server takes 1,024 connections)."""
    try:
        obj.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # an error to report: the read path closes it
    return True


def _interest(obj: Any) -> int:
    mask = select.EPOLLIN | select.EPOLLPRI if obj.readable() else 0
    if not obj.accepting and obj.writable():
        mask |= select.EPOLLOUT
    return mask


def _sync(epoll: Any, registered: dict[int, int], watched: WatchedMap, fd: int) -> None:
    """Make epoll's interest in ``fd`` what its dispatcher wants now (loop thread only)."""
    obj = watched.get(fd)
    try:
        mask = _interest(obj) if obj is not None else 0
    except Exception:  # a dispatcher broken by another thread's close: nothing to wait for on it
        mask = 0
    if registered.get(fd, 0) == mask:
        return
    try:
        if mask == 0:
            registered.pop(fd, None)
            epoll.unregister(fd)
        elif fd in registered:
            registered[fd] = mask
            try:
                epoll.modify(fd, mask)
            except FileNotFoundError:  # the old socket closed (the kernel dropped it) and fd was reused
                epoll.register(fd, mask)
        else:
            registered[fd] = mask
            try:
                epoll.register(fd, mask)
            except FileExistsError:
                epoll.modify(fd, mask)
    except OSError:  # closed under us (EBADF/ENOENT): nothing to wait for on it
        registered.pop(fd, None)
