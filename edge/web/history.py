"""Recent temperature and board power history for the status charts: a bounded ring of samples
per sensor (or power rail), taken from the monitor's snapshots at most once per interval."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class TemperatureHistory:
    def __init__(self, points: int = 120, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.points = points
        self.interval_s = interval_s
        self.clock = clock
        self._series: dict[str, deque[tuple[float, float]]] = {}
        self._last = 0.0
        self._lock = threading.Lock()
        self.follows_monitor = False  # True once the monitor's sampling thread feeds us

    def add(self, readings: dict[str, float], *, at: float | None = None, force: bool = False) -> None:
        now = self.clock() if at is None else at
        with self._lock:
            if not force and 0 <= now - self._last < self.interval_s:
                return
            self._last = now
            for name, celsius in readings.items():
                series = self._series.setdefault(name, deque(maxlen=self.points))
                series.append((round(now, 1), round(float(celsius), 2)))

    def on_sample(self, snapshot: object) -> None:
        """A monitor ``on_sample`` callback: record every sampled temperature (rate-limited)."""
        temps = getattr(snapshot, "temperatures_c", None) or {}
        at = getattr(snapshot, "time", None)
        self.add({str(k): float(v) for k, v in dict(temps).items() if isinstance(v, (int, float))},
                 at=at if isinstance(at, (int, float)) else None)

    def series(self) -> dict[str, list[list[float]]]:
        with self._lock:
            return {name: [list(p) for p in points] for name, points in self._series.items()}


POWER_TOTAL = "total"  # the series key of the board's total power, beside the rails'


def power_readings(snapshot: object) -> dict[str, float]:
    """Watts by rail plus the total, from a HealthSnapshot or its plain-dict form."""
    get = snapshot.get if isinstance(snapshot, dict) else lambda name: getattr(snapshot, name, None)
    rails = get("power_rails_w")
    out = {str(k): float(v) for k, v in dict(rails or {}).items() if isinstance(v, (int, float))}
    total = get("power_w")
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        out[POWER_TOTAL] = float(total)
    return out


class PowerHistory(TemperatureHistory):
    """Board power in watts, total and by rail, on the same ring and rate limit as temperatures."""

    def on_sample(self, snapshot: object) -> None:
        at = getattr(snapshot, "time", None)
        self.add(power_readings(snapshot), at=at if isinstance(at, (int, float)) else None)


class DecisionStats:
    """Latency percentiles and degraded answers over the most recent decisions, fed by the same
    result listener as the queue (so they count kiosk, staff and machine clients alike)."""

    def __init__(self, window: int = 1000) -> None:
        self._latencies: deque[float] = deque(maxlen=window)
        self.degraded: dict[str, int] = {}
        self.decisions = 0
        self._lock = threading.Lock()

    def listener(self, case: object, result: object, source: str) -> None:
        data = result if isinstance(result, dict) else getattr(result, "__dict__", {})
        latency = data.get("latency_ms")
        reason = data.get("degraded")
        with self._lock:
            self.decisions += 1
            if isinstance(latency, (int, float)):
                self._latencies.append(float(latency))
            if reason:
                self.degraded[str(reason)] = self.degraded.get(str(reason), 0) + 1

    def summary(self) -> dict[str, object]:
        with self._lock:
            values = sorted(self._latencies)
            degraded = dict(self.degraded)
            decisions = self.decisions

        def pct(q: float) -> float | None:
            if not values:
                return None
            return round(values[min(len(values) - 1, int(q * len(values)))], 2)

        return {"count": len(values), "decisions": decisions, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
                "p99_ms": pct(0.99), "max_ms": round(values[-1], 2) if values else None, "degraded": degraded}
