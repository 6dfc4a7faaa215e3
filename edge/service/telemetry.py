"""Service metrics in the Prometheus text exposition format, written by hand (no client library).

Label values are fixed vocabularies (endpoint names, status codes, degraded reasons, policy
states) or sensor names from sysfs: never anything a client sent, so no patient data can reach
``/metrics``.
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any, Callable, Iterable

MB = 1024 * 1024
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:/ -]")


def _label(value: Any) -> str:
    # Sensor names come from the board; keep them printable and short, and escape for the format.
    return _LABEL_SAFE.sub("_", str(value))[:64].replace("\\", "\\\\").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items())) + "}"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.degraded: collections.Counter[str] = collections.Counter()
        self.decisions = 0
        self.in_flight = 0
        self._buckets = [0] * len(LATENCY_BUCKETS_S)
        self._latency_sum = 0.0
        self._latency_count = 0
        # name -> (help, read()): gauges owned by other parts, e.g. the WSGI server's own queue.
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1

    def end(self, endpoint: str, status: int, seconds: float | None) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[(endpoint, status)] += 1
            if seconds is not None:
                self._latency_sum += seconds
                self._latency_count += 1
                for i, bound in enumerate(LATENCY_BUCKETS_S):
                    if seconds <= bound:
                        self._buckets[i] += 1

    def decision(self, degraded_reason: str | None) -> None:
        with self._lock:
            self.decisions += 1
            if degraded_reason:
                self.degraded[degraded_reason] += 1

    def render(self, *, scheduler: Any = None, snapshot: Any = None, decision: Any = None, policy: Any = None,
               ready: bool | None = None, audit_written: int | None = None, energy: Any = None,
               model: dict[str, str] | None = None) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, Any], Any]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                if value is not None:
                    out.append(f"{name}{_labels(**labels)} {_number(value)}")

        with self._lock:
            requests = dict(self.requests)
            degraded = dict(self.degraded)
            buckets, total, count = list(self._buckets), self._latency_sum, self._latency_count
            in_flight, decisions = self.in_flight, self.decisions
        out.append("# HELP edge_request_duration_seconds Triage request latency inside the service.")
        out.append("# TYPE edge_request_duration_seconds histogram")
        for bound, value in zip(LATENCY_BUCKETS_S, buckets):
            out.append(f'edge_request_duration_seconds_bucket{{le="{bound}"}} {value}')
        out.append(f'edge_request_duration_seconds_bucket{{le="+Inf"}} {count}')
        out.append(f"edge_request_duration_seconds_sum {_number(total)}")
        out.append(f"edge_request_duration_seconds_count {count}")
        metric("edge_requests_total", "counter", "HTTP requests by endpoint and status.",
               [({"endpoint": e, "status": s}, n) for (e, s), n in sorted(requests.items())])
        metric("edge_in_flight_requests", "gauge", "Requests being handled now.", [({}, in_flight)])
        metric("edge_decisions_total", "counter", "Triage decisions answered.", [({}, decisions)])
        metric("edge_degraded_total", "counter", "Degraded (rules-only) answers by reason.",
               [({"reason": r}, n) for r, n in sorted(degraded.items())])
        for name, (help_text, read) in sorted(self.gauges.items()):
            try:
                metric(name, "gauge", help_text, [({}, read())])
            except Exception:  # a gauge that cannot be read is left out, never a failed scrape
                pass
        if model:
            # An info metric (value 1, identity in labels) so a fleet query can compare the sha256
            # every box serves. Bundle identity comes from its verified manifest, never a client.
            metric("edge_model_info", "gauge", "The model bundle being served (name, version, sha256).",
                   [({k: model.get(k, "") for k in ("name", "version", "sha256")}, 1)])
        if ready is not None:
            metric("edge_ready", "gauge", "1 when the service reports ready.", [({}, ready)])
        if audit_written is not None:
            metric("edge_audit_records_written_total", "counter", "Audit records written since start.", [({}, audit_written)])
        if scheduler is not None:
            metric("edge_rejections_total", "counter", "Requests refused a model answer at admission, by reason.",
                   [({"reason": r}, n) for r, n in sorted(scheduler.rejections.items())])
            metric("edge_deadline_overruns_total", "counter", "Admitted requests answered degraded at their deadline (slow or queued inference).",
                   [({}, scheduler.overruns)])
            metric("edge_queue_depth", "gauge", "Jobs waiting for an inference worker.", [({}, scheduler.depth)])
            metric("edge_queue_limit", "gauge", "Current queue limit (policy).", [({}, scheduler.max_queue)])
            metric("edge_service_time_estimate_seconds", "gauge", "Per-case service time used for admission.",
                   [({}, scheduler.times.estimate())])
        if snapshot is not None:
            self._render_snapshot(metric, snapshot)
            self._render_power(metric, snapshot)
        if energy is not None:
            self._render_energy(metric, energy.totals())
        if decision is not None:
            for kind in ("thermal", "memory"):
                state = getattr(decision, f"{kind}_state", None)
                if state is not None:
                    metric(f"edge_policy_{kind}_state", "gauge", f"Current {kind} policy state (1 = active).",
                           [({"state": state}, 1)])
            metric("edge_policy_threads", "gauge", "Inference threads set by the policy.",
                   [({}, getattr(decision, "intra_op_threads", None))])
            metric("edge_policy_max_tokens", "gauge", "Token limit set by the policy.",
                   [({}, getattr(decision, "max_tokens", None))])
            metric("edge_policy_rules_only", "gauge", "1 while only the safety rules answer.",
                   [({}, bool(getattr(decision, "rules_only", False)))])
        counts = getattr(policy, "transition_counts", None)
        if counts:
            metric("edge_policy_transitions_total", "counter", "Policy state transitions.",
                   [(_transition_labels(key), n) for key, n in sorted(counts.items(), key=lambda kv: str(kv[0]))])
        return "\n".join(out) + "\n"

    @staticmethod
    def _render_snapshot(metric: Any, snap: Any) -> None:
        temps = getattr(snap, "temperatures_c", None) or {}
        metric("edge_temperature_celsius", "gauge", "Temperature by sensor.",
               [({"sensor": name}, value) for name, value in sorted(temps.items()) if value is not None])
        metric("edge_temperature_max_celsius", "gauge", "Hottest sensor.", [({}, getattr(snap, "max_temp_c", None))])
        throttle = getattr(snap, "throttle", None) or {}
        metric("edge_throttle_flag", "gauge", "Board throttle / under-voltage bits (Raspberry Pi).",
               [({"flag": name}, bool(value)) for name, value in sorted(throttle.items())])
        metric("edge_cpu_frequency_ratio", "gauge", "Current CPU frequency over its maximum.",
               [({}, getattr(snap, "cpu_freq_ratio", None))])
        for attr, name, help_text in (
            ("mem_available_mb", "edge_memory_available_bytes", "System memory available."),
            ("mem_total_mb", "edge_memory_total_bytes", "System memory total."),
            ("rss_mb", "edge_process_rss_bytes", "Service resident set size."),
            ("cgroup_current_mb", "edge_cgroup_memory_current_bytes", "cgroup v2 memory.current."),
            ("cgroup_max_mb", "edge_cgroup_memory_max_bytes", "cgroup v2 memory.max (absent: unlimited)."),
        ):
            value = getattr(snap, attr, None)
            metric(name, "gauge", help_text, [({}, None if value is None else int(value * MB))])
        events = getattr(snap, "cgroup_events", None) or {}
        metric("edge_cgroup_memory_events", "counter", "cgroup v2 memory.events counters.",
               [({"event": k}, v) for k, v in sorted(events.items())])
        psi = getattr(snap, "psi", None) or {}
        metric("edge_pressure_percent", "gauge", "Pressure stall information (resource.kind.window).",
               [({"series": k}, v) for k, v in sorted(psi.items()) if isinstance(v, (int, float))])
        errors = getattr(snap, "sensor_errors", None) or ()
        metric("edge_sensor_errors", "gauge", "Sensors that could not be read at the last sample.", [({}, len(errors))])

    @staticmethod
    def _render_power(metric: Any, snap: Any) -> None:
        source = getattr(snap, "power_source", None) or "none"
        rails = getattr(snap, "power_rails_w", None) or {}
        metric("edge_board_power_sensor", "gauge", "Where board power is read from (ina3221, pmic, none); always 1.",
               [({"source": source}, 1)])
        metric("edge_board_power_watts", "gauge", "Board power by rail, from the board's own sensor.",
               [({"rail": name, "source": source}, watts) for name, watts in sorted(rails.items())])
        metric("edge_board_power_total_watts", "gauge", "Board power in total (input rail or sum of rails); "
               "absent without a sensor or with a broken one.", [({"source": source}, getattr(snap, "power_w", None))])
        metric("edge_board_input_volts", "gauge", "Board input voltage where the sensor reports it.",
               [({"source": source}, getattr(snap, "power_input_v", None))])

    @staticmethod
    def _render_energy(metric: Any, totals: Any) -> None:
        metric("edge_energy_joules_total", "counter", "Board energy spent in model inference: board power × "
               "inference time, summed (includes the board's idle draw for that time).",
               [({"source": s}, j) for s, j in sorted(totals.joules.items())])
        metric("edge_energy_inferences_total", "counter", "Cases inferred, by the power source that metered them "
               "(source none: not metered).", [({"source": s}, n) for s, n in sorted(totals.inferences.items())])
        metric("edge_energy_joules_per_triage", "gauge", "Mean board energy per metered triage inference since start.",
               [({"source": s}, j) for s, j in sorted(totals.joules_per_triage().items())])


def _transition_labels(key: Any) -> dict[str, Any]:
    if isinstance(key, str) and ":" in key and "\u2192" in key:  # "thermal:normal→warm"
        kind, _, change = key.partition(":")
        old, _, new = change.partition("\u2192")
        return {"kind": kind, "from": old, "to": new}
    if isinstance(key, tuple) and len(key) == 3:
        return {"kind": key[0], "from": key[1], "to": key[2]}
    if isinstance(key, tuple) and len(key) == 2:
        return {"from": key[0], "to": key[1]}
    return {"transition": key}
