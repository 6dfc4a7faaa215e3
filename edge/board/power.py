"""Power monitor: the board's own power sensors, in watts per rail and in total.

Sources (under the same configurable root as the thermal and memory monitors):
- Jetson Orin: the INA3221 hwmon driver. The hwmon dir whose ``name`` is ``ina3221`` (or any with
  ``inN_label`` + ``currN_input`` channels) gives per channel ``inN_label`` (rail name),
  ``inN_input`` (mV) and ``currN_input`` (mA); power = mV × mA / 1e6 W. ``VDD_IN`` is the module's
  input rail and is the total; the others (``VDD_CPU_GPU_CV``, ``VDD_SOC``) are parts of it, so
  they are never added to it. Boards without an input rail (AGX: ``VIN_SYS_5V0`` …) sum their rails.
- Raspberry Pi 5: ``vcgencmd pmic_read_adc`` lists every PMIC rail's current (``NAME_A
  current(n)=…A``) and voltage (``NAME_V volt(n)=…V``); power = current × voltage per rail, summed.
  ``EXT5V_V`` (the 5 V input) has no current, so it is reported as the input voltage only. The PMIC
  sum is the SoC, memory and I/O rails: it leaves out USB/peripheral 5 V loads and conversion loss,
  so it reads below a wall meter.
- Raspberry Pi 4 and most other boards: no power sensor; the reading says so (source "none").

Readings that are missing, unreadable, garbage or physically absurd become machine codes in
``sensor_errors`` and the affected rail (and, if the total depends on it, the total) unavailable;
nothing here raises. Every reading names its source: "ina3221", "pmic" or "none".
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edge.board.sysfs import GARBAGE, read_int, read_text, sorted_numeric, under
from edge.board.thermal import read_board_model, resolve_command

DEFAULT_PMIC_COMMAND: tuple[str, ...] = ("vcgencmd", "pmic_read_adc")
SOURCES = ("ina3221", "pmic", "none")

# Input rails by preference: what the module draws in total (Orin Nano/NX; Nano/TX2/Xavier NX).
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
# Unconnected INA3221 channels are labelled "NC" on some carriers (AGX Orin's second monitor).
_UNCONNECTED = ("NC",)
# Beyond these a reading is a fault, not a measurement: edge boards take ≤ 60 V and ≤ 20 A per rail.
MAX_RAIL_VOLTS = 60.0
MAX_RAIL_AMPS = 20.0
# INA3221 reads a few mA below zero on an idle rail (shunt offset); that is zero, not a fault.
_NEGATIVE_NOISE_MA = 20

_PMIC_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)_([AV])\s+(current|volt)\((\d+)\)=([-+0-9.eE]+)([AV])\s*$")
PMIC_INPUT_VOLTAGE = "EXT5V"

NO_SENSOR = "no_power_sensor"
WARNING_TEXT = {
    NO_SENSOR: "no power sensor on this board: energy per inference is an estimate (CPU time × rated watts)",
}


@dataclass
class PowerReading:
    source: str = "none"  # "ina3221" | "pmic" | "none"
    rails_w: dict[str, float] = field(default_factory=dict)  # valid rails only
    total_w: float | None = None  # None: no sensor, or the rails it needs are broken
    input_v: float | None = None  # board input voltage where the sensor reports it
    rails_found: int = 0
    sensor_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.total_w is not None


def _watts(value: float) -> float:
    return round(value, 6)  # µW: far below the sensors' resolution, never a rounding artefact


def _ina3221_dirs(root: str | os.PathLike[str]) -> list[Path]:
    base = under(root, "/sys/class/hwmon")
    if not base.is_dir():
        return []
    found = []
    for hwmon_dir in sorted_numeric(list(base.glob("hwmon*"))):
        name, _ = read_text(hwmon_dir / "name")
        has_rails = any((hwmon_dir / f"curr{p.name[2:-len('_label')]}_input").exists()
                        for p in hwmon_dir.glob("in*_label"))
        if name == "ina3221" or has_rails:
            found.append(hwmon_dir)
    return found


def _read_channel(hwmon_dir: Path, channel: str, rail: str, reading: PowerReading) -> None:
    millivolts, v_err = read_int(hwmon_dir / f"in{channel}_input")
    milliamps, a_err = read_int(hwmon_dir / f"curr{channel}_input")
    err = v_err or a_err
    if err is not None:
        reading.sensor_errors.append(f"ina3221_{err}:{rail}")
        return
    assert millivolts is not None and milliamps is not None
    if -_NEGATIVE_NOISE_MA <= milliamps < 0:
        milliamps = 0
    if not (0 <= millivolts <= MAX_RAIL_VOLTS * 1000 and 0 <= milliamps <= MAX_RAIL_AMPS * 1000):
        reading.sensor_errors.append(f"ina3221_out_of_range:{rail}")
        return
    reading.rails_w[rail] = _watts(millivolts * milliamps / 1e6)
    if rail in INPUT_RAILS and reading.input_v is None:
        reading.input_v = millivolts / 1000.0


def read_ina3221(root: str | os.PathLike[str], reading: PowerReading) -> bool:
    """Fills ``reading`` from INA3221 channels; False if the board has none."""
    dirs = _ina3221_dirs(root)
    if not dirs:
        return False
    reading.source = "ina3221"
    for hwmon_dir in dirs:
        for label_path in sorted_numeric(list(hwmon_dir.glob("in*_label"))):
            channel = label_path.name[2:-len("_label")]
            label, err = read_text(label_path)
            if err is not None or not label or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", label):
                reading.sensor_errors.append(f"ina3221_label_{err or GARBAGE}:{hwmon_dir.name}/in{channel}")
                continue
            if label in _UNCONNECTED:
                continue
            reading.rails_found += 1
            _read_channel(hwmon_dir, channel, label, reading)
    if reading.rails_found == 0:
        reading.sensor_errors.append("ina3221_no_rails:hwmon")
    labels_seen = set(reading.rails_w) | {e.rpartition(":")[2] for e in reading.sensor_errors}
    input_rail = next((r for r in INPUT_RAILS if r in labels_seen), None)
    if input_rail is not None:
        reading.total_w = reading.rails_w.get(input_rail)  # None if the input rail itself is broken
    elif reading.rails_w and not reading.sensor_errors:
        reading.total_w = _watts(sum(reading.rails_w.values()))
    return True


@dataclass
class PmicListing:
    amps: dict[str, float] = field(default_factory=dict)  # rail -> A (the "NAME_A current(n)" lines)
    volts: dict[str, float] = field(default_factory=dict)  # rail -> V (the "NAME_V volt(n)" lines)
    broken_amps: set[str] = field(default_factory=set)
    broken_volts: set[str] = field(default_factory=set)
    garbage_lines: int = 0
    errors: list[str] = field(default_factory=list)


def parse_pmic(text: str) -> PmicListing:
    """Currents and voltages by rail name from a ``pmic_read_adc`` listing, with what was broken."""
    out = PmicListing()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _PMIC_LINE.match(line)
        if not match:
            out.garbage_lines += 1
            out.errors.append(f"pmic_garbage:line{number}")  # never the line itself: it is unvetted text
            continue
        rail, suffix, kind, _, value_text, unit = match.groups()
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        is_current = suffix == "A"
        if (unit, kind) != (("A", "current") if is_current else ("V", "volt")) or not math.isfinite(value):
            code = GARBAGE
        elif not 0.0 <= value <= (MAX_RAIL_AMPS if is_current else MAX_RAIL_VOLTS):
            code = "out_of_range"
        else:
            (out.amps if is_current else out.volts)[rail] = value
            continue
        (out.broken_amps if is_current else out.broken_volts).add(rail)
        out.errors.append(f"pmic_{code}:{rail}_{suffix}")
    return out


def _is_pi5(board_model: str | None) -> bool:
    model = board_model or ""
    return model.startswith(("Raspberry Pi 5", "Raspberry Pi Compute Module 5", "Raspberry Pi 500"))


def read_pmic(root: str | os.PathLike[str], command: Sequence[str], reading: PowerReading,
              board_model: str | None, timeout_s: float = 2.0) -> bool:
    """Fills ``reading`` from the Pi 5 PMIC; False if there is no PMIC to read (Pi 4, not a Pi)."""
    expected = _is_pi5(board_model)
    argv = resolve_command(root, command) if command else None
    if argv is None:
        if expected:
            reading.source = "pmic"
            reading.sensor_errors.append("pmic_command_missing:vcgencmd")
        return expected
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
        failed = done.returncode != 0
    except (OSError, subprocess.SubprocessError):
        failed, done = True, None
    listing = parse_pmic(done.stdout.decode("ascii", "replace")) if done and not failed else PmicListing()
    if not expected and (failed or not listing.amps):
        return False  # older firmware answers "Command not registered": a board without a PMIC ADC
    reading.source = "pmic"
    if failed:
        reading.sensor_errors.append("pmic_command_failed:vcgencmd")
        return True
    reading.sensor_errors.extend(listing.errors)
    reading.input_v = listing.volts.get(PMIC_INPUT_VOLTAGE)
    broken = listing.garbage_lines > 0
    for rail in sorted(set(listing.amps) | listing.broken_amps):
        reading.rails_found += 1
        if rail in listing.amps and rail in listing.volts:
            reading.rails_w[rail] = _watts(listing.amps[rail] * listing.volts[rail])
            continue
        broken = True
        if rail in listing.amps and rail not in listing.broken_volts:
            reading.sensor_errors.append(f"pmic_missing_volt:{rail}")
    if reading.rails_found == 0:
        reading.sensor_errors.append("pmic_garbage:listing")
    elif not broken:
        # A sum missing one rail would read low without saying so; unavailable is the honest answer.
        reading.total_w = _watts(sum(reading.rails_w.values()))
    return True


def read(root: str | os.PathLike[str] = "/", pmic_command: Sequence[str] | None = DEFAULT_PMIC_COMMAND,
         command_timeout_s: float = 2.0, board_model: str | None = None) -> PowerReading:
    """One power reading. Never raises for sensor faults."""
    reading = PowerReading()
    if read_ina3221(root, reading):
        return reading
    model = board_model if board_model is not None else read_board_model(root)
    if read_pmic(root, pmic_command or (), reading, model, command_timeout_s):
        return reading
    reading.warnings.append(NO_SENSOR)
    return reading


def describe(root: str | os.PathLike[str] = "/",
             pmic_command: Sequence[str] | None = DEFAULT_PMIC_COMMAND) -> list[tuple[str, str, str]]:
    """Checks for ``edge-triage check``: (check name, "ok"/"warn"/"fail", message)."""
    reading = read(root, pmic_command)
    if reading.source == "none":
        return [("power sensor", "ok", "no power sensor on this board: energy per inference is reported as an "
                 "estimate (CPU time × rated watts per core)")]
    rails = ", ".join(f"{name} {watts:.3f} W" for name, watts in sorted(reading.rails_w.items()))
    if not reading.available:
        return [("power sensor", "warn", f"{reading.source}: total power unavailable (broken: "
                 f"{', '.join(reading.sensor_errors) or 'no rails'}); energy per inference falls back to the estimate"
                 + (f"; readable: {rails}" if rails else ""))]
    volts = f", input {reading.input_v:.2f} V" if reading.input_v is not None else ""
    checks = [("power sensor", "ok", f"{reading.source}: {reading.total_w:.3f} W{volts} ({rails})")]
    if reading.sensor_errors:
        checks.append(("power sensor errors", "warn", "ignored: " + ", ".join(reading.sensor_errors)))
    return checks


__all__ = ["PowerReading", "read", "describe", "parse_pmic", "DEFAULT_PMIC_COMMAND", "SOURCES", "NO_SENSOR"]
