"""Audit log: one append-only SQLite record per triage decision, plus staff acknowledgements.

What is stored: request id, time, model sha256, an HMAC-SHA256 of the canonical input under a
per-device key (so a case can be matched later by whoever holds the input, without the log
holding the text), the result, rules fired, degraded state, latency. Never the complaint or the
vitals. The staff override reason is free text and is stored here only — never logged.

Durability: WAL journal, and ``record`` returns (``record_later`` calls back) only after its row
is committed, so every answer sent is in the log. ``synchronous=NORMAL`` (default) makes each
commit durable against a crash of the process (``kill -9``, OOM kill) and never corrupts the
database; only an OS crash or power cut can lose the last few commits. ``synchronous=FULL`` also
fsyncs every commit — choose it where power is unreliable. A single writer thread commits
everything pending in one statement (group commit, ``edge.service.audit_writer``), so FULL costs
one fsync per batch: latency on a slow SD card, not a throughput ceiling.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

from edge.clinical.case import TriageCase
from edge.errors import EdgeError
from edge.service.audit_writer import Committed, GroupCommitWriter, Row
from edge.service.private_files import ensure_private, prepare_database, private_dir
from edge.inference.triager import TriageResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    created_utc TEXT NOT NULL,
    created_unix REAL NOT NULL,
    model_sha256 TEXT,
    input_digest TEXT NOT NULL,
    level INTEGER NOT NULL,
    model_level INTEGER,
    probabilities TEXT,
    rules_fired TEXT NOT NULL,
    review_required INTEGER NOT NULL,
    degraded TEXT,
    latency_ms REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acknowledgements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES decisions(request_id),
    created_utc TEXT NOT NULL,
    created_unix REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('acknowledge', 'override')),
    final_level INTEGER NOT NULL CHECK (final_level BETWEEN 1 AND 5),
    reason TEXT
);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions(created_unix);
CREATE INDEX IF NOT EXISTS ack_request ON acknowledgements(request_id);
CREATE TRIGGER IF NOT EXISTS decisions_append_only BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'audit decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS ack_append_only BEFORE UPDATE ON acknowledgements
BEGIN SELECT RAISE(ABORT, 'audit acknowledgements are append-only'); END;
"""
log = logging.getLogger(__name__)
MAX_REASON_CHARS = 500
PURGE_EVERY_S = 3600.0
CSV_COLUMNS = ("seq", "request_id", "created_utc", "model_sha256", "input_digest", "level", "model_level",
               "probabilities", "rules_fired", "review_required", "degraded", "latency_ms", "source",
               "ack_action", "ack_final_level", "ack_utc", "ack_reason")


def load_or_create_key(path: str | Path) -> bytes:
    """The per-device HMAC key: 32 random bytes in a 0600 file, created on first use."""
    path = Path(path)
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    if path.stat().st_mode & 0o077:
        raise EdgeError("audit_key_permissions", f"Audit key file {path} is readable by others; run `chmod 600 {path}` "
                        "(with the key, anyone holding a case could confirm it is in the log).", http_status=500)
    key = path.read_bytes()
    if len(key) < 16:
        raise EdgeError("audit_key_invalid", f"Audit key file {path} holds fewer than 16 bytes; delete it to make a new one.",
                        http_status=500)
    return key


