"""Files at rest: the audit database (and SQLite's -wal and -shm beside it) and every key file are
0600 in 0700 directories the service created, whatever the umask; checked again at every start.

Why at start and not only at creation: a database created by an older release (0644, the issue's
finding) or restored from a backup keeps its mode; an input digest key or an audit row readable by
another local account is a privacy leak even on an offline box.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from edge.errors import EdgeError

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents 0700 (umask-proof); existing ones are left alone:
    they may be shared system directories such as /var/lib."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if absent (never truncating an existing file)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, FILE_MODE)
    os.close(fd)


def ensure_private(path: Path, what: str, field: str | None = None) -> None:
    """``path`` (if it exists) must be a regular file readable by its owner only: tighten it when
    this process owns it (an upgrade from a 0644 release), else refuse with how to fix it."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise EdgeError("file_not_regular", f"{what} {path} is not a regular file (a link or device); replace it "
                        "with a plain file.", field=field, http_status=500)
    if info.st_mode & 0o077 == 0:
        return
    if info.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
        log.warning("%s %s was readable by other accounts; tightened to owner-only", what, path)
        return
    raise EdgeError("file_permissions", f"{what} {path} is readable by other accounts and owned by another user; "
                    f"run `chown $(id -u) {path} && chmod 600 {path}` as root.", field=field, http_status=500)


def prepare_database(path: Path) -> None:
    """Before SQLite opens ``path``: create it 0600 (SQLite then gives its -wal and -shm the same
    mode) and tighten any existing database and side files."""
    create_private(path)
    for suffix in ("", *SQLITE_SIDE_FILES):
        ensure_private(Path(f"{path}{suffix}"), "Audit database file", field="audit_db")
