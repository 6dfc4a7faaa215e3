"""This machine's memory bandwidth, STREAM style, with numpy.

At 3-11 tokens every weight is read once or a handful of times per inference, so the floor is
bytes / bandwidth, not FLOPs / peak. The bandwidth is measured, not looked up: STREAM's copy
(b = a) and triad (a = b + s*c) on float64 arrays each at least 4x the last-level cache (STREAM's
own sizing rule, so the arrays come from DRAM and not from cache), best of a few runs.

Byte counting follows STREAM (copy 16 B per element, triad 24 B, writes counted once, the
write-allocate read not counted) so the figures compare with published STREAM results. numpy
cannot fuse the triad: it runs two passes (a = s*c, then a += b), which moves 40 B per element;
``triad_gbs`` uses STREAM's 24 B (understating what the bus did) and ``triad_gbs_actual`` the 40 B.
The floor takes the best of copy and actual triad, so it stays a lower bound on time.

With ``threads`` > 1 the arrays are cut into that many slices, copied by that many Python
threads at once (numpy releases the GIL inside copies and ufunc loops).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

STREAM_CACHE_MULTIPLE = 4        # STREAM's rule: each array >= 4x the sum of the caches
MIN_ARRAY_BYTES = 64 << 20       # when the cache size cannot be read
MEMORY_SHARE_PER_ARRAY = 1 / 10  # three arrays take at most 30 % of available memory (a shared box)


@dataclass(frozen=True)
class Bandwidth:
    threads: int
    array_mib: float                 # each of the three arrays
    llc_mib: float | None            # last-level cache as the kernel reports it (None: unreadable)
    meets_stream_rule: bool          # array_mib >= 4 x llc_mib
    copy_gbs: float                  # STREAM convention, 16 B per element
    triad_gbs: float                 # STREAM convention, 24 B per element
    triad_gbs_actual: float          # numpy's two passes, 40 B per element
    best_gbs: float                  # max(copy, triad actual): what the floor divides by
    runs: int
    method: str = ("numpy float64 STREAM copy and triad, best run; GB = 1e9 bytes; arrays sized from the "
                   "last-level cache (4x) and capped by available memory")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """Largest cache level the kernel lists for cpu0 (the LLC; shared or not)."""
    sizes = []
    for index in sorted(Path(root).glob("index*")):
        try:
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def array_bytes(llc: int | None, available: int | None) -> int:
    wanted = max(MIN_ARRAY_BYTES, STREAM_CACHE_MULTIPLE * llc) if llc else MIN_ARRAY_BYTES
    if available:
        wanted = min(wanted, max(MIN_ARRAY_BYTES, int(available * MEMORY_SHARE_PER_ARRAY)))
    return wanted


def _best(step, slices: list[tuple[int, int]], pool: ThreadPoolExecutor | None, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        if pool is None:
            step(*slices[0])
        else:
            list(pool.map(lambda s: step(*s), slices))
        best = min(best, time.perf_counter() - started)
    return best


def measure(threads: tuple[int, ...] = (1,), runs: int = 3, size_bytes: int | None = None) -> list[Bandwidth]:
    """STREAM copy and triad at each thread count, on one set of arrays (allocating and touching
    gigabytes is most of the cost); the arrays are freed before returning."""
    llc = last_level_cache_bytes()
    size = size_bytes or array_bytes(llc, available_bytes())
    n = size // 8
    # np.full touches every page now, so first-touch page faults are not timed.
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.full(n, 0.5)
    scalar = 3.0

    def copy(lo: int, hi: int) -> None:
        np.copyto(b[lo:hi], a[lo:hi])

    def triad(lo: int, hi: int) -> None:
        np.multiply(c[lo:hi], scalar, out=a[lo:hi])
        np.add(a[lo:hi], b[lo:hi], out=a[lo:hi])

    results = []
    try:
        for t in threads:
            bounds = np.linspace(0, n, t + 1, dtype=np.int64)
            slices = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
            pool = ThreadPoolExecutor(t) if t > 1 else None
            try:
                copy_s = _best(copy, slices, pool, runs)
                triad_s = _best(triad, slices, pool, runs)
            finally:
                if pool is not None:
                    pool.shutdown()
            copy_gbs, triad_actual = 16 * n / copy_s / 1e9, 40 * n / triad_s / 1e9
            results.append(Bandwidth(
                threads=t, array_mib=round(size / (1 << 20), 1), llc_mib=round(llc / (1 << 20), 2) if llc else None,
                meets_stream_rule=bool(llc) and size >= STREAM_CACHE_MULTIPLE * llc,
                copy_gbs=round(copy_gbs, 2), triad_gbs=round(24 * n / triad_s / 1e9, 2),
                triad_gbs_actual=round(triad_actual, 2), best_gbs=round(max(copy_gbs, triad_actual), 2), runs=runs))
    finally:
        del a, b, c
    return results


if __name__ == "__main__":
    for result in measure((1, min(2, os.cpu_count() or 1))):
        print(result)
