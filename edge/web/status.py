"""The device-status view: one fixed JSON shape for the status page, assembled defensively from
the service's monitor, policy, telemetry and model, so a missing part shows as "not available"
instead of breaking the page. Never includes patient data."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

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


def _first(source: dict[str, Any], *names: str) -> Any:
    for name in names:
        if source.get(name) not in (None, {}, []):
            return source[name]
    return None


def _call(obj: Any, name: str) -> Any:
    attr = getattr(obj, name, None)
    try:
        return attr() if callable(attr) else attr
    except Exception:  # noqa: BLE001 - a failing part must not take the status page down
        return None


def _policy_thresholds(service: Any, raw_snapshot: Any) -> dict[str, tuple[float, float, float]]:
    """Per zone, the (warm, hot, critical) temperatures the adaptive policy acts on: what the
    status page should colour by, rather than the kernel's raw trip points."""
    config = getattr(getattr(service, "policy", None), "config", None)
    limits = getattr(raw_snapshot, "zone_limits", None)
    temps = getattr(raw_snapshot, "temperatures_c", None)
    if config is None or not isinstance(temps, dict):
        return {}
    try:
        from edge.board.policy import thermal_thresholds, zone_limit_c

        return {name: thermal_thresholds(zone_limit_c((limits or {}).get(name), config), config) for name in temps}
    except (ImportError, AttributeError, TypeError, ValueError):
        return {}


def _temperatures(snap: dict[str, Any], history: TemperatureHistory,
                  thresholds: dict[str, tuple[float, float, float]]) -> list[dict[str, Any]]:
    thermal = snap.get("thermal") if isinstance(snap.get("thermal"), dict) else snap
    temps = _first(thermal, "temperatures_c", "temps", "temperatures") or {}
    limits = _first(thermal, "zone_limits", "limits") or {}
    kinds = _first(thermal, "zone_kinds") or {}
    readings = {str(k): float(v) for k, v in dict(temps).items() if isinstance(v, (int, float))}
    if not history.follows_monitor:
        history.add(readings, at=snap.get("time") if isinstance(snap.get("time"), (int, float)) else None)
    series = history.series()
    out = []
    for name, celsius in sorted(readings.items()):
        limit = limits.get(name) or {}
        warm, hot, critical = thresholds.get(name, (None, None, None))
        out.append({"name": name, "kind": kinds.get(name), "celsius": round(celsius, 1),
                    "trip_passive_c": limit.get("passive_c") if isinstance(limit, dict) else None,
                    "trip_critical_c": limit.get("critical_c") if isinstance(limit, dict) else None,
                    "warm_c": warm, "hot_c": hot, "critical_c": critical,
                    "history": series.get(name, [])})
    return out


def _power(snap: dict[str, Any], history: PowerHistory | None) -> dict[str, Any]:
    """Board power now (total and by rail, W), where it comes from, and the recent history."""
    readings = power_readings(snap)
    if history is not None and not history.follows_monitor:
        history.add(readings, at=snap.get("time") if isinstance(snap.get("time"), (int, float)) else None)
    series = history.series() if history is not None else {}
    volts = snap.get("power_input_v")
    return {"source": str(snap.get("power_source") or "none"), "total_w": readings.get(POWER_TOTAL),
            "input_v": volts if isinstance(volts, (int, float)) else None,
            "history": series.get(POWER_TOTAL, []),
            "rails": [{"name": name, "watts": round(watts, 3), "history": series.get(name, [])}
                      for name, watts in sorted(readings.items()) if name != POWER_TOTAL]}


MEMORY_PREFIXES = ("mem_", "rss_", "cgroup_")


def _numbers(section: Any, prefixes: tuple[str, ...] = ("",), suffix: str = "") -> dict[str, Any]:
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k.startswith(prefixes) and k.endswith(suffix)}


def _model(service: Any) -> dict[str, Any]:
    runtime = getattr(service, "runtime", None)
    triager = _call(runtime, "triager") if runtime is not None else None
    triager = triager or _call(service, "triager")
    model = getattr(triager, "model", None)
    bundle = getattr(model, "bundle", None)
    if bundle is None:
        return {"loaded": False}
    manifest = bundle.manifest
    return {"loaded": True, **bundle.identity(), "target": manifest.get("target"),
            "quantization": plain(manifest.get("quantization")), "created": manifest.get("created"),
            "base_model": plain(manifest.get("base_model")), "evaluation": plain(manifest.get("evaluation") or {}),
            "card": model_card(manifest)}


def _policy(service: Any) -> dict[str, Any]:
    policy = getattr(service, "policy", None)
    if policy is None:
        return {"available": False}
    current = None
    for name in ("decision", "current", "state", "snapshot"):
        current = _call(policy, name)
        if current is not None:
            break
    counts = plain(getattr(policy, "transition_counts", None) or {})
    recent = plain(_call(policy, "transitions") or _call(policy, "recent_transitions") or [])
    return {"available": True, "current": plain(current), "transition_counts": counts,
            "recent": recent[-20:] if isinstance(recent, list) else []}


def status_view(service: Any, history: TemperatureHistory, stats: DecisionStats,
                power_history: PowerHistory | None = None) -> dict[str, Any]:
    monitor = getattr(service, "monitor", None)
    raw = _call(monitor, "snapshot") if monitor is not None else getattr(service, "snapshot", None)
    snap = plain(raw)
    snap = snap if isinstance(snap, dict) else {}
    thermal = snap.get("thermal") if isinstance(snap.get("thermal"), dict) else snap
    memory = snap.get("memory") if isinstance(snap.get("memory"), dict) else snap
    throttle = _first(thermal, "throttle", "throttle_flags") or {}
    decisions = stats.summary()
    telemetry = getattr(service, "telemetry", None)
    degraded = dict(getattr(telemetry, "degraded", None) or decisions["degraded"])
    return {
        "time": time.time(),
        "monitor_available": bool(snap),
        "temperatures": _temperatures(snap, history, _policy_thresholds(service, raw)),
        "throttle": {k: bool(v) for k, v in dict(throttle).items()} if isinstance(throttle, dict) else {},
        "cpu_freq_ratio": thermal.get("cpu_freq_ratio"),
        "power": _power(snap, power_history),
        "memory": _numbers(memory, MEMORY_PREFIXES),
        "pressure": _numbers(_first(memory, "psi", "pressure"), suffix="avg10"),
        "cgroup_events": _numbers(_first(memory, "cgroup_events")),
        "warnings": [str(w) for w in (snap.get("warnings") or [])],
        "warnings_text": [warning_in_words(str(w)) for w in (snap.get("warnings") or [])],
        "sensor_errors": [str(e) for e in (snap.get("sensor_errors") or [])],
        "latency": decisions,
        "degraded": degraded,
        "policy": _policy(service),
        "model": _model(service),
    }
