"""Fake power sensors for the fake boards (tests/kit/fake_boards.py), laid out as the real ones:

- Jetson Orin Nano / NX (L4T r35/r36): one INA3221 at hwmon "ina3221" with channels
  in1..3_label VDD_IN, VDD_CPU_GPU_CV, VDD_SOC; inN_input in mV, currN_input in mA, plus the
  driver's currN_crit/currN_max limits. AGX Orin's monitor carries VDD_GPU_SOC, VDD_CPU_CV and
  VIN_SYS_5V0 (no VDD_IN: the module total is their sum).
- Raspberry Pi 5: ``vcgencmd pmic_read_adc`` prints every PMIC rail's current, then every rail's
  voltage, as the firmware does (five-space indent, ADC channel in parentheses, 8 decimals and the
  unit), ending with EXT5V_V (5 V input) and BATT_V (RTC battery).

``follow_cpu_load`` makes a fake rail's current follow this process's CPU use, so a bench run on a
fake board sees idle and loaded power differ the way a real sensor would.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from tests.kit.fake_boards import FakeBoard

# rail -> (mV, mA) at idle. Orin Nano 8 GB dev kit, 15 W mode, idle desktop: ~6 W in.
ORIN_NANO_RAILS: dict[str, tuple[int, int]] = {"VDD_IN": (5080, 1200), "VDD_CPU_GPU_CV": (5072, 320),
                                               "VDD_SOC": (5064, 456)}
ORIN_AGX_RAILS: dict[str, tuple[int, int]] = {"VDD_GPU_SOC": (4984, 1184), "VDD_CPU_CV": (4984, 392),
                                              "VIN_SYS_5V0": (4976, 664)}

# (rail, current ADC channel, voltage ADC channel, amps, volts) in the firmware's listing order,
# values from an idle Pi 5 8 GB.
PI5_PMIC_RAILS: tuple[tuple[str, int, int, float, float], ...] = (
    ("3V7_WL_SW", 0, 8, 0.09174524, 3.71654700),
    ("3V3_SYS", 1, 9, 0.06489900, 3.31196900),
    ("1V8_SYS", 2, 10, 0.17810360, 1.80087000),
    ("DDR_VDD2", 3, 11, 0.02537400, 1.11102000),
    ("DDR_VDDQ", 4, 12, 0.00000000, 0.60578200),
    ("1V1_SYS", 5, 13, 0.17956800, 1.10589300),
    ("0V8_SW", 6, 14, 0.30451200, 0.80212000),
    ("VDD_CORE", 7, 15, 2.34567800, 0.87654300),
    ("3V3_DAC", 17, 20, 0.00012210, 3.30213600),
    ("3V3_ADC", 18, 21, 0.00012210, 3.30213600),
    ("0V8_AON", 16, 19, 0.00500000, 0.80120700),
    ("HDMI", 22, 23, 0.02320200, 5.13810000),
)
PI5_EXT5V_V = 5.12345600
PI5_BATT_V = 0.0


def _replace(path: Path, text: str) -> None:
    """Write-then-rename: a reader sees the old value or the new one, never a half-written file
    (sysfs reads are atomic; a plain rewrite would make the fake flakier than the hardware)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def ina3221_files(rails: dict[str, tuple[int, int]]) -> dict[str, str]:
    """The hwmon files of one INA3221 carrying ``rails`` on channels 1, 2, 3."""
    files: dict[str, str] = {}
    for channel, (label, (millivolts, milliamps)) in enumerate(rails.items(), start=1):
        files.update({f"in{channel}_label": f"{label}\n", f"in{channel}_input": f"{millivolts}\n",
                      f"curr{channel}_input": f"{milliamps}\n", f"curr{channel}_crit": "15200\n",
                      f"curr{channel}_max": "12000\n", f"shunt{channel}_resistor": "5000\n"})
    return files


def rail_channel(board: "FakeBoard", rail: str) -> int:
    hwmon = board.hwmon_file("ina3221", "name").parent
    for label in hwmon.glob("in*_label"):
        if label.read_text().strip() == rail:
            return int(label.name[2:-len("_label")])
    raise KeyError(rail)


def set_rail(board: "FakeBoard", rail: str, millivolts: int | None = None, milliamps: int | None = None) -> None:
    channel = rail_channel(board, rail)
    if millivolts is not None:
        _replace(board.hwmon_file("ina3221", f"in{channel}_input"), f"{millivolts}\n")
    if milliamps is not None:
        _replace(board.hwmon_file("ina3221", f"curr{channel}_input"), f"{milliamps}\n")


