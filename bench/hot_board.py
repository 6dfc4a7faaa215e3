"""A hot board for the service run: the monitors' own fake Raspberry Pi 4 tree
(``edge.testing.fake_boards``: real sysfs layout, millidegrees, critical trip 110 °C) under a
temporary root that the service's ``monitor_root`` points at, with the CPU zone at 82 °C.
With the policy defaults that is the "hot" state (limit min(85, 110 − 15) = 85 °C, hot from
80 °C): fewer threads, a token cap and half the admission, but still model answers.
"""

from __future__ import annotations

from pathlib import Path

from edge.testing.fake_boards import raspberry_pi_4

HOT_C = 82.0
EXPECTED_STATE = "hot"


def make_hot_root(root: Path) -> tuple[Path, str]:
    """Lay out the tree; returns (root, what it is)."""
    root.mkdir(parents=True, exist_ok=True)
    raspberry_pi_4(root, temp_c=HOT_C)
    return root, f"edge.testing.fake_boards.raspberry_pi_4 at {HOT_C:.0f} °C (policy state '{EXPECTED_STATE}')"


def wait_for_state(get: object, state: str = EXPECTED_STATE, timeout_s: float = 20.0) -> bool:
    """Poll the service's /metrics until the thermal policy reports ``state``."""
    import time

    wanted = f'edge_policy_thermal_state{{state="{state}"}} 1'
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        status, body = get("/metrics")  # type: ignore[operator]
        if status == 200 and wanted in body.decode(errors="replace"):
            return True
        time.sleep(0.25)
    return False
