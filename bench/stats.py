"""Timing loops and percentile summaries shared by every benchmark."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class LoopBudget:
    """How long to time one configuration: warm-up calls first, then at least ``min_runs``
    timed calls, at most ``max_runs``, stopping early once ``max_seconds`` of timed calls passed
    (slow backends such as the fp32 teacher get fewer runs, and the count is reported)."""

    warmup: int = 5
    min_runs: int = 30
    max_runs: int = 300
    max_seconds: float = 4.0


def sig(value: float, digits: int = 4) -> float:
    """Round to significant digits (a 0.01 ms figure must not round to 0)."""
    return float(f"{value:.{digits}g}")


def summarize_ms(samples_ms: list[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": int(values.size),
        "p50_ms": round(float(np.percentile(values, 50)), 4),
        "p99_ms": round(float(np.percentile(values, 99)), 4),
        "mean_ms": round(float(values.mean()), 4),
        "min_ms": round(float(values.min()), 4),
    }


def time_calls(call: Callable[[int], object], budget: LoopBudget) -> tuple[list[float], float]:
    """Time ``call(i)`` for i = 0, 1, …; returns per-call wall milliseconds and the process
    CPU-seconds spent in the timed calls (for energy per inference)."""
    for i in range(budget.warmup):
        call(i)
    samples: list[float] = []
    cpu_start = time.process_time()
    loop_start = time.perf_counter()
    i = 0
    while i < budget.max_runs:
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000.0)
        i += 1
        if i >= budget.min_runs and time.perf_counter() - loop_start > budget.max_seconds:
            break
    return samples, time.process_time() - cpu_start
