"""Energy per inference from the board's own power sensor (Jetson INA3221, Pi 5 PMIC).

Idle first: board power sampled for ``idle_s`` with nothing running. Then the same sampler runs
beside a fixed triage loop. Joules per inference = (mean loaded W − mean idle W) × loop seconds /
inferences: the energy the inferences added, not the board's idle draw (which it pays anyway).
The sampler thread runs in both phases, so its own small cost cancels out.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.board import power

# The PMIC is read through a vcgencmd process per sample; INA3221 files are cheap to read.
INTERVAL_S = {"ina3221": 0.05, "pmic": 0.2}


@dataclass
class PowerSamples:
    watts: list[float] = field(default_factory=list)
    unavailable: int = 0  # samples whose total could not be read (a broken rail)


def sample_power(root: str, source: str, stop: threading.Event, out: PowerSamples) -> None:
    while not stop.is_set():
        reading = power.read(root)
        if reading.total_w is None:
            out.unavailable += 1
        else:
            out.watts.append(reading.total_w)
        stop.wait(INTERVAL_S.get(source, 0.2))


def _sampled(root: str, source: str, work: Callable[[], int]) -> tuple[PowerSamples, float, int]:
    samples, stop = PowerSamples(), threading.Event()
    thread = threading.Thread(target=sample_power, args=(root, source, stop, samples), name="power-sampler", daemon=True)
    thread.start()
    started = time.perf_counter()
    try:
        count = work()
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join(10.0)
    return samples, elapsed, count


def measure_board(loop: Callable[[], int], root: str = "/", idle_s: float = 2.0) -> dict[str, Any] | None:
    """The measured figure, or None when the board has no readable power sensor (the caller
    falls back to the estimate and says so)."""
    first = power.read(root)
    if not first.available:
        return None
    idle, _, _ = _sampled(root, first.source, lambda: time.sleep(idle_s) or 0)
    loaded, seconds, count = _sampled(root, first.source, loop)
    if not idle.watts or not loaded.watts or not count:
        return None
    idle_w, loaded_w = statistics.fmean(idle.watts), statistics.fmean(loaded.watts)
    joules = max(0.0, loaded_w - idle_w) * seconds / count
    return {
        "joules_per_inference": float(f"{joules:.4g}"),
        "method": "board_power_sensor",
        "source": first.source,
        "idle_w": round(idle_w, 4), "loaded_w": round(loaded_w, 4),
        "seconds": round(seconds, 3), "inferences": count,
        "samples": {"idle": len(idle.watts), "loaded": len(loaded.watts),
                    "unavailable": idle.unavailable + loaded.unavailable},
        "rails_w": dict(first.rails_w),
        "detail": f"{first.source} board power: idle {idle_w:.3f} W ({len(idle.watts)} samples over {idle_s:g} s), "
                  f"loaded {loaded_w:.3f} W ({len(loaded.watts)} samples) over {count} inferences in {seconds:.2f} s; "
                  "(loaded − idle) × time / inferences",
    }
