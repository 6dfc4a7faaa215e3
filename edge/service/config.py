"""Service configuration: one dataclass, read from a TOML file, then ``EDGE_TRIAGE_*`` environment
variables, then command-line overrides (later wins).

Keys are the field names below, at the top level of the TOML file; the ``[monitor]``, ``[policy]``
and ``[web]`` tables are checked against the typed settings of the sampler, the board policy and
the web pages (edge.service.config_tables), all in ``validate()``, once, at start.
Every bad value is refused at start with a message naming the key and what it accepts, so a typo
never silently falls back to a default on a device nobody is watching.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from edge.board.policy import PolicyConfig
from edge.board.sampler import MonitorConfig

if TYPE_CHECKING:
    from edge.inference.session import RuntimeOptions
from edge.service import config_tables
from edge.service.config_tables import ConfigError
from edge.web.settings import WebSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 boards
    import tomli as tomllib

ENV_PREFIX = "EDGE_TRIAGE_"
DEFAULT_MODEL_DIR = "models/triage-minilm-int8"


@dataclass
class ServiceConfig:
    host: str = "127.0.0.1"  # loopback by default: other hosts need a token and a deliberate choice
    port: int = 8080
    model_dir: str = DEFAULT_MODEL_DIR
    scale: str | None = None  # the ED's triage scale: "ktas" or "esi" (None: the bundle's default)
    threads: int = 1  # ONNX Runtime intra-op threads at normal temperature (the policy may lower it)
    # int8 arithmetic where the CPU has ONNX Runtime's int8 kernel, else fp32 weights made at load
    # (edge.inference.int8_fallback): "auto", or force "int8" / "fp32".
    int8_compute: str = "auto"
    workers: int = 1  # inference worker threads
    http_threads: int = 32  # waitress threads: enough that requests wait in *our* queue, under a deadline
    deadline_ms: float = 500.0
    deadline_min_ms: float = 50.0
    deadline_max_ms: float = 5000.0
    queue_size: int = 64  # a memory cap; admission by predicted wait is what keeps the deadline
    batch_max: int = 16
    # Dynamic batching (edge.service.scheduler): queued requests ride in one model call of at most
    # this many cases, waiting at most this long for company when the first deadline allows.
    dynamic_batch_cases: int = 8
    dynamic_batch_wait_ms: float = 1.0
    audit_db: str = "var/audit.sqlite3"
    audit_key_file: str = "var/audit.key"
    audit_retention_days: int = 365
    audit_synchronous: str = "NORMAL"  # see edge.service.audit for why; FULL for power-loss durability
    token_file: str | None = None
    monitor_root: str = "/"
    monitor_interval_s: float = 2.0
    max_body_bytes: int = 16384
    worker_stuck_s: float = 10.0  # an inference busy longer than this (and 2x deadline_max) is stuck
    monitor: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)  # kiosk / staff board settings (edge.web)

    def validate(self) -> "ServiceConfig":
        positive_ints = ("threads", "workers", "http_threads", "queue_size", "batch_max", "dynamic_batch_cases",
                         "audit_retention_days", "max_body_bytes")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ConfigError("config_invalid", f"'{name}' must be 1 or more.", field=name)
        if not 0 <= self.port <= 65535:
            raise ConfigError("config_invalid", "'port' must be between 0 and 65535 (0 picks a free port).", field="port")
        if not 1 <= self.deadline_min_ms <= self.deadline_ms <= self.deadline_max_ms:
            raise ConfigError(
                "config_invalid",
                "Deadlines must satisfy 1 <= deadline_min_ms <= deadline_ms <= deadline_max_ms.",
                field="deadline_ms",
            )
        if self.int8_compute not in ("auto", "int8", "fp32"):
            raise ConfigError("config_invalid", "'int8_compute' must be auto, int8 or fp32.", field="int8_compute")
        if self.scale is not None and self.scale not in ("ktas", "esi"):
            raise ConfigError("config_invalid", "'scale' must be ktas (Korea, CTAS family) or esi (US).", field="scale")
        if not 0 <= self.dynamic_batch_wait_ms <= 50:
            raise ConfigError("config_invalid", "'dynamic_batch_wait_ms' must be between 0 and 50 (it is spent inside "
                              "every deadline).", field="dynamic_batch_wait_ms")
        if self.worker_stuck_s <= 0:
            raise ConfigError("config_invalid", "'worker_stuck_s' must be above 0.", field="worker_stuck_s")
        if self.monitor_interval_s <= 0:
            raise ConfigError("config_invalid", "'monitor_interval_s' must be above 0.", field="monitor_interval_s")
        if self.audit_synchronous.upper() not in ("NORMAL", "FULL"):
            raise ConfigError("config_invalid", "'audit_synchronous' must be NORMAL or FULL.", field="audit_synchronous")
        self.audit_synchronous = self.audit_synchronous.upper()
        self.monitor_config(), self.policy_config(), self.web_settings()  # the tables, checked now
        return self

    def runtime_options(self) -> "RuntimeOptions":
        """ONNX Runtime session settings at normal temperature (the policy may lower the threads)."""
        from edge.inference.session import RuntimeOptions

        return RuntimeOptions(intra_op_threads=self.threads, int8_compute=self.int8_compute)

    def monitor_config(self) -> MonitorConfig:
        return config_tables.monitor_config(self.monitor, root=self.monitor_root, interval_s=self.monitor_interval_s)

    def policy_config(self) -> PolicyConfig:
        return config_tables.policy_config(self.policy, max_threads=self.threads, max_queue=self.queue_size)

    def web_settings(self) -> WebSettings:
        return config_tables.web_settings(self.web)


# The real types (not their annotation strings): ``from __future__ import annotations`` makes
# ``Field.type`` a string, and matching strings is how a new field type slips through unchecked.
_FIELD_TYPES = typing.get_type_hints(ServiceConfig)
# Environment names that differ from the field name (the one the rest of the project documents).
_ENV_ALIASES = {"EDGE_TRIAGE_MODEL": "model_dir"}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELD_TYPES[name]
    optional = type(None) in typing.get_args(kind)
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
    try:
        if typing.get_origin(base) is dict or base is dict:
            if not isinstance(value, Mapping):
                raise TypeError
            return dict(value)
        if (value is None or value == "") and optional:
            return None
        if isinstance(value, bool) or value is None:
            raise TypeError
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        if base is float:
            return float(value)
        if not isinstance(value, (str, int, float)) or value == "":
            raise TypeError
        return str(value)
    except (TypeError, ValueError):
        expected = getattr(base, "__name__", str(base)) + (" (or empty)" if optional else "")
        raise ConfigError("config_invalid", f"'{name}' from {source} must be of type {expected}.", field=name) from None


def _apply(values: dict[str, Any], updates: Mapping[str, Any], source: str) -> None:
    for key, value in updates.items():
        if key not in _FIELD_TYPES:
            known = ", ".join(sorted(_FIELD_TYPES))
            raise ConfigError("config_unknown_key", f"Unknown setting '{key}' in {source}. Known: {known}.", field=key)
        values[key] = _coerce(key, value, source)


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServiceConfig:
    """File, then environment, then ``overrides`` (None values in ``overrides`` are ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError("config_not_found", f"Configuration file {path} does not exist.") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("config_unparsable", f"Configuration file {path} is not valid TOML: {error}.") from None
        _apply(values, data, str(path))
    env_updates: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = _ENV_ALIASES.get(key, key[len(ENV_PREFIX):].lower())
        if name in ("monitor", "policy", "web"):
            continue  # tables come from the file only
        if name in _FIELD_TYPES:
            env_updates[name] = raw
    _apply(values, env_updates, "the environment")
    _apply(values, {k: v for k, v in (overrides or {}).items() if v is not None}, "the command line")
    return dataclasses.replace(ServiceConfig(), **values).validate()