def input_digest(key: bytes, case: TriageCase) -> str:
    # The same mapping as case.to_dict(), without dataclasses.asdict's deep copy (a quarter of a
    # degraded answer's CPU under overload): the fields are flat scalars.
    values = {name: value for name, value in vars(case).items() if value is not None}
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _utc(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """Thread-safe. Decisions go through one writer thread that commits whatever is pending in one
    statement (group commit, edge.service.audit_writer). ``record`` returns only once its row is
    committed, and ``record_later`` calls back only then, so an answer is audited before it is sent."""

    def __init__(self, db_path: str | Path, key: bytes, *, retention_days: int = 365, synchronous: str = "NORMAL") -> None:
        self.path = Path(db_path)
        prepare_database(self.path)  # 0600 database, WAL and SHM in a 0700 directory (edge.service.private_files)
        self._key = key
        self.retention_days = retention_days
        self._lock = threading.Lock()  # the connection
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if synchronous.upper() == 'FULL' else 'NORMAL'}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run beside the writer (audit_writer)
        self._conn.executescript(SCHEMA)
        for suffix in ("-wal", "-shm"):  # now created by SQLite from the database's mode: check it did
            ensure_private(Path(f"{self.path}{suffix}"), "Audit database file", field="audit_db")
        self._last_purge = 0.0
        self.purge()
        self._writer = GroupCommitWriter(self.path, self._conn, self._lock, self._purge_when_due)

    @classmethod
    def open(cls, db_path: str | Path, key_file: str | Path, **kwargs: Any) -> "AuditLog":
        return cls(db_path, load_or_create_key(key_file), **kwargs)

    @property
    def written(self) -> int:
        return self._writer.written

    @property
    def failed(self) -> int:
        return self._writer.failed

    def close(self) -> None:
        self._writer.close()  # once; a second close (and the connection's second close) does nothing
        with self._lock:
            self._conn.close()  # the last connection to close checkpoints the rest

    def _row(self, case: TriageCase, result: TriageResult, source: str) -> Row:
        now = time.time()
        return (
            result.request_id, _utc(now), now, (result.model or {}).get("sha256"), input_digest(self._key, case),
            result.level, result.model_level, json.dumps(result.probabilities),
            json.dumps([r["id"] for r in result.rules_fired]), int(result.review_required), result.degraded,
            float(result.latency_ms), source[:32],
        )

    def record(self, case: TriageCase, result: TriageResult, source: str = "api") -> None:
        """Append one decision; returns when it is committed, raises if the commit failed."""
        self._writer.wait(self._writer.submit([self._row(case, result, source)]))

    def record_later(self, entries: Sequence[tuple[TriageCase, TriageResult, str]], then: Committed) -> None:
        """Append decisions (case, result, source) without waiting for them: ``then(None)`` runs on
        the writer thread once all are committed, ``then(error)`` if the commit failed or took
        longer than COMMIT_WAIT_S — exactly once either way. For a caller that must not block (the
        event loop answering refused requests, edge.service.answer_in_loop). Raises
        ``audit_closed`` (and calls nothing) when the log is closed."""
        self._writer.submit([self._row(case, result, source) for case, result, source in entries], then)

    def _purge_when_due(self) -> None:
        if time.time() - self._last_purge > PURGE_EVERY_S:
            try:
                self.purge()
            except sqlite3.Error as error:
                log.error("audit retention purge failed: %s", type(error).__name__)

    def acknowledge(self, request_id: str, final_level: int, reason: str | None = None) -> dict[str, Any]:
        """Record a nurse's acknowledgement (final level = result level) or override."""
        if isinstance(final_level, bool) or not isinstance(final_level, int) or not 1 <= final_level <= 5:
            raise EdgeError("invalid_level", "'final_level' must be an integer from 1 to 5.", field="final_level")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
            raise EdgeError("invalid_reason", f"'reason' must be text of at most {MAX_REASON_CHARS} characters.", field="reason")
        now = time.time()
        with self._lock:
            row = self._conn.execute("SELECT level FROM decisions WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise EdgeError("unknown_request", "No audited decision has this request id.", http_status=404)
            action = "acknowledge" if final_level == row[0] else "override"
            if action == "override" and not (reason and reason.strip()):
                raise EdgeError("reason_required", "Overriding the level needs a 'reason'.", field="reason")
            self._conn.execute(
                "INSERT INTO acknowledgements (request_id, created_utc, created_unix, action, final_level, reason)"
                " VALUES (?,?,?,?,?,?)", (request_id, _utc(now), now, action, final_level, reason))
        return {"request_id": request_id, "action": action, "final_level": final_level, "result_level": row[0]}

    def purge(self, now: float | None = None) -> int:
        """Delete records older than the retention period; returns the number of decisions removed."""
        now = time.time() if now is None else now
        cutoff = now - self.retention_days * 86400.0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "DELETE FROM acknowledgements WHERE request_id IN (SELECT request_id FROM decisions WHERE created_unix < ?)",
                    (cutoff,))
                removed = self._conn.execute("DELETE FROM decisions WHERE created_unix < ?", (cutoff,)).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._last_purge = now
        return removed

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM decisions WHERE request_id = ?", (request_id,))
            row = cursor.fetchone()
            return None if row is None else dict(zip([c[0] for c in cursor.description], row))

    def export_rows(self, since_unix: float = 0.0) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(EXPORT_QUERY, (since_unix,)).fetchall()

    def export_csv(self, since_unix: float = 0.0) -> str:
        buffer = io.StringIO()
        write_csv(self.export_rows(since_unix), buffer)
        return buffer.getvalue()


# Decisions with their latest acknowledgement. The export is an admin download (token, or root on
# the device), not a log, so it carries the staff's override reason too.
EXPORT_QUERY = (
    "SELECT d.seq, d.request_id, d.created_utc, d.model_sha256, d.input_digest, d.level, d.model_level,"
    " d.probabilities, d.rules_fired, d.review_required, d.degraded, d.latency_ms, d.source,"
    " a.action, a.final_level, a.created_utc, a.reason FROM decisions d LEFT JOIN acknowledgements a ON a.seq ="
    " (SELECT MAX(seq) FROM acknowledgements WHERE request_id = d.request_id)"
    " WHERE d.created_unix >= ? ORDER BY d.seq")


def write_csv(rows: Iterable[tuple[Any, ...]], stream: IO[str]) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
