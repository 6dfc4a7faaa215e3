"""Fake sysfs/procfs trees of real boards, laid out under a temporary root, for monitor and policy
tests (hardware we lack). Layouts follow the real boards:

- Raspberry Pi 4 (Raspberry Pi OS, kernel 6.x): thermal_zone0 "cpu-thermal" with one critical
  trip (110 °C); hwmon "cpu_thermal" (mirror of the zone) and "rpi_volt" (in0_lcrit_alarm);
  4 CPUs at up to 1.8 GHz; ``vcgencmd get_throttled`` answering "throttled=0x…".
- Raspberry Pi 5: "cpu-thermal" with a critical trip (110 °C) and four active (fan) trips
  50/60/67.5/75 °C; hwmon "cpu_thermal", "rp1_adc" (RP1 I/O chip temperature), "rpi_volt",
  "pwmfan"; 4 CPUs at up to 2.4 GHz; ``vcgencmd pmic_read_adc`` listing the PMIC rails.
- Jetson Orin (L4T r35/r36, tegra234): zones CPU-therm, GPU-therm, CV0..2-therm, SOC0..2-therm,
  tj-therm, each with a passive "sw-throttle" trip (99 °C) and a critical "sw-shutdown" trip
  (104.5 °C); hwmon "ina3221" power monitor, three rails (fake_power.py); no vcgencmd. On an
  Orin Nano the CV (DLA) zones read -256 °C because the clusters are absent (``nano=True``).
Every board has /proc/meminfo, /proc/self/cgroup ("0::/system.slice/edge-triage.service"),
the cgroup v2 memory files and /proc/pressure/{memory,cpu}, each with knobs to change or break.

Breaking a sensor: "missing" (deleted), "garbage" (non-numeric text), "unreadable" (chmod 000 —
useless when tests run as root, so also) "directory" (a directory where the file should be:
EISDIR) and "loop" (a symlink to itself: ELOOP, an OSError like a sensor's EIO).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Iterable

from edge.board.sampler import MonitorConfig
from tests.kit.fake_power import ORIN_AGX_RAILS, ORIN_NANO_RAILS, ina3221_files, set_pmic

CGROUP_PATH = "/system.slice/edge-triage.service"
BREAK_MODES = ("missing", "garbage", "unreadable", "directory", "loop")
MB = 1024 * 1024

_VCGENCMD = """#!/bin/sh
# Fake Raspberry Pi firmware tool: `vcgencmd get_throttled` and `pmic_read_adc` answer from state
# files; a command without one is "not registered", as older firmware (Pi 4) answers pmic_read_adc.
state="$(dirname "$0")/../../.fake/vcgencmd"
case "$1" in get_throttled) ;; pmic_read_adc) state="$state.pmic" ;; *) state=/nonexistent ;; esac
if [ ! -f "$state.out" ]; then echo "error=1 error_msg=\\"Command not registered\\""; exit 255; fi
cat "$state.out"
exit "$(cat "$state.rc")"
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.write_text(text)


def _milli(celsius: float) -> str:
    return f"{round(celsius * 1000)}\n"


