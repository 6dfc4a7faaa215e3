"""Thermal monitor: thermal zones, hwmon, CPU frequency and Raspberry Pi throttle bits.

Sources (every path under a configurable root, default "/"):
- /sys/class/thermal/thermal_zone*/{type,temp,trip_point_*_temp,trip_point_*_type} (millidegrees)
- /sys/class/hwmon/hwmon*/{name,temp*_input,temp*_crit,in*_lcrit_alarm}; ``rpi_volt`` reports
  under-voltage as in0_lcrit_alarm. hwmon devices that mirror a thermal zone (Pi "cpu_thermal")
  are skipped so the same sensor is not counted twice.
- /sys/devices/system/cpu/cpu*/cpufreq/{scaling_cur_freq,scaling_max_freq,cpuinfo_max_freq}
- ``vcgencmd get_throttled`` (Pi firmware): bits 0 under-voltage, 1 frequency capped,
  2 throttled, 3 soft temperature limit; bits 16-19 "has occurred since boot". If the command is
  absent the bits are unknown (empty dict), which is normal on non-Pi boards.

Jetson zones are recognised by name prefix (CPU-therm, GPU-therm, SOC0-therm, tj-therm, CV0-therm)
and take their limits from their own trip points. Readings that are missing, unreadable, garbage
or physically absurd are reported as machine codes in ``sensor_errors`` and otherwise ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edge.board.sysfs import GARBAGE, MISSING, read_int, read_text, sorted_numeric, under

DEFAULT_THROTTLE_COMMAND: tuple[str, ...] = ("vcgencmd", "get_throttled")

# A temperature outside this range (°C) is a sensor fault, not a reading: disabled Jetson CV
# zones read -256 °C, failed I2C sensors read 0 or 255+. Negative is a fault indoors.
VALID_TEMP_RANGE_C = (0.0, 150.0)

# Zone name prefix (case-insensitive) -> what it measures. Used for the status page and to
# drop zones known to carry no real reading.
ZONE_KINDS: tuple[tuple[str, str], ...] = (
    # L4T kernels name Jetson zones "CPU-therm"…, upstream kernels "cpu-thermal"…; both match.
    ("cpu-therm", "cpu"),      # also the Pi's "cpu-thermal"
    ("gpu-therm", "gpu"),
    ("soc", "soc"),            # Jetson SOC0-therm, SOC1-therm, SOC2-therm
    ("tj-therm", "junction"),  # Jetson tj-therm: hottest point of the die
    ("cv", "accelerator"),     # Jetson CV0-therm… (DLA/PVA)
    ("x86_pkg_temp", "cpu"),
    ("acpitz", "board"),
)
# Zones that report a constant placeholder, not a temperature (Jetson Nano/Xavier PMIC-Die
# reads a fixed 100 °C); counting them would pin the policy at critical.
IGNORED_ZONES: tuple[str, ...] = ("pmic-die",)

THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0, "under_voltage"),
    (1, "freq_capped"),
    (2, "throttled"),
    (3, "soft_temp_limit"),
    (16, "under_voltage_occurred"),
    (17, "freq_capped_occurred"),
    (18, "throttled_occurred"),
    (19, "soft_temp_limit_occurred"),
)
_THROTTLED_RE = re.compile(r"^throttled=(0x[0-9a-fA-F]+|[0-9]+)$")


WARNING_TEXT = {
    "no_temperature_sensors": "no temperature sensors found: the thermal policy cannot protect this board",
    "all_temperature_sensors_broken": "every temperature sensor is broken: the policy assumes 'hot'",
    "throttle_bits_unknown": "Raspberry Pi without `vcgencmd get_throttled`: throttle bits unknown",
}


@dataclass(frozen=True)
class ZoneLimits:
    """Trip points of one zone in °C: the lowest passive/hot trip (where the kernel starts
    throttling) and the lowest critical trip (shutdown). Active trips (fans) are not limits."""

    passive_c: float | None = None
    critical_c: float | None = None


@dataclass
class ThermalReading:
    temperatures_c: dict[str, float] = field(default_factory=dict)
    zone_limits: dict[str, ZoneLimits] = field(default_factory=dict)
    zone_kinds: dict[str, str] = field(default_factory=dict)
    temp_sensors_found: int = 0
    throttle: dict[str, bool] = field(default_factory=dict)
    throttle_raw: int | None = None
    cpu_freq_ratio: float | None = None
    cpu_freq_cap_ratio: float | None = None
    board_model: str | None = None  # /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4"
    sensor_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_board_model(root: str | os.PathLike[str]) -> str | None:
    """The device-tree model string (NUL-terminated on real boards); None on x86/ACPI machines."""
    try:
        raw = under(root, "/proc/device-tree/model").read_bytes()[:256]
    except OSError:
        return None
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return text or None


def zone_kind(name: str) -> str:
    lowered = name.lower()
    for prefix, kind in ZONE_KINDS:
        if lowered.startswith(prefix):
            return kind
    return "other"


def _valid_temp(celsius: float) -> bool:
    low, high = VALID_TEMP_RANGE_C
    return low < celsius <= high


def _read_trips(zone_dir: Path, name: str, errors: list[str]) -> ZoneLimits:
    passive: list[float] = []
    critical: list[float] = []
    for temp_path in sorted(zone_dir.glob("trip_point_*_temp")):
        index = temp_path.name[len("trip_point_"):-len("_temp")]
        millideg, err = read_int(temp_path)
        kind, kind_err = read_text(zone_dir / f"trip_point_{index}_type")
        if err is not None or kind_err is not None:
            errors.append(f"trip_{err or kind_err}:{name}/trip_point_{index}")
            continue
        assert millideg is not None and kind is not None
        celsius = millideg / 1000.0
        if not _valid_temp(celsius):
            continue  # some drivers park unused trips at 0 or -273 °C; not a limit
        if kind in ("passive", "hot"):
            passive.append(celsius)
        elif kind == "critical":
            critical.append(celsius)
    return ZoneLimits(min(passive) if passive else None, min(critical) if critical else None)


def read_zones(root: str | os.PathLike[str], reading: ThermalReading) -> None:
    base = under(root, "/sys/class/thermal")
    if not base.is_dir():
        return
    for zone_dir in sorted_numeric(list(base.glob("thermal_zone*"))):
        zone_type, type_err = read_text(zone_dir / "type")
        name = zone_type if type_err is None and zone_type else zone_dir.name
        if name == zone_dir.name:
            reading.sensor_errors.append(f"zone_type_{type_err or GARBAGE}:{zone_dir.name}")
        if name.lower() in IGNORED_ZONES:
            continue
        if name in reading.zone_kinds:
            name = f"{name}#{zone_dir.name}"  # two zones of one type (x86 acpitz)
        reading.temp_sensors_found += 1
        reading.zone_kinds[name] = zone_kind(name)
        limits = _read_trips(zone_dir, name, reading.sensor_errors)
        if limits.passive_c is not None or limits.critical_c is not None:
            reading.zone_limits[name] = limits
        millideg, err = read_int(zone_dir / "temp")
        if err is not None:
            reading.sensor_errors.append(f"zone_{err}:{name}")
            continue
        assert millideg is not None
        celsius = millideg / 1000.0
        if not _valid_temp(celsius):
            reading.sensor_errors.append(f"zone_out_of_range:{name}")
            continue
        reading.temperatures_c[name] = celsius


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_")


def read_hwmon(root: str | os.PathLike[str], reading: ThermalReading) -> bool | None:
    """Adds hwmon temperatures; returns the rpi_volt under-voltage alarm (None if absent)."""
    base = under(root, "/sys/class/hwmon")
    if not base.is_dir():
        return None
    zone_names = {_normalise(n.split("#")[0]) for n in reading.zone_kinds}
    under_voltage: bool | None = None
    for hwmon_dir in sorted_numeric(list(base.glob("hwmon*"))):
        name, err = read_text(hwmon_dir / "name")
        if err is not None or not name:
            reading.sensor_errors.append(f"hwmon_name_{err or GARBAGE}:{hwmon_dir.name}")
            continue
        if name == "rpi_volt":
            for alarm_path in sorted(hwmon_dir.glob("in*_lcrit_alarm")):
                value, alarm_err = read_int(alarm_path)
                if alarm_err is not None or value not in (0, 1):
                    reading.sensor_errors.append(f"volt_alarm_{alarm_err or GARBAGE}:rpi_volt")
                    continue
                under_voltage = bool(value) or bool(under_voltage)
            continue
        if _normalise(name) in zone_names:
            continue  # the same sensor as a thermal zone already read
        for input_path in sorted(hwmon_dir.glob("temp*_input")):
            channel = input_path.name[: -len("_input")]
            label, label_err = read_text(hwmon_dir / f"{channel}_label")
            key = f"{name}/{label if label_err is None and label else channel}"
            reading.temp_sensors_found += 1
            reading.zone_kinds[key] = zone_kind(name)
            crit, crit_err = read_int(hwmon_dir / f"{channel}_crit")
            if crit_err is None and crit is not None and _valid_temp(crit / 1000.0):
                reading.zone_limits[key] = ZoneLimits(critical_c=crit / 1000.0)
            millideg, err = read_int(input_path)
            if err is not None:
                reading.sensor_errors.append(f"hwmon_{err}:{key}")
                continue
            assert millideg is not None
            if not _valid_temp(millideg / 1000.0):
                reading.sensor_errors.append(f"hwmon_out_of_range:{key}")
                continue
            reading.temperatures_c[key] = millideg / 1000.0
    return under_voltage


def read_cpufreq(root: str | os.PathLike[str], reading: ThermalReading) -> None:
    base = under(root, "/sys/devices/system/cpu")
    currents: list[float] = []
    maxima: list[float] = []
    caps: list[float] = []
    for cpu_dir in sorted_numeric([p for p in base.glob("cpu[0-9]*") if p.is_dir()]):
        freq_dir = cpu_dir / "cpufreq"
        if not freq_dir.exists():
            continue
        cur, cur_err = read_int(freq_dir / "scaling_cur_freq")
        hw_max, max_err = read_int(freq_dir / "cpuinfo_max_freq")
        if cur_err is not None or max_err is not None or not cur or not hw_max or cur < 0 or hw_max < 0:
            reading.sensor_errors.append(f"cpufreq_{cur_err or max_err or GARBAGE}:{cpu_dir.name}")
            continue
        currents.append(cur)
        maxima.append(hw_max)
        soft_max, soft_err = read_int(freq_dir / "scaling_max_freq")
        if soft_err is None and soft_max:
            caps.append(min(1.0, soft_max / hw_max))
    if currents:
        reading.cpu_freq_ratio = round(min(1.0, sum(currents) / sum(maxima)), 4)
    if caps:
        reading.cpu_freq_cap_ratio = round(min(caps), 4)


def parse_throttled(text: str) -> int | None:
    match = _THROTTLED_RE.match(text.strip())
    if not match:
        return None
    return int(match.group(1), 0)


def throttle_flags(raw: int) -> dict[str, bool]:
    return {name: bool(raw >> bit & 1) for bit, name in THROTTLE_BITS}


# Where Raspberry Pi OS installs the firmware tool (libraspberrypi-bin; older images: /opt/vc/bin).
_FIRMWARE_TOOL_DIRS = ("/usr/bin", "/opt/vc/bin")


def resolve_command(root: str | os.PathLike[str], command: Sequence[str]) -> list[str] | None:
    """The argv to run, or None if the tool is absent. Under a non-"/" root a bare command name is
    looked up only inside that root (a fake board's own vcgencmd), never on the host's PATH, so
    a fake tree never mixes in the real board's bits."""
    if not command:
        return None
    program = command[0]
    if os.sep not in program and os.path.abspath(root) != "/":
        for directory in _FIRMWARE_TOOL_DIRS:
            candidate = under(root, directory) / program
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate), *command[1:]]
        return None
    found = shutil.which(program)
    return [found, *command[1:]] if found else None


