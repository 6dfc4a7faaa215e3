"""Audit log: append-only records without patient text, acknowledgements, retention, CSV export,
and crash safety under ``kill -9`` of a real writer process."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.service.audit import AuditLog, input_digest, load_or_create_key
from edge.clinical.case import TriageCase
from edge.errors import EdgeError
from edge.inference.triager import Triager

REPO = Path(__file__).resolve().parents[1]


def _result(level: int = 3, degraded: str | None = None):
    """A real TriageResult (the rules-only path needs no model), with the level and state we want."""
    result = Triager(None).degraded(TriageCase(complaint="cough"), degraded or "none")
    result.level, result.degraded = level, degraded
    return result


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    log = AuditLog.open(tmp_path / "audit.sqlite3", tmp_path / "audit.key")
    yield log
    log.close()


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "k")
    assert len(key) == 32 and os.stat(tmp_path / "k").st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "k") == key
    os.chmod(tmp_path / "k", 0o644)
    with pytest.raises(EdgeError) as error:
        load_or_create_key(tmp_path / "k")
    assert error.value.code == "audit_key_permissions"


def test_record_holds_a_keyed_digest_not_the_text(audit: AuditLog, tmp_path: Path) -> None:
    canary = "zebra-canary-7731 crushing chest pain"
    case = TriageCase(complaint=canary, age=71, hr=133)
    result = _result(2)
    audit.record(case, result, "kiosk")
    row = audit.get(result.request_id)
    assert row["input_digest"] == input_digest(load_or_create_key(tmp_path / "audit.key"), case)
    assert row["input_digest"] != input_digest(b"another device key 123456", case)
    assert row["level"] == 2 and row["source"] == "kiosk" and row["degraded"] is None
    audit.close()
    for path in tmp_path.iterdir():
        assert b"zebra-canary-7731" not in path.read_bytes(), f"patient text found in {path.name}"


def test_records_are_append_only(audit: AuditLog) -> None:
    result = _result(3)
    audit.record(TriageCase(complaint="cough"), result)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        audit._conn.execute("UPDATE decisions SET level = 5")
    assert audit.get(result.request_id)["level"] == 3


def test_acknowledge_and_override(audit: AuditLog) -> None:
    result = _result(3)
    audit.record(TriageCase(complaint="cough"), result)
    assert audit.acknowledge(result.request_id, 3)["action"] == "acknowledge"
    assert audit.acknowledge(result.request_id, 2, "worse on reassessment")["action"] == "override"
    rows = list(csv.DictReader(io.StringIO(audit.export_csv())))
    assert len(rows) == 1 and rows[0]["ack_action"] == "override" and rows[0]["ack_final_level"] == "2"
    assert rows[0]["ack_reason"] == "worse on reassessment"


def test_degraded_state_is_recorded(audit: AuditLog) -> None:
    result = _result(2, degraded="thermal")
    audit.record(TriageCase(complaint="cough"), result)
    assert audit.get(result.request_id)["degraded"] == "thermal"


def test_retention_purges_old_records(audit: AuditLog) -> None:
    result = _result(3)
    audit.record(TriageCase(complaint="cough"), result)
    audit.acknowledge(result.request_id, 3)
    assert audit.purge(now=time.time() + 30 * 86400) == 0
    assert audit.purge(now=time.time() + 366 * 86400) == 1
    assert audit.count() == 0


def test_concurrent_writers_are_group_committed(tmp_path: Path) -> None:
    import threading

    log = AuditLog.open(tmp_path / "audit.sqlite3", tmp_path / "audit.key", synchronous="FULL")
    ids: list[str] = []

    def writer() -> None:
        for _ in range(25):
            result = _result(3)
            log.record(TriageCase(complaint="cough"), result)  # returns only once committed
            assert log.get(result.request_id) is not None
            ids.append(result.request_id)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert log.count() == 200 == log.written == len(set(ids))
    log.close()


def test_a_batch_is_one_transaction_however_large(audit: AuditLog) -> None:
    """The writer commits a batch as one statement, or one transaction past its size: all of it
    or none of it (a failed batch tells every waiting request)."""
    from edge.service.audit_writer import ROWS_PER_INSERT

    def row(request_id: str) -> tuple:
        return (request_id, "2026-01-01T00:00:00.000+00:00", 0.0, None, input_digest(b"k" * 32, TriageCase(complaint="x")),
                3, None, "null", "[]", 1, "none", 1.0, "api")

    big = [row(f"big-{i}") for i in range(ROWS_PER_INSERT * 2 + 7)]
    assert audit._writer._commit(big) and audit.count() == len(big)
    clashing = [row(f"new-{i}") for i in range(ROWS_PER_INSERT + 3)] + [row("big-0")]  # request_id is unique
    assert not audit._writer._commit(clashing)
    assert audit.count() == len(big), "no row of a failed batch may remain"
    assert audit._writer._commit([row("one")]) and audit.count() == len(big) + 1  # and the log still writes


def test_the_wal_is_checkpointed_beside_the_writer(audit: AuditLog) -> None:
    """No commit carries a checkpoint (they stalled answers 100-220 ms under load); a thread of
    its own copies committed pages into the database file, so the WAL does not grow for ever."""
    assert audit._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    before = audit.path.stat().st_size
    for _ in range(300):
        audit.record(TriageCase(complaint="cough"), _result(3))
    for _ in range(100):  # bounded: the checkpointer runs every CHECKPOINT_EVERY_S
        if audit.path.stat().st_size > before:
            break
        time.sleep(0.05)
    assert audit.path.stat().st_size > before, "committed pages never reached the database file"


def test_record_after_close_is_refused(audit: AuditLog) -> None:
    audit.close()
    with pytest.raises(EdgeError) as error:
        audit.record(TriageCase(complaint="cough"), _result(3))
    assert error.value.code == "audit_closed"


def _later(audit: AuditLog, count: int = 1) -> tuple[threading.Event, list]:
    """record_later for ``count`` new decisions; returns (called, what the continuation saw)."""
    called, seen = threading.Event(), []

    def then(error: EdgeError | None) -> None:
        # Only a committed row is looked up: a test may hold the log's lock while it fails.
        seen.append((error, [audit.get(r.request_id) is not None for r in results] if error is None else None))
        called.set()

    results = [_result(3) for _ in range(count)]
    audit.record_later([(TriageCase(complaint="cough"), r, "api") for r in results], then)
    return called, seen


def test_record_later_continues_once_every_row_is_committed(audit: AuditLog) -> None:
    called, seen = _later(audit, 3)
    assert called.wait(5)
    assert seen == [(None, [True, True, True])], "called once, with every row already in the log"


def test_record_later_gives_up_on_a_stuck_writer_and_calls_once(audit: AuditLog, monkeypatch) -> None:
    import edge.service.audit_writer as writer_module

    monkeypatch.setattr(writer_module, "COMMIT_WAIT_S", 0.2)
    with audit._lock:  # the writer cannot commit
        called, seen = _later(audit)
        assert called.wait(5), "the checkpointer gives up on it within a second past COMMIT_WAIT_S"
    assert seen[0][0].code == "audit_write_timeout"
    time.sleep(0.3)  # the writer has committed it by now, late: the continuation is not called again
    assert len(seen) == 1 and audit.count() == 1


def test_record_later_reports_a_failed_commit(audit: AuditLog, monkeypatch) -> None:
    monkeypatch.setattr(audit._writer, "_commit", lambda batch: False)
    called, seen = _later(audit)
    assert called.wait(5) and seen[0][0].code == "audit_write_failed"


def test_record_later_after_close_is_refused_and_calls_nothing(audit: AuditLog) -> None:
    audit.close()
    with pytest.raises(EdgeError) as error:
        _later(audit)
    assert error.value.code == "audit_closed"


WRITER = """
import sys
from edge.service.audit import AuditLog
from edge.clinical.case import TriageCase
from edge.inference.triager import Triager
log = AuditLog.open(sys.argv[1], sys.argv[2], synchronous=sys.argv[3])
triager = Triager(None)
n = 0
while True:
    result = triager.degraded(TriageCase(complaint="cough", hr=90), "deadline")
    log.record(TriageCase(complaint="cough", hr=90), result)
    n += 1
    print(n, flush=True)  # printed only after the commit returned