class FakeBoard:
    """A fake board under ``root``. Use the builders (``raspberry_pi_4`` …) or compose one."""

    def __init__(self, root: str | os.PathLike[str], name: str = "generic") -> None:
        self.root = Path(root)
        self.name = name
        self.root.mkdir(parents=True, exist_ok=True)
        self._zones: dict[str, Path] = {}
        self._hwmon: dict[str, Path] = {}
        self._cpus: list[Path] = []
        self.throttle_command: tuple[str, ...] | None = None
        self.cgroup_dir = self.root / "sys/fs/cgroup" / CGROUP_PATH.lstrip("/")
        self.set_meminfo(total_mb=4096, available_mb=3000)
        _write(self.root / "proc/self/cgroup", f"0::{CGROUP_PATH}\n")
        self.set_cgroup(current_mb=100, max_mb=1024, high_mb=None, events={})
        self.set_psi("memory", some_avg10=0.0, full_avg10=0.0)
        self.set_psi("cpu", some_avg10=0.0, full_avg10=0.0)

    # -- monitor wiring -------------------------------------------------------------------
    def monitor_config(self, interval_s: float = 0.05) -> MonitorConfig:
        return MonitorConfig(root=str(self.root), interval_s=interval_s, throttle_command=self.throttle_command)

    # -- thermal --------------------------------------------------------------------------
    def add_zone(self, zone_type: str, temp_c: float, trips: Iterable[tuple[float, str]] = ()) -> Path:
        zone = self.root / f"sys/class/thermal/thermal_zone{len(self._zones)}"
        _write(zone / "type", zone_type + "\n")
        _write(zone / "temp", _milli(temp_c))
        _write(zone / "mode", "enabled\n")
        _write(zone / "policy", "step_wise\n")
        for index, (trip_c, trip_type) in enumerate(trips):
            _write(zone / f"trip_point_{index}_temp", _milli(trip_c))
            _write(zone / f"trip_point_{index}_type", trip_type + "\n")
            _write(zone / f"trip_point_{index}_hyst", "0\n")
        self._zones[zone_type] = zone
        return zone

    def set_temp(self, zone_type: str, celsius: float) -> None:
        _write(self._zones[zone_type] / "temp", _milli(celsius))

    def set_all_temps(self, celsius: float) -> None:
        for zone_type in self._zones:
            self.set_temp(zone_type, celsius)
        for name, hwmon in self._hwmon.items():
            for path in hwmon.glob("temp*_input"):
                if path.is_file():
                    _write(path, _milli(celsius))

    def add_hwmon(self, name: str, temps_c: dict[str, float] | None = None, files: dict[str, str] | None = None) -> Path:
        hwmon = self.root / f"sys/class/hwmon/hwmon{len(self._hwmon)}"
        _write(hwmon / "name", name + "\n")
        for channel, celsius in (temps_c or {}).items():
            _write(hwmon / f"{channel}_input", _milli(celsius))
        for file_name, text in (files or {}).items():
            _write(hwmon / file_name, text)
        self._hwmon[name] = hwmon
        return hwmon

    def set_hwmon_temp(self, name: str, channel: str, celsius: float) -> None:
        _write(self._hwmon[name] / f"{channel}_input", _milli(celsius))

    def set_under_voltage_alarm(self, on: bool) -> None:
        _write(self._hwmon["rpi_volt"] / "in0_lcrit_alarm", "1\n" if on else "0\n")

    def zone_file(self, zone_type: str, file_name: str = "temp") -> Path:
        return self._zones[zone_type] / file_name

    def hwmon_file(self, name: str, file_name: str) -> Path:
        return self._hwmon[name] / file_name

    def set_model(self, model: str) -> None:
        """/proc/device-tree/model: NUL-terminated, as the kernel exposes it."""
        path = self.root / "proc/device-tree/model"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model.encode("ascii") + b"\0")

    # -- Pi firmware ---------------------------------------------------------------------
    def install_vcgencmd(self) -> None:
        script = self.root / "usr/bin/vcgencmd"
        _write(script, _VCGENCMD)
        script.chmod(0o755)
        self.throttle_command = (str(script), "get_throttled")
        self.set_throttled(0)

    def set_throttled(self, bits: int, output: str | None = None, exit_code: int = 0) -> None:
        """Bits as the firmware reports them; ``output`` overrides the text (garbage tests)."""
        _write(self.root / ".fake/vcgencmd.out", output if output is not None else f"throttled={bits:#x}\n")
        _write(self.root / ".fake/vcgencmd.rc", f"{exit_code}\n")

    # -- CPU frequency -------------------------------------------------------------------
    def add_cpus(self, count: int, max_khz: int, cur_khz: int | None = None, min_khz: int = 600000) -> None:
        # Real boards share one policy per cluster and link cpuN/cpufreq to it; modelled as such.
        policy = self.root / "sys/devices/system/cpu/cpufreq/policy0"
        for name, value in (("cpuinfo_max_freq", max_khz), ("cpuinfo_min_freq", min_khz),
                            ("scaling_max_freq", max_khz), ("scaling_cur_freq", cur_khz or max_khz)):
            _write(policy / name, f"{value}\n")
        _write(policy / "scaling_governor", "ondemand\n")
        for index in range(count):
            cpu = self.root / f"sys/devices/system/cpu/cpu{index}"
            cpu.mkdir(parents=True, exist_ok=True)
            link = cpu / "cpufreq"
            if not link.exists():
                link.symlink_to("../cpufreq/policy0")
            self._cpus.append(cpu)

    def set_cpu_freq(self, cur_khz: int, scaling_max_khz: int | None = None) -> None:
        policy = self.root / "sys/devices/system/cpu/cpufreq/policy0"
        _write(policy / "scaling_cur_freq", f"{cur_khz}\n")
        if scaling_max_khz is not None:
            _write(policy / "scaling_max_freq", f"{scaling_max_khz}\n")

    # -- memory --------------------------------------------------------------------------
    def set_meminfo(self, total_mb: float, available_mb: float) -> None:
        total_kb, avail_kb = int(total_mb * 1024), int(available_mb * 1024)
        _write(self.root / "proc/meminfo",
               f"MemTotal:       {total_kb:>8} kB\nMemFree:        {avail_kb // 2:>8} kB\n"
               f"MemAvailable:   {avail_kb:>8} kB\nBuffers:           12345 kB\nCached:         "
               f"{avail_kb // 2:>8} kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n")

    def set_cgroup(self, current_mb: float | None = None, max_mb: float | None | str = "keep",
                   high_mb: float | None | str = "keep", events: dict[str, int] | None = None) -> None:
        """``max_mb``/``high_mb`` None writes "max" (no limit); "keep" leaves the file alone."""
        root_cgroup = self.root / "sys/fs/cgroup"
        _write(root_cgroup / "cgroup.controllers", "cpuset cpu io memory pids\n")
        _write(root_cgroup / "cgroup.subtree_control", "cpu io memory pids\n")
        if current_mb is not None:
            _write(self.cgroup_dir / "memory.current", f"{int(current_mb * MB)}\n")
        for file_name, value in (("memory.max", max_mb), ("memory.high", high_mb)):
            if value != "keep":
                _write(self.cgroup_dir / file_name, "max\n" if value is None else f"{int(float(value) * MB)}\n")
        if events is not None or not (self.cgroup_dir / "memory.events").exists():
            counts = {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0}
            counts.update(events or {})
            _write(self.cgroup_dir / "memory.events", "".join(f"{k} {v}\n" for k, v in counts.items()))

    def remove_memory_controller(self) -> None:
        """As on a Pi booted with cgroup_disable=memory: no memory.* files at all."""
        _write(self.root / "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n")
        for path in self.cgroup_dir.glob("memory.*"):
            path.unlink()

    def set_psi(self, resource: str, some_avg10: float, full_avg10: float = 0.0,
                some_avg60: float | None = None, full_avg60: float | None = None) -> None:
        some60 = some_avg10 if some_avg60 is None else some_avg60
        full60 = full_avg10 if full_avg60 is None else full_avg60
        _write(self.root / f"proc/pressure/{resource}",
               f"some avg10={some_avg10:.2f} avg60={some60:.2f} avg300=0.00 total=123456\n"
               f"full avg10={full_avg10:.2f} avg60={full60:.2f} avg300=0.00 total=23456\n")

    def psi_off(self, mode: str = "missing") -> None:
        """"missing": kernel without CONFIG_PSI; "disabled": psi=0 (files exist, reads fail)."""
        for resource in ("memory", "cpu", "io"):
            path = self.root / f"proc/pressure/{resource}"
            if mode == "missing":
                if path.exists() or path.is_symlink():
                    path.unlink()
            else:
                self.break_file(path, "loop")

    # -- breaking things -----------------------------------------------------------------
    def break_file(self, path: Path, how: str) -> None:
        if how not in BREAK_MODES:
            raise ValueError(f"how must be one of {BREAK_MODES}")
        if how == "unreadable":
            path.chmod(0)
            return
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        if how == "garbage":
            path.write_bytes(b"\xff\xfeNaN ohm\n")
        elif how == "directory":
            path.mkdir()
        elif how == "loop":
            path.symlink_to(path.name)

    def break_sensor(self, zone_type: str, how: str, file_name: str = "temp") -> None:
        self.break_file(self.zone_file(zone_type, file_name), how)

    def restore_permissions(self) -> None:
        """chmod 000 files make tmp-dir cleanup noisy for non-root users."""
        for path in self.root.rglob("*"):
            if not path.is_symlink() and path.is_file() and not stat.S_IMODE(path.stat().st_mode):
                path.chmod(0o644)


