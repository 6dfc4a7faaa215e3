"""The ``[monitor]``, ``[policy]`` and ``[web]`` tables of the service configuration, checked the
same way as the top-level keys: each key must be a field of its typed settings class (the
sampler's ``MonitorConfig``, the board policy's ``PolicyConfig``, the pages' ``WebSettings``), of
that field's type, and inside its range. Errors name the key as ``table.key`` so a typo on a
board nobody watches fails at start instead of falling back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping, TypeVar

from edge.board.policy import THERMAL_STATES, PolicyConfig
from edge.board.sampler import MonitorConfig
from edge.errors import EdgeError
from edge.web.settings import WebSettings

T = TypeVar("T")


class ConfigError(EdgeError):
    """The service configuration is invalid."""


# (low, high) inclusive; None: unbounded on that side. Keys not listed only need the right type.
_POSITIVE = (1e-9, None)
RANGES: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "monitor": {"interval_s": _POSITIVE, "command_timeout_s": _POSITIVE},
    "policy": {
        "max_threads": (1, 256), "max_queue": (0, None), "recent_transitions": (1, 10_000),
        "warm_c": (0, 150), "hot_c": (0, 150), "critical_c": (0, 150), "critical_trip_margin_c": (0, 100),
        "thermal_hysteresis_c": (0, 50), "thermal_enter_after_s": (0, None), "thermal_leave_after_s": (0, None),
        "cgroup_pressure_fraction": (0, 1), "cgroup_critical_fraction": (0, 1),
        "system_pressure_fraction": (0, 1), "system_critical_fraction": (0, 1),
        "psi_some_pressure_pct": (0, 100), "psi_full_critical_pct": (0, 100),
        "memory_fraction_hysteresis": (0, 1), "psi_hysteresis_pct": (0, 100),
        "memory_enter_after_s": (0, None), "memory_leave_after_s": (0, None),
    },
    "web": {"queue_size": (1, 10_000), "history_points": (1, 100_000), "kiosk_idle_s": _POSITIVE,
            "result_idle_s": _POSITIVE, "staff_refresh_s": _POSITIVE, "status_refresh_s": _POSITIVE,
            "queue_max_age_s": _POSITIVE, "history_interval_s": _POSITIVE, "session_max_age_s": _POSITIVE},
}
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {"policy": {"blind_state": THERMAL_STATES}}
NOT_SETTABLE = {"policy": {"table"}}  # the state table is code, reviewed with the safety case


def _fail(table: str, key: str, message: str, code: str = "config_invalid") -> ConfigError:
    return ConfigError(code, f"'{table}.{key}' {message}", field=f"{table}.{key}")


def _value(table: str, key: str, kind: Any, value: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(table, key, inner, value)
    if origin is tuple:  # argv lists: TOML arrays of strings
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _fail(table, key, "must be a list of strings.")
        return tuple(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(table, key, "must be true or false.")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(table, key, "must be a whole number.")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(table, key, "must be a number.")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _fail(table, key, "must be a string.")
        return value
    raise _fail(table, key, "cannot be set from the configuration.")


def typed_table(cls: type[T], table: str, values: Mapping[str, Any], **base: Any) -> T:
    """``cls(**base, **values)`` after checking every key's name, type and range."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - NOT_SETTABLE.get(table, set())  # type: ignore[arg-type]
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise _fail(table, key, f"is not a setting. Known: {', '.join(sorted(names))}.", "config_unknown_key")
        checked[key] = _value(table, key, hints[key], value)
        low, high = RANGES.get(table, {}).get(key, (None, None))
        number = checked[key]
        if isinstance(number, (int, float)) and not isinstance(number, bool) and (
                (low is not None and number < low) or (high is not None and number > high)):
            bounds = (f"from {low:g} to {high:g}" if high is not None else "above 0" if low == _POSITIVE[0]
                      else f"{low:g} or more")
            raise _fail(table, key, f"must be {bounds}.")
        if key in CHOICES.get(table, {}) and number not in CHOICES[table][key]:
            raise _fail(table, key, f"must be one of {', '.join(CHOICES[table][key])}.")
    return cls(**{**base, **checked})  # type: ignore[call-arg]


def policy_config(values: Mapping[str, Any], *, max_threads: int, max_queue: int) -> PolicyConfig:
    config = typed_table(PolicyConfig, "policy", values, max_threads=max_threads, max_queue=max_queue)
    if not config.warm_c < config.hot_c < config.critical_c:
        raise _fail("policy", "hot_c", "must lie between warm_c and critical_c (warm_c < hot_c < critical_c).")
    if not config.cgroup_pressure_fraction < config.cgroup_critical_fraction:
        raise _fail("policy", "cgroup_pressure_fraction", "must be below cgroup_critical_fraction.")
    if not config.system_pressure_fraction < config.system_critical_fraction:
        raise _fail("policy", "system_pressure_fraction", "must be below system_critical_fraction.")
    return config


def monitor_config(values: Mapping[str, Any], *, root: str, interval_s: float) -> MonitorConfig:
    return typed_table(MonitorConfig, "monitor", values, root=root, interval_s=interval_s)


def web_settings(values: Mapping[str, Any]) -> WebSettings:
    return typed_table(WebSettings, "web", values)