"""


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_kill_9_mid_write_loses_no_committed_record(tmp_path: Path, synchronous: str) -> None:
    db, key = tmp_path / "audit.sqlite3", tmp_path / "audit.key"
    committed = 0
    for _round in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(key), synchronous], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        seen = 0
        assert writer.stdout is not None
        for line in writer.stdout:
            seen = int(line)
            if seen >= 150:
                break
        os.kill(writer.pid, signal.SIGKILL)
        # Anything still in the pipe was committed too; read it before counting.
        for line in writer.stdout:
            seen = int(line)
        writer.wait(10)
        assert writer.returncode == -signal.SIGKILL
        committed += seen
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            count = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        # Every record the writer saw committed survived; at most the one in flight is extra.
        assert committed <= count <= committed + 1
        committed = count


def test_audit_export_command_reads_a_live_log(audit: AuditLog, tmp_path: Path) -> None:
    result = _result(2)
    audit.record(TriageCase(complaint="cough"), result)
    audit.acknowledge(result.request_id, 3, "seen, stable")
    out = tmp_path / "export.csv"
    done = subprocess.run([sys.executable, "-m", "edge.cli", "audit-export", "--db", str(audit.path), "--output",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["request_id"] for r in rows] == [result.request_id] and rows[0]["ack_action"] == "override"
    missing = subprocess.run([sys.executable, "-m", "edge.cli", "audit-export", "--db", str(tmp_path / "none")],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "audit_missing" in missing.stderr