def raspberry_pi_4(root: str | os.PathLike[str], temp_c: float = 48.0) -> FakeBoard:
    board = FakeBoard(root, "raspberry-pi-4")
    board.set_model("Raspberry Pi 4 Model B Rev 1.4")
    board.add_zone("cpu-thermal", temp_c, trips=[(110.0, "critical")])
    board.add_hwmon("cpu_thermal", {"temp1": temp_c})
    board.add_hwmon("rpi_volt", files={"in0_lcrit_alarm": "0\n"})
    board.add_cpus(4, max_khz=1800000, cur_khz=1500000)
    board.set_meminfo(total_mb=3794, available_mb=3100)
    board.install_vcgencmd()
    return board


def raspberry_pi_5(root: str | os.PathLike[str], temp_c: float = 52.0) -> FakeBoard:
    board = FakeBoard(root, "raspberry-pi-5")
    board.set_model("Raspberry Pi 5 Model B Rev 1.0")
    board.add_zone("cpu-thermal", temp_c, trips=[(110.0, "critical"), (50.0, "active"), (60.0, "active"),
                                                 (67.5, "active"), (75.0, "active")])
    board.add_hwmon("cpu_thermal", {"temp1": temp_c})
    board.add_hwmon("rp1_adc", {"temp1": 45.0}, files={"in1_input": "1480\n", "in2_input": "3300\n"})
    board.add_hwmon("rpi_volt", files={"in0_lcrit_alarm": "0\n"})
    board.add_hwmon("pwmfan", files={"fan1_input": "2900\n", "pwm1": "75\n"})
    board.add_cpus(4, max_khz=2400000, cur_khz=1500000, min_khz=1500000)
    board.set_meminfo(total_mb=8064, available_mb=7200)
    board.install_vcgencmd()
    set_pmic(board)  # the PMIC's rail currents and voltages (fake_power.PI5_PMIC_RAILS)
    return board


