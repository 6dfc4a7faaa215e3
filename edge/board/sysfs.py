"""Defensive readers for sysfs/procfs files under a configurable root.

Sensors on real boards break in many ways: the file is missing, unreadable (EACCES, EIO, a
directory where a file should be), or holds garbage. Every reader here returns a value or a
machine error code ("missing", "unreadable", "garbage") and never raises, so one broken sensor
can never take the monitor (and with it the service) down.
"""

from __future__ import annotations

import os
from pathlib import Path

MISSING = "missing"
UNREADABLE = "unreadable"
GARBAGE = "garbage"

# sysfs attributes are tiny; a "file" longer than this is not the attribute we expect.
_MAX_ATTR_BYTES = 4096


def under(root: str | os.PathLike[str], absolute: str) -> Path:
    """``absolute`` (e.g. "/sys/class/thermal") re-rooted under ``root``."""
    return Path(root) / absolute.lstrip("/")


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, error code)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_ATTR_BYTES + 1)
    except FileNotFoundError:
        return None, MISSING
    except (IsADirectoryError, PermissionError, OSError):
        # EIO from a dying I2C sensor, EACCES, EISDIR, EOPNOTSUPP (PSI disabled at boot) ...
        return None, UNREADABLE
    if len(raw) > _MAX_ATTR_BYTES:
        return None, GARBAGE
    try:
        return raw.decode("ascii").strip(), None
    except UnicodeDecodeError:
        return None, GARBAGE


def read_int(path: Path) -> tuple[int | None, str | None]:
    text, error = read_text(path)
    if error is not None:
        return None, error
    assert text is not None
    try:
        return int(text), None
    except ValueError:
        return None, GARBAGE


def sorted_numeric(paths: list[Path]) -> list[Path]:
    """thermal_zone2 before thermal_zone10."""

    def key(path: Path) -> tuple[str, int]:
        digits = "".join(ch for ch in path.name if ch.isdigit())
        return (path.name.rstrip("0123456789"), int(digits) if digits else -1)

    return sorted(paths, key=key)