def rail_file(board: "FakeBoard", rail: str, kind: str = "curr") -> Path:
    """The ``curr``/``in`` input file of ``rail``, to break with ``board.break_file``."""
    return board.hwmon_file("ina3221", f"{kind}{rail_channel(board, rail)}_input")


def pmic_listing(rails: tuple[tuple[str, int, int, float, float], ...] = PI5_PMIC_RAILS,
                 ext5v_v: float = PI5_EXT5V_V, batt_v: float = PI5_BATT_V) -> str:
    lines = [f"     {name}_A current({adc_a})={amps:.8f}A" for name, adc_a, _, amps, _ in rails]
    lines += [f"     {name}_V volt({adc_v})={volts:.8f}V" for name, _, adc_v, _, volts in rails]
    lines += [f"     EXT5V_V volt(24)={ext5v_v:.8f}V", f"     BATT_V volt(25)={batt_v:.8f}V"]
    return "\n".join(lines) + "\n"


def pmic_total_w(rails: tuple[tuple[str, int, int, float, float], ...] = PI5_PMIC_RAILS) -> float:
    return sum(amps * volts for _, _, _, amps, volts in rails)


def set_pmic(board: "FakeBoard", output: str | None = None, exit_code: int = 0) -> None:
    """What the fake ``vcgencmd pmic_read_adc`` prints (default: the idle Pi 5 listing)."""
    state = board.root / ".fake"
    state.mkdir(parents=True, exist_ok=True)
    _replace(state / "vcgencmd.pmic.out", pmic_listing() if output is None else output)
    _replace(state / "vcgencmd.pmic.rc", f"{exit_code}\n")


def with_rail(rail: str, amps: float | None = None, volts: float | None = None
              ) -> tuple[tuple[str, int, int, float, float], ...]:
    """PI5_PMIC_RAILS with one rail's current and/or voltage changed."""
    return tuple((n, a, v, amps if n == rail and amps is not None else i, volts if n == rail and volts is not None else u)
                 for n, a, v, i, u in PI5_PMIC_RAILS)


@contextlib.contextmanager
def while_busy(update: Callable[[float], None], reset: Callable[[], None], interval_s: float = 0.05) -> Iterator[None]:
    """While inside, call ``update(busy_cores)`` every ``interval_s`` with this process's busy cores
    (CPU-seconds per wall second); ``reset()`` on the way out. What a real rail does under load."""
    stop = threading.Event()

    def run() -> None:
        last_cpu, last_wall = time.process_time(), time.perf_counter()
        while not stop.wait(interval_s):
            cpu, wall = time.process_time(), time.perf_counter()
            busy = max(0.0, (cpu - last_cpu) / max(wall - last_wall, 1e-6))
            last_cpu, last_wall = cpu, wall
            update(busy)

    thread = threading.Thread(target=run, name="fake-power-load", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5.0)
        reset()


@contextlib.contextmanager
def follow_cpu_load(board: "FakeBoard", rail: str = "VDD_IN", watts_per_busy_core: float = 1.25,
                    interval_s: float = 0.05) -> Iterator[None]:
    """While inside, ``rail`` draws its idle current plus ``watts_per_busy_core`` × this process's
    busy cores, as a real input rail does under load."""
    millivolts = int(rail_file(board, rail, "in").read_text())
    idle_ma = int(rail_file(board, rail).read_text())
    with while_busy(lambda busy: set_rail(board, rail, milliamps=idle_ma + round(busy * watts_per_busy_core * 1e6 / millivolts)),
                    lambda: set_rail(board, rail, milliamps=idle_ma), interval_s):
        yield


@contextlib.contextmanager
def pmic_follows_cpu_load(board: "FakeBoard", watts_per_busy_core: float, interval_s: float = 0.05) -> Iterator[None]:
    """The Pi 5 fake: VDD_CORE's current follows this process's busy cores."""
    volts = dict((r[0], r[4]) for r in PI5_PMIC_RAILS)["VDD_CORE"]
    idle_a = dict((r[0], r[3]) for r in PI5_PMIC_RAILS)["VDD_CORE"]
    with while_busy(lambda busy: set_pmic(board, pmic_listing(with_rail("VDD_CORE", amps=idle_a + busy * watts_per_busy_core / volts))),
                    lambda: set_pmic(board), interval_s):
        yield
