"""Files at rest: the audit database, its WAL and SHM and the key file are 0600 in 0700
directories even under a permissive umask, and a database left 0644 by an older release is
tightened at start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.service.audit import AuditLog
from edge.clinical.case import TriageCase
from edge.errors import EdgeError
from edge.service.private_files import ensure_private
from edge.inference.triager import Triager


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0o022)  # the usual login umask: 0644 files, 0755 directories
    yield
    os.umask(previous)


def _record_one(log: AuditLog) -> None:
    case = TriageCase(complaint="cough")
    log.record(case, Triager(None).triage_batch([case])[0], "api")


def test_database_wal_shm_and_key_are_private(tmp_path: Path, open_umask) -> None:
    state = tmp_path / "var" / "lib" / "edge"
    log = AuditLog.open(state / "audit.sqlite3", state / "keys" / "audit.key")
    try:
        _record_one(log)
        for name in ("audit.sqlite3", "audit.sqlite3-wal", "audit.sqlite3-shm", "keys/audit.key"):
            assert (state / name).exists() and _mode(state / name) == 0o600, name
        for directory in (tmp_path / "var", tmp_path / "var" / "lib", state, state / "keys"):
            assert _mode(directory) == 0o700, directory
    finally:
        log.close()


def test_a_world_readable_database_is_tightened_at_start(tmp_path: Path, open_umask) -> None:
    db = tmp_path / "audit.sqlite3"
    first = AuditLog.open(db, tmp_path / "audit.key")
    _record_one(first)
    first.close()
    for path in tmp_path.glob("audit.sqlite3*"):
        os.chmod(path, 0o644)  # as an older release left it
    again = AuditLog.open(db, tmp_path / "audit.key")
    try:
        assert all(_mode(p) == 0o600 for p in tmp_path.glob("audit.sqlite3*"))
    finally:
        again.close()


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o644)
    with pytest.raises(EdgeError) as info:
        AuditLog.open(tmp_path / "audit.sqlite3", key)
    assert info.value.code == "audit_key_permissions" and "chmod 600" in info.value.message


def test_a_symlinked_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.sqlite3").write_bytes(b"")
    os.symlink(tmp_path / "elsewhere.sqlite3", tmp_path / "audit.sqlite3")
    with pytest.raises(EdgeError) as info:
        ensure_private(tmp_path / "audit.sqlite3", "Audit database file")
    assert info.value.code == "file_not_regular"
