"""A hot board for the service run: the monitors' own fake Raspberry Pi 4 tree
(``tests.kit.fake_boards``: real sysfs layout, millidegrees, critical trip 110 °C) under a
temporary root that the service's ``monitor_root`` points at.

With the policy defaults the Pi 4 limit is min(85, 110 − 15) = 85 °C and "hot" starts at 80 °C:
82 °C is hot (fewer threads, a token cap, half the admission, still model answers); 90 °C is
critical (rules-only degraded answers, clinician review now).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from tests.kit.fake_boards import FakeBoard, raspberry_pi_4

HOT_C = 82.0
CRITICAL_C = 90.0


def make_hot_root(root: Path) -> tuple[FakeBoard, str]:
    """Lay out the tree at ``HOT_C``; returns the board (to heat further) and what it is."""
    root.mkdir(parents=True, exist_ok=True)
    board = raspberry_pi_4(root, temp_c=HOT_C)
    return board, f"tests.kit.fake_boards.raspberry_pi_4 at {HOT_C:.0f} °C (policy state 'hot')"


def wait_for_state(get: Callable[[str], tuple[int, bytes]], state: str, timeout_s: float = 20.0) -> bool:
    """Poll the service's /metrics until the thermal policy reports ``state``."""
    wanted = f'edge_policy_thermal_state{{state="{state}"}} 1'
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            status, body = get("/metrics")
        except OSError:
            status, body = 0, b""
        if status == 200 and wanted in body.decode(errors="replace"):
            return True
        time.sleep(0.25)
    return False
