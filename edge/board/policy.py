"""Adaptive policy: board health (a ``HealthSnapshot``) → what the service may do right now.

Two independent state machines, thermal (normal / warm / hot / critical) and memory
(ok / pressure / critical). Each state's effect is one row of ``POLICY_TABLE``; the service
applies the most restrictive row of the two. At either critical state the service answers
rules-only (degraded, "clinician review now") and reports not-ready on /readyz.

Thermal thresholds are per zone and relative to the zone's own limit:
    limit = lowest passive/hot trip point          (where the kernel starts throttling)
          else min(critical_c, critical trip − critical_trip_margin_c)
          else critical_c                          (config default, 85 °C)
    warm at limit − (critical_c − warm_c), hot at limit − (critical_c − hot_c), critical at limit
so with defaults and no trip points: warm 70, hot 80, critical 85 °C; on a Jetson Orin
(CPU-therm passive trip 99 °C) warm 84, hot 94, critical 99 °C. Raspberry Pi throttle bits
(currently throttled, frequency capped or soft temperature limit) push to at least hot,
under-voltage to at least warm. If every temperature sensor is broken the board is treated as
``blind_state`` (default hot: less load, still model answers — the firmware/kernel still guard
the silicon, and forcing rules-only answers for a sensor fault would cost clinical accuracy).
A board with no temperature sensors at all (VMs, x86 containers) stays normal; `edge-triage
check` warns about it.

Memory signals (higher is worse): cgroup memory.current / memory.max, memory.current /
memory.high, 1 − available / total, PSI memory "some" and "full" avg10; new ``oom``/``oom_kill``
events jump straight to critical, new ``high``/``max`` events to pressure.

Hysteresis: a state is left only when every signal is below its entry threshold minus a
margin. Sustained duration: a state is entered only after its entry condition held for
``*_enter_after_s`` and left only after the exit condition held for ``*_leave_after_s``.
Time comes from the caller (``update(snapshot, now)``), so tests drive it with a fake clock.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from edge.board.sampler import HealthSnapshot
from edge.board.thermal import ZoneLimits

log = logging.getLogger("edge.board.policy")

THERMAL_STATES = ("normal", "warm", "hot", "critical")
MEMORY_STATES = ("ok", "pressure", "critical")


@dataclass(frozen=True)
class StateEffect:
    threads_share: float      # share of PolicyConfig.max_threads (never below 1 thread)
    max_tokens: int | None    # token cap for the model input; None = the manifest's maximum
    queue_share: float        # share of PolicyConfig.max_queue admitted for inference
    rules_only: bool          # answer rules-only, degraded, "clinician review now"
    ready: bool               # /readyz


# The whole policy in one table. Fewer threads and tokens cut heat and memory per request;
# a shorter queue bounds memory and keeps waits inside the deadline on a slowed-down CPU.
POLICY_TABLE: dict[tuple[str, str], StateEffect] = {
    # (monitor, state):      StateEffect(threads_share, max_tokens, queue_share, rules_only, ready)  # enters when
    ("thermal", "normal"):   StateEffect(1.00, None, 1.00, False, True),   # below warm
    ("thermal", "warm"):     StateEffect(0.75, None, 0.75, False, True),   # ≥ limit−15 °C (70); under-voltage
    ("thermal", "hot"):      StateEffect(0.50, 96,   0.50, False, True),   # ≥ limit−5 °C (80); Pi throttle bits; blind
    ("thermal", "critical"): StateEffect(0.25, 64,   0.00, True,  False),  # ≥ limit (85)
    ("memory",  "ok"):       StateEffect(1.00, None, 1.00, False, True),   # below pressure
    ("memory",  "pressure"): StateEffect(1.00, 96,   0.50, False, True),   # cgroup ≥85% of max or ≥ high; system ≥90% used; PSI some ≥10%; high/max event
    ("memory",  "critical"): StateEffect(0.25, 64,   0.00, True,  False),  # cgroup ≥95%; system ≥97%; PSI full ≥10%; OOM event
}


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class PolicyConfig:
    max_threads: int = field(default_factory=_default_threads)
    max_queue: int = 16
    # Thermal thresholds (°C) used when a zone has no trip points; see the module docstring.
    warm_c: float = 70.0
    hot_c: float = 80.0
    critical_c: float = 85.0
    critical_trip_margin_c: float = 15.0
    thermal_hysteresis_c: float = 3.0
    thermal_enter_after_s: float = 5.0
    thermal_leave_after_s: float = 30.0
    blind_state: str = "hot"
    # Memory thresholds: fractions of the limit / of total, PSI in percent of time stalled.
    cgroup_pressure_fraction: float = 0.85
    cgroup_critical_fraction: float = 0.95
    system_pressure_fraction: float = 0.90
    system_critical_fraction: float = 0.97
    psi_some_pressure_pct: float = 10.0
    psi_full_critical_pct: float = 10.0
    memory_fraction_hysteresis: float = 0.05
    psi_hysteresis_pct: float = 5.0
    memory_enter_after_s: float = 2.0
    memory_leave_after_s: float = 30.0
    recent_transitions: int = 50
    table: dict[tuple[str, str], StateEffect] = field(default_factory=lambda: dict(POLICY_TABLE))


@dataclass(frozen=True)
class PolicyDecision:
    thermal_state: str = "normal"
    memory_state: str = "ok"
    intra_op_threads: int = 1
    max_tokens: int | None = None
    max_queue: int = 16
    rules_only: bool = False
    ready: bool = True
    degraded_reason: str | None = None   # None / "thermal" / "memory"
    thermal_detail: str = ""
    memory_detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Transition:
    at: float          # wall clock (snapshot time)
    monitor: str       # "thermal" / "memory"
    old: str
    new: str
    detail: str

    def __str__(self) -> str:
        return f"{self.monitor} {self.old}→{self.new} ({self.detail})"


class LevelTracker:
    """Hysteresis + sustained-duration state machine over ordered levels 0..n-1.

    ``entry``: highest level whose entry threshold is met now; ``hold``: highest level whose
    exit threshold (entry minus margin) is still met; ``instant``: a level to jump to at once.
    """

    def __init__(self, levels: int, enter_after_s: float, leave_after_s: float) -> None:
        self.level = 0
        self.enter_after_s = enter_after_s
        self.leave_after_s = leave_after_s
        self._above_since: list[float | None] = [None] * levels
        self._below_since: list[float | None] = [None] * levels

    def update(self, now: float, entry: int, hold: int, instant: int = 0) -> int:
        hold = max(hold, entry, instant)
        for level in range(1, len(self._above_since)):
            if entry >= level:
                if self._above_since[level] is None:
                    self._above_since[level] = now
            else:
                self._above_since[level] = None
            if hold < level:
                if self._below_since[level] is None:
                    self._below_since[level] = now
            else:
                self._below_since[level] = None
        target = instant
        for level in range(len(self._above_since) - 1, 0, -1):
            since = self._above_since[level]
            if since is not None and now - since >= self.enter_after_s:
                target = max(target, level)
                break
        if target > self.level:
            self.level = target
            return self.level
        while self.level > 0:
            since = self._below_since[self.level]
            if since is not None and now - since >= self.leave_after_s:
                self.level -= 1
            else:
                break
        return self.level


def zone_limit_c(limits: ZoneLimits | None, config: PolicyConfig) -> float:
    """The temperature at which this zone counts as critical (see module docstring)."""
    if limits is not None and limits.passive_c is not None:
        return limits.passive_c
    if limits is not None and limits.critical_c is not None:
        return min(config.critical_c, limits.critical_c - config.critical_trip_margin_c)
    return config.critical_c


def thermal_thresholds(limit_c: float, config: PolicyConfig) -> tuple[float, float, float]:
    """(warm, hot, critical) entry temperatures for a zone whose limit is ``limit_c``."""
    offset = limit_c - config.critical_c
    return config.warm_c + offset, config.hot_c + offset, config.critical_c + offset


def _level(value: float, thresholds: tuple[float, ...], margin: float = 0.0) -> int:
    """Highest level (1-based index into thresholds) whose threshold − margin is reached."""
    level = 0
    for index, threshold in enumerate(thresholds, start=1):
        if value >= threshold - margin:
            level = index
    return level


def thermal_levels(snapshot: HealthSnapshot, config: PolicyConfig) -> tuple[int, int, str]:
    """(entry level, hold level, detail) for the thermal monitor."""
    entry = hold = 0
    detail = "no temperature sensors" if snapshot.temp_sensors_found == 0 else ""
    worst_excess = -math.inf
    for zone, temp in snapshot.temperatures_c.items():
        limits = thermal_thresholds(zone_limit_c(snapshot.zone_limits.get(zone), config), config)
        entry = max(entry, _level(temp, limits))
        hold = max(hold, _level(temp, limits, config.thermal_hysteresis_c))
        if temp - limits[2] > worst_excess:
            worst_excess = temp - limits[2]
            detail = f"max {snapshot.max_temp_c:.1f} °C, {zone} {temp:.1f} °C of limit {limits[2]:.1f} °C"
    if snapshot.all_temperature_sensors_broken:
        blind = THERMAL_STATES.index(config.blind_state)
        entry, hold = max(entry, blind), max(hold, blind)
        detail = f"all {snapshot.temp_sensors_found} temperature sensors broken"
    active = [bit for bit in ("throttled", "freq_capped", "soft_temp_limit") if snapshot.throttle.get(bit)]
    if active:
        entry, hold = max(entry, 2), max(hold, 2)
        detail += ("; " if detail else "") + "firmware: " + ", ".join(active)
    if snapshot.throttle.get("under_voltage"):
        entry, hold = max(entry, 1), max(hold, 1)
        detail += ("; " if detail else "") + "under-voltage"
    return entry, hold, detail


def memory_signals(snapshot: HealthSnapshot, config: PolicyConfig) -> list[tuple[str, float, tuple[float, ...], float]]:
    """(name, value, (pressure, critical) thresholds, hysteresis margin); higher is worse."""
    signals: list[tuple[str, float, tuple[float, ...], float]] = []
    frac_margin = config.memory_fraction_hysteresis
    if snapshot.cgroup_current_mb is not None and snapshot.cgroup_max_mb:
        signals.append(("cgroup memory of limit", snapshot.cgroup_current_mb / snapshot.cgroup_max_mb,
                        (config.cgroup_pressure_fraction, config.cgroup_critical_fraction), frac_margin))
    if snapshot.cgroup_current_mb is not None and snapshot.cgroup_high_mb:
        signals.append(("cgroup memory of memory.high", snapshot.cgroup_current_mb / snapshot.cgroup_high_mb,
                        (1.0,), frac_margin))
    if snapshot.mem_available_mb is not None and snapshot.mem_total_mb:
        signals.append(("system memory used", 1.0 - snapshot.mem_available_mb / snapshot.mem_total_mb,
                        (config.system_pressure_fraction, config.system_critical_fraction), frac_margin))
    if "memory.some.avg10" in snapshot.psi:
        signals.append(("PSI memory some avg10 %", snapshot.psi["memory.some.avg10"],
                        (config.psi_some_pressure_pct, math.inf), config.psi_hysteresis_pct))
    if "memory.full.avg10" in snapshot.psi:
        signals.append(("PSI memory full avg10 %", snapshot.psi["memory.full.avg10"],
                        (config.psi_full_critical_pct, config.psi_full_critical_pct), config.psi_hysteresis_pct))
    return signals


class Policy:
    """Feed it snapshots with ``update(snapshot, now)`` (``now`` monotonic seconds); read the
    latest ``decision``, ``transition_counts`` and ``recent_transitions``. Thread-safe."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        cfg = self.config
        self._thermal = LevelTracker(len(THERMAL_STATES), cfg.thermal_enter_after_s, cfg.thermal_leave_after_s)
        self._memory = LevelTracker(len(MEMORY_STATES), cfg.memory_enter_after_s, cfg.memory_leave_after_s)
        self._lock = threading.Lock()
        self._last_events: dict[str, int] | None = None
        self.transition_counts: Counter[str] = Counter()
        self.recent_transitions: deque[Transition] = deque(maxlen=cfg.recent_transitions)
        self.decision = self._decide(THERMAL_STATES[0], MEMORY_STATES[0], "", "")

    def _event_level(self, events: dict[str, int]) -> tuple[int, str]:
        previous, self._last_events = self._last_events, dict(events)
        if previous is None:
            return 0, ""  # OOMs before we started are history, not pressure now
        grew = [key for key, count in events.items() if count > previous.get(key, count)]
        if "oom" in grew or "oom_kill" in grew:
            return 2, "cgroup OOM event"
        if "high" in grew or "max" in grew:
            return 1, "cgroup hit memory.high/max"
        return 0, ""

    def _memory_levels(self, snapshot: HealthSnapshot) -> tuple[int, int, int, str]:
        entry = hold = 0
        detail, worst = "", -math.inf
        for name, value, thresholds, margin in memory_signals(snapshot, self.config):
            level = _level(value, thresholds)
            entry = max(entry, level)
            hold = max(hold, _level(value, thresholds, margin))
            if value - thresholds[0] > worst:
                worst = value - thresholds[0]
                detail = f"{name} {value:.2f}" if "PSI" in name else f"{name} {value:.0%}"
        instant, event_detail = self._event_level(snapshot.cgroup_events)
        if event_detail:
            detail = event_detail + (f"; {detail}" if detail else "")
        return min(entry, 2), min(hold, 2), instant, detail

    def update(self, snapshot: HealthSnapshot, now: float) -> PolicyDecision:
        with self._lock:
            t_entry, t_hold, t_detail = thermal_levels(snapshot, self.config)
            m_entry, m_hold, m_instant, m_detail = self._memory_levels(snapshot)
            old_thermal, old_memory = self.decision.thermal_state, self.decision.memory_state
            thermal = THERMAL_STATES[self._thermal.update(now, t_entry, t_hold)]
            memory = MEMORY_STATES[self._memory.update(now, m_entry, m_hold, m_instant)]
            self._record(snapshot.time, "thermal", old_thermal, thermal, t_detail)
            self._record(snapshot.time, "memory", old_memory, memory, m_detail)
            self.decision = self._decide(thermal, memory, t_detail, m_detail)
            return self.decision

    def _record(self, at: float, monitor: str, old: str, new: str, detail: str) -> None:
        if old == new:
            return
        transition = Transition(at, monitor, old, new, detail)
        # Copy-on-write: /metrics and the status page iterate these from other threads, and a
        # dict or deque changed mid-iteration raises. Transitions are rare; copies are cheap.
        counts = Counter(self.transition_counts)
        counts[f"{monitor}:{old}→{new}"] += 1
        recent = deque(self.recent_transitions, maxlen=self.recent_transitions.maxlen)
        recent.append(transition)
        self.transition_counts, self.recent_transitions = counts, recent
        states = THERMAL_STATES if monitor == "thermal" else MEMORY_STATES
        worse = states.index(new) > states.index(old)
        log.log(logging.WARNING if worse else logging.INFO, "policy transition: %s", transition)

    def transitions(self) -> list[Transition]:
        with self._lock:
            return list(self.recent_transitions)

    def _decide(self, thermal: str, memory: str, t_detail: str, m_detail: str) -> PolicyDecision:
        cfg = self.config
        rows = (cfg.table[("thermal", thermal)], cfg.table[("memory", memory)])
        tokens = [row.max_tokens for row in rows if row.max_tokens is not None]
        reason = "thermal" if rows[0].rules_only else "memory" if rows[1].rules_only else None
        return PolicyDecision(
            thermal_state=thermal,
            memory_state=memory,
            intra_op_threads=max(1, math.floor(cfg.max_threads * min(r.threads_share for r in rows))),
            max_tokens=min(tokens) if tokens else None,
            max_queue=max(0, math.floor(cfg.max_queue * min(r.queue_share for r in rows))),
            rules_only=any(r.rules_only for r in rows),
            ready=all(r.ready for r in rows),
            degraded_reason=reason,
            thermal_detail=t_detail,
            memory_detail=m_detail,
        )
