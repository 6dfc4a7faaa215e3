"""Memory monitor: system memory, process RSS, cgroup v2 accounting and pressure stall info.

Sources (under a configurable root, default "/"):
- system available/total: psutil on the real root; <root>/proc/meminfo under a fake root
- process RSS: psutil (always the real process)
- cgroup v2: the process's own cgroup from <root>/proc/self/cgroup ("0::/path"), then
  <root>/sys/fs/cgroup/<path>/{memory.current,memory.max,memory.high,memory.events}
- PSI: <root>/proc/pressure/{memory,cpu} ("some"/"full" avg10/avg60)

Boards often run without the protections this relies on (Raspberry Pi OS long booted with
``cgroup_disable=memory``; some kernels are built without PSI or boot with ``psi=0``). Those are
reported as warnings, not errors: the service still runs, but ``edge-triage check`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from edge.board.sysfs import GARBAGE, MISSING, read_int, read_text, under

MB = 1024 * 1024
PSI_RESOURCES = ("memory", "cpu")
EVENT_KEYS = ("low", "high", "max", "oom", "oom_kill")

# Warning codes (stable: the status page and `edge-triage check` key on them).
CGROUP_V2_UNAVAILABLE = "cgroup_v2_unavailable"
MEMORY_CONTROLLER_MISSING = "memory_controller_missing"
MEMORY_LIMIT_UNSET = "memory_limit_unset"
PSI_UNAVAILABLE = "psi_unavailable"

WARNING_TEXT = {
    CGROUP_V2_UNAVAILABLE: "board does not enforce memory limits we can read: the memory controller is not "
                           "on cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1)",
    MEMORY_CONTROLLER_MISSING: "board does not enforce memory limits: the cgroup v2 memory controller is "
                               "off (on Raspberry Pi add `cgroup_enable=memory` to /boot/firmware/cmdline.txt)",
    MEMORY_LIMIT_UNSET: "board does not enforce memory limits: no memory.max for this service "
                        "(set MemoryMax= in the systemd unit)",
    PSI_UNAVAILABLE: "PSI is off: /proc/pressure is missing or disabled, memory pressure is judged from "
                     "free memory only (boot with psi=1 / CONFIG_PSI=y)",
}


@dataclass
class MemoryReading:
    mem_available_mb: float | None = None
    mem_total_mb: float | None = None
    rss_mb: float | None = None
    cgroup_path: str | None = None
    cgroup_current_mb: float | None = None
    cgroup_max_mb: float | None = None  # None: unlimited or unknown
    cgroup_high_mb: float | None = None
    cgroup_events: dict[str, int] = field(default_factory=dict)
    psi: dict[str, float] = field(default_factory=dict)  # "memory.some.avg10" -> percent
    sensor_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _read_meminfo(root: str | os.PathLike[str], reading: MemoryReading) -> None:
    if os.path.abspath(root) == "/":
        vm = psutil.virtual_memory()
        reading.mem_available_mb = vm.available / MB
        reading.mem_total_mb = vm.total / MB
        return
    text, err = read_text(under(root, "/proc/meminfo"))
    if err is not None:
        reading.sensor_errors.append(f"meminfo_{err}:meminfo")
        return
    values: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])  # kB
    if "MemTotal" not in values or "MemAvailable" not in values or values["MemTotal"] <= 0:
        reading.sensor_errors.append("meminfo_garbage:meminfo")
        return
    reading.mem_total_mb = values["MemTotal"] / 1024
    reading.mem_available_mb = min(values["MemAvailable"], values["MemTotal"]) / 1024


def _own_cgroup(root: str | os.PathLike[str], reading: MemoryReading) -> str | None:
    text, err = read_text(under(root, "/proc/self/cgroup"))
    if err is not None:
        reading.warnings.append(CGROUP_V2_UNAVAILABLE)
        return None
    lines = (text or "").splitlines()
    if any(line.split(":")[1:2] and "memory" in line.split(":")[1].split(",") for line in lines):
        # hybrid hierarchy: the memory controller is bound to cgroup v1, which we do not read
        reading.warnings.append(CGROUP_V2_UNAVAILABLE)
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:] or "/"
    reading.warnings.append(CGROUP_V2_UNAVAILABLE)  # cgroup v1 only
    return None


def _bytes_or_max(value: str | None) -> tuple[float | None, bool]:
    """memory.max/high hold bytes or the word "max" (no limit). Returns (MB or None, ok)."""
    if value is None:
        return None, False
    if value == "max":
        return None, True
    try:
        number = int(value)
    except ValueError:
        return None, False
    return (number / MB, True) if number >= 0 else (None, False)


def _read_cgroup(root: str | os.PathLike[str], reading: MemoryReading) -> None:
    path = _own_cgroup(root, reading)
    if path is None:
        return
    reading.cgroup_path = path
    cgroup_dir = under(root, "/sys/fs/cgroup") / path.lstrip("/")
    current, err = read_int(cgroup_dir / "memory.current")
    if err == MISSING:
        reading.warnings.append(MEMORY_CONTROLLER_MISSING)
        return
    if err is not None or current is None or current < 0:
        reading.sensor_errors.append(f"cgroup_{err or GARBAGE}:memory.current")
    else:
        reading.cgroup_current_mb = current / MB
    max_text, max_err = read_text(cgroup_dir / "memory.max")
    if max_err == MISSING:
        reading.warnings.append(MEMORY_LIMIT_UNSET)  # the root cgroup has no memory.max
    else:
        limit, ok = _bytes_or_max(max_text)
        if not ok:
            reading.sensor_errors.append(f"cgroup_{max_err or GARBAGE}:memory.max")
        elif limit is None:
            reading.warnings.append(MEMORY_LIMIT_UNSET)
        else:
            reading.cgroup_max_mb = limit
    high_text, high_err = read_text(cgroup_dir / "memory.high")
    if high_err != MISSING:
        high, ok = _bytes_or_max(high_text)
        if ok:
            reading.cgroup_high_mb = high
        else:
            reading.sensor_errors.append(f"cgroup_{high_err or GARBAGE}:memory.high")
    events_text, events_err = read_text(cgroup_dir / "memory.events")
    if events_err is not None:
        if events_err != MISSING:
            reading.sensor_errors.append(f"cgroup_{events_err}:memory.events")
        return
    for line in (events_text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            reading.cgroup_events[parts[0]] = int(parts[1])
        else:
            reading.sensor_errors.append("cgroup_garbage:memory.events")
            break


def parse_psi(text: str) -> dict[str, float] | None:
    """{"some.avg10": 1.5, "some.avg60": ..., "full.avg10": ...} or None if malformed."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, *fields = line.split()
        if kind not in ("some", "full"):
            return None
        for item in fields:
            key, _, value = item.partition("=")
            if key in ("avg10", "avg60", "avg300"):
                try:
                    number = float(value)
                except ValueError:
                    return None
                if not 0.0 <= number <= 100.0:
                    return None
                out[f"{kind}.{key}"] = number
    return out if "some.avg10" in out else None


