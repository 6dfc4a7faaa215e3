"""Energy per inference.

Preferred: the board's own power sensor (Jetson INA3221, Pi 5 PMIC; bench/board_energy.py), idle
then loaded. Next: Intel/AMD RAPL package energy counters under ``/sys/class/powercap/intel-rapl*``
(``energy_uj``), read before and after a timed loop. Most VMs and all ARM boards lack them, so the
fallback is an ``estimate``: CPU-seconds per inference × a documented power figure per busy core
for the board, with its assumptions spelled out. The output always says which method produced
the number.
"""

from __future__ import annotations

import glob
import platform
import time
from pathlib import Path
from typing import Any, Callable

from bench.board_energy import measure_board

# Watts drawn per fully busy core above idle, with where the figure comes from. These are board
# level estimates (whole-board power meter deltas divided by cores), not measurements made here.
POWER_PER_BUSY_CORE_W: dict[str, tuple[float, str]] = {
    "raspberry-pi-4": (0.95, "Pi 4B: ~2.7 W idle → ~6.4 W with 4 cores busy (board meter, published reviews); (6.4-2.7)/4"),
    "raspberry-pi-5": (1.6, "Pi 5: ~2.7 W idle → ~9.3 W with 4 cores busy (Raspberry Pi Ltd / reviews); (9.3-2.7)/4"),
    "jetson-orin-nano": (1.25, "Orin Nano 8GB 15 W mode, CPU cluster ~7.5 W for 6 cores (NVIDIA power estimator); /6"),
    "x86_64-server-core": (5.0, "server x86-64 core under load: ~TDP/cores, e.g. EPYC 9005 360 W / 64 cores ≈ 5.6 W; rounded to 5 W"),
}


def rapl_zones(root: str = "/sys/class/powercap") -> list[Path]:
    zones = [Path(p) for p in sorted(glob.glob(f"{root}/intel-rapl*:*")) if Path(p, "energy_uj").is_file()]
    # Package zones only (intel-rapl:N), not their sub-zones (intel-rapl:N:M), to avoid double counting.
    return [z for z in zones if z.name.count(":") == 1]


def read_rapl_uj(zones: list[Path]) -> int | None:
    try:
        return sum(int(Path(z, "energy_uj").read_text().strip()) for z in zones)
    except (OSError, ValueError):  # present but unreadable (root-only since 2020 on most kernels)
        return None


def detect_board(root: str = "/") -> str:
    model = Path(root, "proc/device-tree/model")
    text = model.read_text(errors="ignore").lower() if model.is_file() else ""
    if "raspberry pi 5" in text:
        return "raspberry-pi-5"
    if "raspberry pi" in text:
        return "raspberry-pi-4"
    if "jetson" in text or "orin" in text:
        return "jetson-orin-nano"
    return "x86_64-server-core" if platform.machine() in ("x86_64", "AMD64") else "raspberry-pi-4"


ESTIMATE_ASSUMPTIONS = ("the inference keeps one core busy for its CPU time and nothing else on the board "
                        "changes; the per-core watts are published board-level figures for this board class, "
                        "not measured here; idle power is excluded")


def measure(loop: Callable[[], int], cpu_seconds_per_inference: float | None = None, root: str = "/",
            idle_s: float = 2.0) -> dict[str, Any]:
    """Joules per inference for ``loop`` (runs inferences, returns how many). The board's power
    sensor under ``root`` where there is one, else RAPL where readable, else the estimate:
    CPU-seconds × the board's per-core figure (``cpu_seconds_per_inference`` if already known)."""
    measured = measure_board(loop, root, idle_s)
    if measured is not None:
        return measured
    from edge.board import power

    sensor = power.read(root)
    no_sensor = ("no board power sensor" if sensor.source == "none"
                 else f"{sensor.source} power sensor unreadable ({', '.join(sensor.sensor_errors)})")
    zones = rapl_zones(str(Path(root, "sys/class/powercap")))
    before = read_rapl_uj(zones) if zones else None
    if before is not None:
        started = time.perf_counter()
        count = loop()
        after = read_rapl_uj(zones)
        if after is not None and count and after >= before:
            return {"joules_per_inference": float(f"{(after - before) / 1e6 / count:.4g}"), "method": "rapl",
                    "detail": f"package energy_uj delta over {count} inferences ({time.perf_counter() - started:.1f} s), "
                              f"zones {[z.name for z in zones]}; includes idle package power"}
    if cpu_seconds_per_inference is None:
        cpu_start = time.process_time()
        count = loop()
        cpu_seconds_per_inference = (time.process_time() - cpu_start) / max(1, count)
    board = detect_board(root)
    watts, source = POWER_PER_BUSY_CORE_W[board]
    return {
        "joules_per_inference": float(f"{cpu_seconds_per_inference * watts:.4g}"),
        "method": "estimate",
        "assumptions": ESTIMATE_ASSUMPTIONS,
        "detail": f"{no_sensor}, RAPL {'unreadable' if zones else 'absent'} here; "
                  f"{cpu_seconds_per_inference * 1000:.3f} CPU-ms per inference "
                  f"× {watts} W per busy core ({board}: {source})",
        "cpu_seconds_per_inference": float(f"{cpu_seconds_per_inference:.4g}"),
        "board": board, "watts_per_busy_core": watts,
    }
