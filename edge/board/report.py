"""Sensor checks for ``edge-triage check``: thermal, memory and power, one list, one exit status."""

from __future__ import annotations

import os
from typing import Sequence

from edge.board import memory, power, thermal

Check = tuple[str, str, str]  # (check name, "ok" / "warn" / "fail", message saying how to fix)


def describe(root: str | os.PathLike[str] = "/",
             throttle_command: Sequence[str] | None = thermal.DEFAULT_THROTTLE_COMMAND,
             pmic_command: Sequence[str] | None = power.DEFAULT_PMIC_COMMAND) -> list[Check]:
    """Every monitor check for the board under ``root``. Never raises for sensor faults."""
    return thermal.describe(root, throttle_command) + memory.describe(root) + power.describe(root, pmic_command)


def exit_status(checks: Sequence[Check], strict: bool = False) -> int:
    """1 if any check failed (or, with ``strict``, warned); else 0."""
    bad = {"fail", "warn"} if strict else {"fail"}
    return 1 if any(level in bad for _, level, _ in checks) else 0