def read_throttle(command: Sequence[str], reading: ThermalReading, timeout_s: float = 2.0,
                  root: str | os.PathLike[str] = "/") -> None:
    argv = resolve_command(root, command)
    if argv is None:
        return  # not a Pi (or firmware tools not installed): bits unknown
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        reading.sensor_errors.append("throttle_command_failed:vcgencmd")
        return
    if done.returncode != 0:
        reading.sensor_errors.append("throttle_command_failed:vcgencmd")
        return
    raw = parse_throttled(done.stdout.decode("ascii", "replace"))
    if raw is None:
        reading.sensor_errors.append("throttle_garbage:vcgencmd")
        return
    reading.throttle_raw = raw
    reading.throttle = throttle_flags(raw)


def read(root: str | os.PathLike[str] = "/",
         throttle_command: Sequence[str] | None = DEFAULT_THROTTLE_COMMAND,
         command_timeout_s: float = 2.0) -> ThermalReading:
    """One full thermal reading. Never raises for sensor faults."""
    reading = ThermalReading(board_model=read_board_model(root))
    read_zones(root, reading)
    volt_alarm = read_hwmon(root, reading)
    read_cpufreq(root, reading)
    read_throttle(throttle_command or (), reading, command_timeout_s, root)
    if volt_alarm is not None:
        # The hwmon alarm is the kernel's view of the same PMIC signal as bit 0; either suffices.
        reading.throttle["under_voltage"] = volt_alarm or reading.throttle.get("under_voltage", False)
    if reading.temp_sensors_found == 0:
        reading.warnings.append("no_temperature_sensors")
    elif not reading.temperatures_c:
        reading.warnings.append("all_temperature_sensors_broken")
    looks_like_pi = volt_alarm is not None or (reading.board_model or "").startswith("Raspberry Pi")
    if looks_like_pi and reading.throttle_raw is None:
        reading.warnings.append("throttle_bits_unknown")
    return reading