JETSON_ORIN_ZONES = ("CPU-therm", "GPU-therm", "CV0-therm", "CV1-therm", "CV2-therm",
                     "SOC0-therm", "SOC1-therm", "SOC2-therm", "tj-therm")
# Mainline kernels (tegra234.dtsi) name the same BPMP zones in lower case with "-thermal"; the
# dev kit's tj-thermal carries only the fan's active trips (85 and 105 °C), no passive one.
JETSON_ORIN_UPSTREAM_ZONES = ("cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal",
                              "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal")
JETSON_SW_THROTTLE_C = 99.0
JETSON_SW_SHUTDOWN_C = 104.5


def jetson_orin(root: str | os.PathLike[str], temp_c: float = 50.0, nano: bool = False,
                upstream_kernel: bool = False) -> FakeBoard:
    board = FakeBoard(root, ("jetson-orin-nano" if nano else "jetson-agx-orin") + ("-mainline" if upstream_kernel else ""))
    board.set_model("NVIDIA Jetson Orin Nano Developer Kit" if nano else "NVIDIA Jetson AGX Orin Developer Kit")
    for zone in (JETSON_ORIN_UPSTREAM_ZONES if upstream_kernel else JETSON_ORIN_ZONES):
        if upstream_kernel:
            trips = [(85.0, "active"), (105.0, "active")] if zone == "tj-thermal" else []
        else:
            trips = [(JETSON_SW_SHUTDOWN_C, "critical"), (JETSON_SW_THROTTLE_C, "passive")]
        absent = nano and zone.lower().startswith("cv")
        board.add_zone(zone, -256.0 if absent else temp_c, trips=trips)
    board.add_hwmon("ina3221", files=ina3221_files(ORIN_NANO_RAILS if nano else ORIN_AGX_RAILS))
    board.add_cpus(6 if nano else 12, max_khz=1510400 if nano else 2201600, cur_khz=1113600)
    board.set_meminfo(total_mb=7620 if nano else 30536, available_mb=5000 if nano else 26000)
    return board


def set_jetson_temps(board: FakeBoard, celsius: float) -> None:
    """All present Jetson zones to one temperature (absent Nano CV zones stay at -256 °C)."""
    for zone in list(board._zones):
        if not ("nano" in board.name and zone.lower().startswith("cv")):
            board.set_temp(zone, celsius)