def _read_psi(root: str | os.PathLike[str], reading: MemoryReading) -> None:
    for resource in PSI_RESOURCES:
        text, err = read_text(under(root, f"/proc/pressure/{resource}"))
        if err in (MISSING, "unreadable"):
            # no CONFIG_PSI (missing) or booted with psi=0 (reads fail with EOPNOTSUPP)
            if resource == "memory":
                reading.warnings.append(PSI_UNAVAILABLE)
            continue
        parsed = parse_psi(text or "") if err is None else None
        if parsed is None:
            reading.sensor_errors.append(f"psi_{err or GARBAGE}:{resource}")
            continue
        for key, value in parsed.items():
            reading.psi[f"{resource}.{key}"] = value


def read(root: str | os.PathLike[str] = "/") -> MemoryReading:
    """One full memory reading. Never raises for sensor faults."""
    reading = MemoryReading()
    _read_meminfo(root, reading)
    try:
        reading.rss_mb = psutil.Process().memory_info().rss / MB
    except psutil.Error:
        reading.sensor_errors.append("rss_unreadable:process")
    _read_cgroup(root, reading)
    _read_psi(root, reading)
    return reading


def describe(root: str | os.PathLike[str] = "/") -> list[tuple[str, str, str]]:
    """Checks for ``edge-triage check``: (check name, "ok"/"warn"/"fail", message)."""
    reading = read(root)
    checks: list[tuple[str, str, str]] = []
    if reading.mem_available_mb is None:
        checks.append(("system memory", "fail", "cannot read available memory (/proc/meminfo)"))
    else:
        checks.append(("system memory", "ok", f"{reading.mem_available_mb:.0f} of {reading.mem_total_mb:.0f} MB "
                       "available"))
    limit_warnings = [w for w in reading.warnings if w != PSI_UNAVAILABLE]
    if limit_warnings:
        checks.append(("memory limits", "warn", "; ".join(WARNING_TEXT[w] for w in limit_warnings)))
    elif reading.cgroup_max_mb is not None:
        current = f"{reading.cgroup_current_mb:.0f}" if reading.cgroup_current_mb is not None else "?"
        checks.append(("memory limits", "ok", f"cgroup {reading.cgroup_path}: {current} of "
                       f"{reading.cgroup_max_mb:.0f} MB; events {reading.cgroup_events}"))
    if PSI_UNAVAILABLE in reading.warnings:
        checks.append(("pressure stall info", "warn", WARNING_TEXT[PSI_UNAVAILABLE]))
    elif reading.psi:
        checks.append(("pressure stall info", "ok", f"memory some avg10 {reading.psi.get('memory.some.avg10', 0):.2f}%"))
    if reading.sensor_errors:
        checks.append(("memory sensor errors", "warn", "ignored: " + ", ".join(reading.sensor_errors)))
    return checks
