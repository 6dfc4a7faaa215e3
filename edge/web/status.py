"""The device-status view: one fixed JSON shape for the status page, read from the service's typed
health snapshot, policy decision, telemetry and model; a part the service runs without (no monitor,
no policy, no model) shows as "not available". Never includes patient data."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

from edge.board.policy import thermal_thresholds, zone_limit_c
from edge.board.sampler import HealthSnapshot
from edge.service.state import ServiceState
from edge.web.history import POWER_TOTAL, DecisionStats, PowerHistory, TemperatureHistory, power_readings
from edge.web.words import model_card, warning_in_words


def plain(value: Any, depth: int = 0) -> Any:
    """Dataclasses, objects with ``to_dict`` and tuples-as-keys turned into JSON-able values."""
    if depth > 6:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else "→".join(map(str, k)) if isinstance(k, tuple) else str(k)):
                plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _policy_thresholds(service: ServiceState, snapshot: HealthSnapshot | None) -> dict[str, tuple[float, float, float]]:
    """Per zone, the (warm, hot, critical) temperatures the adaptive policy acts on: what the
    status page should colour by, rather than the kernel's raw trip points."""
    if service.policy is None or snapshot is None:
        return {}
    config = service.policy.config
    return {name: thermal_thresholds(zone_limit_c(snapshot.zone_limits.get(name), config), config)
            for name in snapshot.temperatures_c}


def _temperatures(snapshot: HealthSnapshot | None, history: TemperatureHistory,
                  thresholds: dict[str, tuple[float, float, float]]) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    readings = {name: float(celsius) for name, celsius in snapshot.temperatures_c.items()}
    if not history.follows_monitor:
        history.add(readings, at=snapshot.time)
    series = history.series()
    out = []
    for name, celsius in sorted(readings.items()):
        limit = snapshot.zone_limits.get(name)
        warm, hot, critical = thresholds.get(name, (None, None, None))
        out.append({"name": name, "kind": snapshot.zone_kinds.get(name), "celsius": round(celsius, 1),
                    "trip_passive_c": limit.passive_c if limit else None,
                    "trip_critical_c": limit.critical_c if limit else None,
                    "warm_c": warm, "hot_c": hot, "critical_c": critical,
                    "history": series.get(name, [])})
    return out


def _power(snapshot: HealthSnapshot | None, history: PowerHistory | None) -> dict[str, Any]:
    """Board power now (total and by rail, W), where it comes from, and the recent history."""
    readings = power_readings(snapshot) if snapshot is not None else {}
    if history is not None and not history.follows_monitor and snapshot is not None:
        history.add(readings, at=snapshot.time)
    series = history.series() if history is not None else {}
    return {"source": snapshot.power_source if snapshot is not None else "none", "total_w": readings.get(POWER_TOTAL),
            "input_v": snapshot.power_input_v if snapshot is not None else None,
            "history": series.get(POWER_TOTAL, []),
            "rails": [{"name": name, "watts": round(watts, 3), "history": series.get(name, [])}
                      for name, watts in sorted(readings.items()) if name != POWER_TOTAL]}


MEMORY_FIELDS = ("mem_available_mb", "mem_total_mb", "rss_mb", "cgroup_current_mb", "cgroup_max_mb", "cgroup_high_mb")


def _memory(snapshot: HealthSnapshot | None) -> dict[str, float]:
    if snapshot is None:
        return {}
    values = {name: getattr(snapshot, name) for name in MEMORY_FIELDS}
    return {name: value for name, value in values.items() if value is not None}


def _model(service: ServiceState) -> dict[str, Any]:
    model = service.runtime.triager.model
    if model is None:
        return {"loaded": False}
    bundle = model.bundle
    manifest = bundle.manifest
    return {"loaded": True, **bundle.identity(), "target": manifest.get("target"),
            "quantization": plain(manifest.get("quantization")), "created": manifest.get("created"),
            "base_model": plain(manifest.get("base_model")), "evaluation": plain(manifest.get("evaluation") or {}),
            "card": model_card(manifest)}


def _policy(service: ServiceState) -> dict[str, Any]:
    policy = service.policy
    if policy is None:
        return {"available": False}
    return {"available": True, "current": plain(policy.decision), "transition_counts": plain(policy.transition_counts),
            "recent": plain(policy.transitions())[-20:]}


def status_view(service: ServiceState, history: TemperatureHistory, stats: DecisionStats,
                power_history: PowerHistory | None = None) -> dict[str, Any]:
    snapshot = service.monitor.snapshot() if service.monitor is not None else service.snapshot
    warnings = list(snapshot.warnings) if snapshot is not None else []
    decisions = stats.summary()
    return {
        "time": time.time(),
        "monitor_available": snapshot is not None,
        "temperatures": _temperatures(snapshot, history, _policy_thresholds(service, snapshot)),
        "throttle": dict(snapshot.throttle) if snapshot is not None else {},
        "cpu_freq_ratio": snapshot.cpu_freq_ratio if snapshot is not None else None,
        "power": _power(snapshot, power_history),
        "memory": _memory(snapshot),
        "pressure": {k: v for k, v in snapshot.psi.items() if k.endswith("avg10")} if snapshot is not None else {},
        "cgroup_events": dict(snapshot.cgroup_events) if snapshot is not None else {},
        "warnings": warnings,
        "warnings_text": [warning_in_words(w) for w in warnings],
        "sensor_errors": list(snapshot.sensor_errors) if snapshot is not None else [],
        "latency": decisions,
        "degraded": dict(service.telemetry.degraded) or decisions["degraded"],
        "policy": _policy(service),
        "model": _model(service),
    }
