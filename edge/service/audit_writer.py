"""The audit log's group commit: one writer thread commits every decision row pending in one
statement, and the requests waiting on those rows learn the outcome together.

Why one writer: with ``synchronous=FULL`` each commit is an fsync, so one per batch instead of one
per request makes a slow SD card cost latency, not throughput. Why one INSERT per batch: BEGIN, a
step per row and COMMIT each gave the GIL back and waited to retake it; under overload, behind
40 busy threads, that made a commit 20-220 ms, and every answer waits for its row's commit. Why
checkpoints on a thread of their own (every ``CHECKPOINT_EVERY_S``, PASSIVE): SQLite's automatic
one, inside a commit, made every ~1,000th page's commit take 100-220 ms under load.

A row is waited for in one of two ways: :meth:`GroupCommitWriter.wait` blocks the caller (an HTTP
thread), or a continuation runs on the writer thread once the row is committed
(:meth:`GroupCommitWriter.submit` with ``then``; the event loop's answers, which must not block).
Either way nobody waits past ``COMMIT_WAIT_S`` on a stuck disk: a waiter times out, and the
checkpoint thread gives up on overdue continuations.
"""

from __future__ import annotations

import collections
import functools
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edge.errors import EdgeError

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 1.0
COMMIT_WAIT_S = 10.0  # a request never hangs on a stuck disk or writer for longer than this
ROWS_PER_INSERT = 500  # 13 values a row: well inside SQLite's 32,766 variables per statement
INSERT_DECISION = (
    "INSERT INTO decisions (request_id, created_utc, created_unix, model_sha256, input_digest, level,"
    " model_level, probabilities, rules_fired, review_required, degraded, latency_ms, source)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
Row = tuple[Any, ...]
Committed = Callable[["EdgeError | None"], None]  # a continuation: None once committed, else why not


def closed_error() -> EdgeError:
    return EdgeError("audit_closed", "The audit log is closed (the service is stopping).", http_status=503)


def timeout_error() -> EdgeError:
    return EdgeError("audit_write_timeout", "The audit log did not commit in time; check the storage.", http_status=500)


def failed_error() -> EdgeError:
    return EdgeError("audit_write_failed", "The decision could not be written to the audit log.", http_status=500)


@functools.lru_cache(maxsize=64)
def insert_rows(count: int) -> str:
    """INSERT_DECISION for ``count`` rows in one statement."""
    return INSERT_DECISION + ",(?,?,?,?,?,?,?,?,?,?,?,?,?)" * (count - 1)


class GroupCommitWriter:
    """Commits decision rows on ``conn`` (shared with readers under ``conn_lock``); ``after_commit``
    runs on the writer thread after each successful batch (the retention purge)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, conn_lock: threading.Lock,
                 after_commit: Callable[[], None]) -> None:
        self.path = path
        self._conn = conn
        self._lock = conn_lock
        self._after_commit = after_commit
        self.written = 0
        self.failed = 0
        pending_lock = threading.RLock()
        self._cond = threading.Condition(pending_lock)  # the pending queue and the tickets; waiters wait on it
        # The writer waits on its own condition (same lock): a new row wakes only the writer, not
        # every request waiting for its commit (under load that herd cost more than the commits).
        self._work = threading.Condition(pending_lock)
        self._pending: list[Row] = []
        self._continuations: collections.deque[tuple[int, float, Committed]] = collections.deque()  # ticket order
        self._issued = 0  # tickets handed out
        self._done_through = 0  # every ticket up to here was committed or failed
        self._failed_batches: list[tuple[int, int]] = []
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="audit-checkpoint", daemon=True)
        self._checkpointer.start()

    def submit(self, rows: list[Row], then: Committed | None = None) -> int:
        """Queue ``rows``; returns the last one's ticket. ``then`` (if given) runs exactly once, on
        the writer thread once all are committed, or with the error if they failed or waited past
        COMMIT_WAIT_S. Raises ``audit_closed`` (and calls nothing) once closing."""
        with self._cond:
            if self._closing:
                raise closed_error()
            self._pending.extend(rows)
            self._issued += len(rows)
            ticket = self._issued
            if then is not None:
                self._continuations.append((ticket, time.monotonic() + COMMIT_WAIT_S, then))
            self._work.notify()
        return ticket

    def wait(self, ticket: int) -> None:
        """Block until ``ticket``'s row is committed; raises if it failed or took too long."""
        with self._cond:
            done = self._cond.wait_for(lambda: self._done_through >= ticket, COMMIT_WAIT_S)
            failed = self._failed(ticket)
        if not done:
            raise timeout_error()
        if failed:
            raise failed_error()

    def close(self) -> None:
        """Commit what is queued, stop both threads; a continuation left uncommitted hears ``audit_closed``."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
            self._work.notify_all()
        self._writer.join(10.0)
        self._stopping.set()
        self._checkpointer.join(10.0)
        with self._cond:
            taken = self._take_continuations(through=self._issued)
            outcome = {ticket: None if ticket <= self._done_through and not self._failed(ticket) else closed_error()
                       for ticket, _ in taken}
        self._run_continuations(taken, outcome.__getitem__)

    def _failed(self, ticket: int) -> bool:
        return any(lo <= ticket <= hi for lo, hi in self._failed_batches)

    def _take_continuations(self, through: int | None = None, overdue_at: float | None = None) -> list[tuple[int, Committed]]:
        """Pop (lock held) the continuations whose rows are done (ticket <= ``through``) or whose
        wait ran out (deadline < ``overdue_at``); both are in ticket order, oldest first."""
        taken: list[tuple[int, Committed]] = []
        waiting = self._continuations
        while waiting and ((through is not None and waiting[0][0] <= through)
                           or (overdue_at is not None and waiting[0][1] < overdue_at)):
            ticket, _deadline, then = waiting.popleft()
            taken.append((ticket, then))
        return taken

    @staticmethod
    def _run_continuations(taken: list[tuple[int, Committed]], error_for: Callable[[int], "EdgeError | None"]) -> None:
        for ticket, then in taken:
            try:
                then(error_for(ticket))
            except Exception as error:  # one caller's failure must not stop the writer or the others
                log.error("audit continuation failed: %s", type(error).__name__)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                self._work.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                first, last = self._done_through + 1, self._done_through + len(batch)
            ok = self._commit(batch)
            with self._cond:
                self._done_through = last
                if ok:
                    self.written += len(batch)
                else:
                    self.failed += len(batch)
                    self._failed_batches = [*self._failed_batches[-31:], (first, last)]
                self._cond.notify_all()
                taken = self._take_continuations(through=last)
            failure = None if ok else failed_error()
            self._run_continuations(taken, lambda _ticket: failure)
            if ok:
                self._after_commit()

    def _commit(self, batch: list[Row]) -> bool:
        """The batch as one INSERT statement: atomic on its own (autocommit), one call into SQLite."""
        chunks = [batch[start:start + ROWS_PER_INSERT] for start in range(0, len(batch), ROWS_PER_INSERT)]
        with self._lock:
            try:
                if len(chunks) > 1:  # a backlog past one statement: still one transaction
                    self._conn.execute("BEGIN IMMEDIATE")
                for rows in chunks:
                    self._conn.execute(insert_rows(len(rows)), [value for row in rows for value in row])
                if len(chunks) > 1:
                    self._conn.execute("COMMIT")
                return True
            except sqlite3.Error as error:  # disk full, I/O error: the requests waiting on it are told
                log.error("audit write failed: %s", type(error).__name__)
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                return False

    def _checkpoint_loop(self) -> None:
        """Copy committed pages from the WAL into the database every CHECKPOINT_EVERY_S, on a
        connection of its own (PASSIVE: it never holds up the writer), and give up on
        continuations that waited past COMMIT_WAIT_S."""
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0)
        except sqlite3.Error as error:
            log.error("audit checkpointer could not open the log: %s", type(error).__name__)
        try:
            while not self._stopping.wait(CHECKPOINT_EVERY_S):
                if conn is not None:
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except sqlite3.Error as error:
                        log.error("audit checkpoint failed: %s", type(error).__name__)
                with self._cond:
                    taken = self._take_continuations(overdue_at=time.monotonic())
                self._run_continuations(taken, lambda _ticket: timeout_error())
        finally:
            if conn is not None:
                conn.close()
