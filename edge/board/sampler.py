"""One sampling thread that reads the thermal, memory and power monitors into an immutable snapshot.

``Monitor.snapshot()`` is what the service, the status page and /metrics read; it never blocks on
a sensor. When given a ``Policy`` the monitor also updates it after every sample, so the policy
decision is always based on the latest snapshot (``Monitor.decision()``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from edge.board import memory, power, thermal
from edge.board.thermal import ZoneLimits

if TYPE_CHECKING:  # the policy module reads HealthSnapshot from here
    from edge.board.policy import Policy, PolicyDecision

log = logging.getLogger("edge.board")


@dataclass(frozen=True)
class MonitorConfig:
    root: str = "/"
    interval_s: float = 2.0
    # argv of the Pi throttle query; None or () disables it (bits unknown).
    throttle_command: tuple[str, ...] | None = thermal.DEFAULT_THROTTLE_COMMAND
    command_timeout_s: float = 2.0
    # argv of the Pi 5 PMIC listing; None or () disables it (no power reading on a Pi 5).
    pmic_command: tuple[str, ...] | None = power.DEFAULT_PMIC_COMMAND


@dataclass(frozen=True)
class HealthSnapshot:
    """Everything the policy and the status page need, read at ``time`` (wall clock, seconds).

    Treat the dicts as read-only. Temperatures hold only valid readings; broken sensors appear
    in ``sensor_errors`` as "code:where" (e.g. "zone_garbage:GPU-therm").
    """

    time: float
    temperatures_c: dict[str, float] = field(default_factory=dict)
    max_temp_c: float | None = None
    zone_limits: dict[str, ZoneLimits] = field(default_factory=dict)
    zone_kinds: dict[str, str] = field(default_factory=dict)  # "cpu", "gpu", "soc", "junction"…
    temp_sensors_found: int = 0
    board_model: str | None = None
    throttle: dict[str, bool] = field(default_factory=dict)  # empty: unknown
    cpu_freq_ratio: float | None = None
    cpu_freq_cap_ratio: float | None = None
    mem_available_mb: float | None = None
    mem_total_mb: float | None = None
    rss_mb: float | None = None
    cgroup_current_mb: float | None = None
    cgroup_max_mb: float | None = None
    cgroup_high_mb: float | None = None
    cgroup_events: dict[str, int] = field(default_factory=dict)
    psi: dict[str, float] = field(default_factory=dict)
    power_source: str = "none"  # "ina3221" | "pmic" | "none": where power_w came from
    power_w: float | None = None  # board power; None without a sensor or with a broken one
    power_rails_w: dict[str, float] = field(default_factory=dict)
    power_input_v: float | None = None
    sensor_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def all_temperature_sensors_broken(self) -> bool:
        return self.temp_sensors_found > 0 and not self.temperatures_c

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sensor_errors"] = list(self.sensor_errors)
        out["warnings"] = list(self.warnings)
        return out


def read_snapshot(config: MonitorConfig, now: float | None = None) -> HealthSnapshot:
    heat = thermal.read(config.root, config.throttle_command, config.command_timeout_s)
    mem = memory.read(config.root)
    watts = power.read(config.root, config.pmic_command, config.command_timeout_s, board_model=heat.board_model or "")
    temps = dict(heat.temperatures_c)
    return HealthSnapshot(
        time=time.time() if now is None else now,
        temperatures_c=temps,
        max_temp_c=max(temps.values()) if temps else None,
        zone_limits=dict(heat.zone_limits),
        zone_kinds=dict(heat.zone_kinds),
        temp_sensors_found=heat.temp_sensors_found,
        board_model=heat.board_model,
        throttle=dict(heat.throttle),
        cpu_freq_ratio=heat.cpu_freq_ratio,
        cpu_freq_cap_ratio=heat.cpu_freq_cap_ratio,
        mem_available_mb=mem.mem_available_mb,
        mem_total_mb=mem.mem_total_mb,
        rss_mb=mem.rss_mb,
        cgroup_current_mb=mem.cgroup_current_mb,
        cgroup_max_mb=mem.cgroup_max_mb,
        cgroup_high_mb=mem.cgroup_high_mb,
        cgroup_events=dict(mem.cgroup_events),
        psi=dict(mem.psi),
        power_source=watts.source,
        power_w=watts.total_w,
        power_rails_w=dict(watts.rails_w),
        power_input_v=watts.input_v,
        # "no power sensor" is a fact about the board, not a fault: it is in power_source, not warnings.
        sensor_errors=tuple(heat.sensor_errors + mem.sensor_errors + watts.sensor_errors),
        warnings=tuple(heat.warnings + mem.warnings),
    )


class Monitor:
    """Samples every ``config.interval_s`` on one daemon thread.

    ``policy`` (optional) is an ``edge.board.policy.Policy``; ``clock`` is the monotonic clock handed
    to ``policy.update`` (tests inject a fake one). ``on_sample`` callbacks get each snapshot.
    """

    def __init__(self, config: MonitorConfig | None = None, policy: Policy | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_sample: Sequence[Callable[[HealthSnapshot], None]] = ()) -> None:
        self.config = config or MonitorConfig()
        self.policy = policy
        self._clock = clock
        self._on_sample = list(on_sample)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot: HealthSnapshot | None = None
        self._decision: PolicyDecision | None = None
        self._warned: set[str] = set()
        self.samples_taken = 0
        self.sample_failures = 0

    def sample_once(self) -> HealthSnapshot:
        """Read all sensors now, publish the snapshot and update the policy. Never raises."""
        try:
            snap = read_snapshot(self.config)
        except Exception:  # a bug in a reader must not kill the thread; keep the last snapshot
            log.exception("monitor sample failed")
            self.sample_failures += 1
            snap = self._snapshot or HealthSnapshot(time=time.time(), sensor_errors=("sampler_failed:monitor",))
        for code in snap.warnings:
            if code not in self._warned:  # once per process, not every sample
                self._warned.add(code)
                log.warning("monitor warning: %s — %s", code, {**thermal.WARNING_TEXT, **memory.WARNING_TEXT}.get(code, code))
        decision = self.policy.update(snap, self._clock()) if self.policy is not None else None
        with self._lock:
            self._snapshot = snap
            if decision is not None:
                self._decision = decision
            self.samples_taken += 1
        for callback in self._on_sample:
            try:
                callback(snap)
            except Exception:
                log.exception("monitor callback failed")
        return snap

    def add_listener(self, callback: Callable[[HealthSnapshot], None]) -> None:
        """Called with every snapshot from the sampling thread, after the policy has seen it."""
        if callback not in self._on_sample:
            self._on_sample.append(callback)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> HealthSnapshot:
        """Latest snapshot; samples synchronously if none has been taken yet."""
        with self._lock:
            snap = self._snapshot
        return snap if snap is not None else self.sample_once()

    def decision(self) -> PolicyDecision | None:
        """Latest ``PolicyDecision`` (None without a policy)."""
        if self.policy is None:
            return None
        with self._lock:
            decision = self._decision
        if decision is None:
            self.sample_once()
            with self._lock:
                decision = self._decision
        return decision

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.snapshot().warnings

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.sample_once()  # a snapshot exists before start() returns
        self._thread = threading.Thread(target=self._run, name="edge-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            self.sample_once()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stops and joins the thread. Waits at most one in-flight sample (bounded by the
        throttle command timeout), never a full interval."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s if timeout_s is not None else self.config.command_timeout_s + 5.0)
        self._thread = None

    def __enter__(self) -> "Monitor":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