def describe(root: str | os.PathLike[str] = "/",
             throttle_command: Sequence[str] | None = DEFAULT_THROTTLE_COMMAND) -> list[tuple[str, str, str]]:
    """Checks for ``edge-triage check``: (check name, "ok"/"warn"/"fail", message)."""
    reading = read(root, throttle_command)
    checks: list[tuple[str, str, str]] = []
    if reading.board_model:
        checks.append(("board", "ok", reading.board_model))
    if reading.temp_sensors_found == 0:
        checks.append(("thermal sensors", "warn", "no temperature sensors found under "
                       f"{under(root, '/sys/class/thermal')} or hwmon; the thermal policy stays at "
                       "'normal' and cannot protect the board — run on the target board or set monitor root"))
    elif not reading.temperatures_c:
        checks.append(("thermal sensors", "fail", f"all {reading.temp_sensors_found} temperature sensors are "
                       "broken; the policy will assume 'hot' (reduced load) until one reads again — check "
                       "the thermal driver and device tree"))
    else:
        hottest = max(reading.temperatures_c, key=reading.temperatures_c.__getitem__)
        checks.append(("thermal sensors", "ok", f"{len(reading.temperatures_c)} readable; hottest {hottest} "
                       f"{reading.temperatures_c[hottest]:.1f} °C"))
    if reading.sensor_errors:
        checks.append(("sensor errors", "warn", "ignored: " + ", ".join(reading.sensor_errors)))
    if reading.throttle_raw is None and "throttle_bits_unknown" in reading.warnings:
        checks.append(("throttle bits", "warn", "Raspberry Pi detected but `vcgencmd get_throttled` is not "
                       "available; install libraspberrypi-bin or set the throttle command"))
    elif reading.throttle:
        active = [name for name, on in reading.throttle.items() if on and not name.endswith("_occurred")]
        past = [name for name, on in reading.throttle.items() if on and name.endswith("_occurred")]
        if active:
            checks.append(("throttle bits", "warn", "active now: " + ", ".join(active)
                           + " — check the power supply and cooling"))
        else:
            checks.append(("throttle bits", "ok", "none active" + (f" (since boot: {', '.join(past)})" if past else "")))
    if reading.cpu_freq_ratio is not None:
        checks.append(("cpu frequency", "ok", f"running at {reading.cpu_freq_ratio:.0%} of hardware maximum"
                       + (f", capped at {reading.cpu_freq_cap_ratio:.0%}" if reading.cpu_freq_cap_ratio is not None
                          and reading.cpu_freq_cap_ratio < 1 else "")))
    return checks


__all__ = ["ThermalReading", "ZoneLimits", "read", "describe", "parse_throttled", "throttle_flags",
           "zone_kind", "DEFAULT_THROTTLE_COMMAND", "MISSING"]
