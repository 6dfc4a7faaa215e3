"""Cache-cold, interleaved timing: the board's regime, and ratios that noise cannot tilt.

Why: the build VM reports a 300 MiB last-level cache, so in a hot loop every graph's weights
(12 MB int8, 44 MB fp32) are read from cache and the int8 bundle's main advantage — a quarter of
the bytes to stream — does not show. The boards have 1-4 MiB: every inference reads its weights
from DRAM. Here the last-level cache is flushed (a read of a buffer 1.5x its size, untimed)
before every timed call, so each call streams its weights from memory as on a board.

And why interleaved: on a shared VM a slow stretch lasting seconds lands on whichever backend is
being timed then, and a ratio of two medians timed one after the other swung 0.7-1.5x between
back-to-back runs. Here every round calls each backend once, in an order rotated each round, and
the reported ratio is the median of the per-round ratios (paired): a slow stretch hits both sides.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from bench.backends import SHIPPED, Backend
from bench.bandwidth import available_bytes, last_level_cache_bytes
from bench.stats import summarize_ms

FLUSH_MULTIPLE = 1.5          # the buffer read before each call, in last-level caches
FLUSH_FALLBACK_BYTES = 64 << 20  # when the kernel does not list the cache
FLUSH_MEMORY_SHARE = 0.1      # never more than this share of available memory


@dataclass(frozen=True)
class ColdBudget:
    warmup: int = 3
    min_rounds: int = 20
    max_rounds: int = 80
    max_seconds: float = 20.0


class CacheFlusher:
    """Evicts the last-level cache by reading a buffer larger than it."""

    def __init__(self, llc_bytes: int | None = None) -> None:
        llc = llc_bytes or last_level_cache_bytes()
        wanted = int(FLUSH_MULTIPLE * llc) if llc else FLUSH_FALLBACK_BYTES
        available = available_bytes()
        if available:
            wanted = min(wanted, int(available * FLUSH_MEMORY_SHARE))
        self.bytes = max(wanted, 1 << 20)
        self.llc_bytes = llc
        self._buffer = np.ones(self.bytes // 8, dtype=np.int64)  # written once: pages are real, not the zero page

    def flush(self) -> None:
        self._buffer.sum()

    def describe(self) -> dict[str, Any]:
        return {"flush_mib": round(self.bytes / (1 << 20), 1),
                "llc_mib": round(self.llc_bytes / (1 << 20), 2) if self.llc_bytes else None,
                "evicts_llc": bool(self.llc_bytes) and self.bytes >= self.llc_bytes}


def time_interleaved(calls: dict[str, Callable[[], object]], budget: ColdBudget,
                     before_each: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Per-call milliseconds of each named call, ``calls`` run round-robin (order rotated every
    round), ``before_each`` (untimed) before every timed call. Stops after ``max_rounds`` or, past
    ``min_rounds``, once ``max_seconds`` have passed."""
    names = list(calls)
    for name in names:
        for _ in range(budget.warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    began = time.perf_counter()
    for round_index in range(budget.max_rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if before_each is not None:
                before_each()
            started = time.perf_counter()
            calls[name]()
            samples[name].append((time.perf_counter() - started) * 1000.0)
        if round_index + 1 >= budget.min_rounds and time.perf_counter() - began > budget.max_seconds:
            break
    return samples


def paired_ratio(samples: list[float], reference: list[float]) -> float:
    """Median over rounds of this call's time / the reference call's time in the same round."""
    return statistics.median(a / b for a, b in zip(samples, reference) if b > 0)


def run(backends: list[Backend], ids: np.ndarray, features: np.ndarray, label: str, budget: ColdBudget,
        flusher: CacheFlusher) -> list[dict[str, Any]]:
    """Rows like the model-level table's (input ``label``), each with ``p50_paired_vs_shipped``."""
    calls = {b.name: (lambda b=b: b(ids, features)) for b in backends}
    samples = time_interleaved(calls, budget, flusher.flush)
    rows = []
    for backend in backends:
        row: dict[str, Any] = {"backend": backend.name, "threads": backend.threads, "input": label,
                               "tokens": int(ids.shape[1]), **summarize_ms(samples[backend.name]),
                               "regime": "cache-cold, interleaved"}
        if SHIPPED in samples:
            row["p50_paired_vs_shipped"] = round(paired_ratio(samples[backend.name], samples[SHIPPED]), 3)
        rows.append(row)
    return rows
