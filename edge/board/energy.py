"""Energy the running service spends on triage, from the board's own power sensor, for /metrics.

Each finished model inference adds (board power now) × (its inference time) joules, and its case
count, under the power source's name ("ina3221", "pmic"). Board power is the monitor's latest
sample (every ``monitor_interval_s``); inference keeps the board busy for far longer than one
sample when it matters, so the latest sample is the power the inference ran at. The figure
includes the board's idle draw for that time: it is what a box spends per answer, which is what a
fleet compares. Without a sensor (source "none") inferences are counted and no joules are made up;
``bench/energy.py`` gives the estimate for such boards.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class PowerNow:
    source: str  # "ina3221" | "pmic" | "none"
    watts: float | None  # None: no sensor or a broken one


@dataclass(frozen=True)
class EnergyTotals:
    joules: dict[str, float]  # by power source; only sources that measured
    inferences: dict[str, int]  # cases inferred by power source, "none" included
    measured: dict[str, int]  # cases whose energy was measured

    def joules_per_triage(self) -> dict[str, float]:
        return {source: self.joules[source] / n for source, n in self.measured.items() if n}


def power_from(monitor: object) -> PowerNow:
    """The latest board power of an ``edge.board.sampler.Monitor`` (or none without one)."""
    snapshot = getattr(monitor, "snapshot", None)
    if snapshot is None:
        return PowerNow("none", None)
    snap = snapshot()
    return PowerNow(str(getattr(snap, "power_source", "none")), getattr(snap, "power_w", None))


class EnergyMeter:
    def __init__(self, power: Callable[[], PowerNow]) -> None:
        self._power = power
        self._lock = threading.Lock()
        self._joules: Counter[str] = Counter()
        self._inferences: Counter[str] = Counter()
        self._measured: Counter[str] = Counter()

    def on_inference(self, seconds: float, cases: int) -> None:
        """A scheduler inference listener: ``cases`` inferred in ``seconds`` of model time."""
        try:
            now = self._power()
        except Exception:  # a broken reading costs this sample's energy, never the worker
            now = PowerNow("none", None)
        with self._lock:
            self._inferences[now.source] += cases
            if now.watts is not None and seconds >= 0:
                self._joules[now.source] += now.watts * seconds
                self._measured[now.source] += cases

    def totals(self) -> EnergyTotals:
        with self._lock:
            return EnergyTotals(dict(self._joules), dict(self._inferences), dict(self._measured))
