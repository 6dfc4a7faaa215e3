"""Service metrics for ``GET /metrics``, exposed through prometheus-client's collector API.

The counters live here (requests, latency, decisions, degraded answers); everything else is read
from the service's typed parts at scrape time (``Scrape``) and handed to prometheus-client as
metric families, so the exposition format is the library's. Label values are fixed vocabularies
(endpoint names, status codes, degraded reasons, policy states) or sensor names from sysfs: never
anything a client sent, so no patient data can reach ``/metrics``.
"""

from __future__ import annotations

import collections
import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Union

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from edge.board.energy import EnergyMeter, EnergyTotals
from edge.board.policy import Policy, PolicyDecision
from edge.board.sampler import HealthSnapshot
from edge.service.scheduler import Scheduler

MB = 1024 * 1024
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:/ -]")
Number = Union[float, int, bool, None]  # a runtime alias: 3.10 boards evaluate it


def _label(value: object) -> str:
    # Sensor names come from the board; keep them printable and short (the library escapes).
    return _LABEL_SAFE.sub("_", str(value))[:64]


@dataclass(frozen=True)
class Scrape:
    """The service's parts as one scrape sees them."""

    scheduler: Scheduler | None = None
    snapshot: HealthSnapshot | None = None
    decision: PolicyDecision | None = None
    policy: Policy | None = None
    ready: bool | None = None
    audit_written: int | None = None
    energy: EnergyMeter | None = None
    model: Mapping[str, str] | None = None


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, object], Number]]) -> Metric | None:
    """One metric family; samples without a value are left out (an absent sensor is never a zero),
    while the family's HELP and TYPE stay, so the exported names do not depend on the board."""
    rows = [(labels, value) for labels, value in samples if value is not None]
    names = sorted(rows[0][0]) if rows else []
    family: CounterMetricFamily | GaugeMetricFamily
    family = CounterMetricFamily(name, help_text, labels=names) if kind == "counter" else \
        GaugeMetricFamily(name, help_text, labels=names)
    for labels, value in rows:
        family.add_metric([_label(labels[key]) for key in names], float(value))
    return family


class _Families:
    """A collector for one scrape: prometheus-client asks it for its families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


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

    def render(self, scrape: Scrape) -> str:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families([f for f in self._families(scrape) if f is not None]))  # type: ignore[arg-type]
        return generate_latest(registry).decode()

    def _families(self, scrape: Scrape) -> Iterator[Metric | None]:
        with self._lock:
            requests = dict(self.requests)
            degraded = dict(self.degraded)
            buckets, total, count = list(self._buckets), self._latency_sum, self._latency_count
            in_flight, decisions = self.in_flight, self.decisions
        yield HistogramMetricFamily(
            "edge_request_duration_seconds", "Triage request latency inside the service.",
            buckets=[(str(bound), value) for bound, value in zip(LATENCY_BUCKETS_S, buckets)] + [("+Inf", count)],
            sum_value=total)
        yield _family("edge_requests_total", "counter", "HTTP requests by endpoint and status.",
                      [({"endpoint": e, "status": s}, n) for (e, s), n in sorted(requests.items())])
        yield _family("edge_in_flight_requests", "gauge", "Requests being handled now.", [({}, in_flight)])
        yield _family("edge_decisions_total", "counter", "Triage decisions answered.", [({}, decisions)])
        yield _family("edge_degraded_total", "counter", "Degraded (rules-only) answers by reason.",
                      [({"reason": r}, n) for r, n in sorted(degraded.items())])
        for name, (help_text, read) in sorted(self.gauges.items()):
            try:
                value = read()
            except Exception:  # a gauge that cannot be read is left out, never a failed scrape
                continue
            yield _family(name, "gauge", help_text, [({}, value)])
        if scrape.model:
            # An info metric (value 1, identity in labels) so a fleet query can compare the sha256
            # every box serves. Bundle identity comes from its verified manifest, never a client.
            yield _family("edge_model_info", "gauge", "The model bundle being served (name, version, sha256).",
                          [({k: scrape.model.get(k, "") for k in ("name", "version", "sha256")}, 1)])
        if scrape.ready is not None:
            yield _family("edge_ready", "gauge", "1 when the service reports ready.", [({}, scrape.ready)])
        if scrape.audit_written is not None:
            yield _family("edge_audit_records_written_total", "counter", "Audit records written since start.",
                          [({}, scrape.audit_written)])
        if scrape.scheduler is not None:
            yield from _scheduler_families(scrape.scheduler)
        if scrape.snapshot is not None:
            yield from _snapshot_families(scrape.snapshot)
            yield from _power_families(scrape.snapshot)
        if scrape.energy is not None:
            yield from _energy_families(scrape.energy.totals())
        if scrape.decision is not None:
            yield from _decision_families(scrape.decision)
        counts = scrape.policy.transition_counts if scrape.policy is not None else None
        if counts:
            yield _family("edge_policy_transitions_total", "counter", "Policy state transitions.",
                          [(_transition_labels(key), n) for key, n in sorted(counts.items(), key=lambda kv: str(kv[0]))])


def _scheduler_families(scheduler: Scheduler) -> Iterator[Metric | None]:
    yield _family("edge_rejections_total", "counter", "Requests refused a model answer at admission, by reason.",
                  [({"reason": r}, n) for r, n in sorted(scheduler.rejections.items())])
    yield _family("edge_deadline_overruns_total", "counter",
                  "Admitted requests answered degraded at their deadline (slow or queued inference).",
                  [({}, scheduler.overruns)])
    yield _family("edge_queue_depth", "gauge", "Jobs waiting for an inference worker.", [({}, scheduler.depth)])
    yield _family("edge_queue_limit", "gauge", "Current queue limit (policy).", [({}, scheduler.max_queue)])
    yield _family("edge_service_time_estimate_seconds", "gauge", "Per-case service time used for admission.",
                  [({}, scheduler.times.estimate())])


def _decision_families(decision: PolicyDecision) -> Iterator[Metric | None]:
    for kind, state in (("thermal", decision.thermal_state), ("memory", decision.memory_state)):
        yield _family(f"edge_policy_{kind}_state", "gauge", f"Current {kind} policy state (1 = active).",
                      [({"state": state}, 1)])
    yield _family("edge_policy_threads", "gauge", "Inference threads set by the policy.", [({}, decision.intra_op_threads)])
    yield _family("edge_policy_max_tokens", "gauge", "Token limit set by the policy.", [({}, decision.max_tokens)])
    yield _family("edge_policy_rules_only", "gauge", "1 while only the safety rules answer.", [({}, decision.rules_only)])


def _snapshot_families(snap: HealthSnapshot) -> Iterator[Metric | None]:
    yield _family("edge_temperature_celsius", "gauge", "Temperature by sensor.",
                  [({"sensor": name}, value) for name, value in sorted(snap.temperatures_c.items())])
    yield _family("edge_temperature_max_celsius", "gauge", "Hottest sensor.", [({}, snap.max_temp_c)])
    yield _family("edge_throttle_flag", "gauge", "Board throttle / under-voltage bits (Raspberry Pi).",
                  [({"flag": name}, bool(value)) for name, value in sorted(snap.throttle.items())])
    yield _family("edge_cpu_frequency_ratio", "gauge", "Current CPU frequency over its maximum.", [({}, snap.cpu_freq_ratio)])
    for value, name, help_text in (
        (snap.mem_available_mb, "edge_memory_available_bytes", "System memory available."),
        (snap.mem_total_mb, "edge_memory_total_bytes", "System memory total."),
        (snap.rss_mb, "edge_process_rss_bytes", "Service resident set size."),
        (snap.cgroup_current_mb, "edge_cgroup_memory_current_bytes", "cgroup v2 memory.current."),
        (snap.cgroup_max_mb, "edge_cgroup_memory_max_bytes", "cgroup v2 memory.max (absent: unlimited)."),
    ):
        yield _family(name, "gauge", help_text, [({}, None if value is None else int(value * MB))])
    # The kernel's cumulative memory.events counts, as read. A gauge keeps the name the fleet rules
    # use (a counter family would be renamed ..._total); increase() works on it all the same.
    yield _family("edge_cgroup_memory_events", "gauge", "cgroup v2 memory.events counters (cumulative, as the kernel reports).",
                  [({"event": k}, v) for k, v in sorted(snap.cgroup_events.items())])
    yield _family("edge_pressure_percent", "gauge", "Pressure stall information (resource.kind.window).",
                  [({"series": k}, v) for k, v in sorted(snap.psi.items())])
    yield _family("edge_sensor_errors", "gauge", "Sensors that could not be read at the last sample.",
                  [({}, len(snap.sensor_errors))])


def _power_families(snap: HealthSnapshot) -> Iterator[Metric | None]:
    source = snap.power_source or "none"
    yield _family("edge_board_power_sensor", "gauge", "Where board power is read from (ina3221, pmic, none); always 1.",
                  [({"source": source}, 1)])
    yield _family("edge_board_power_watts", "gauge", "Board power by rail, from the board's own sensor.",
                  [({"rail": name, "source": source}, watts) for name, watts in sorted(snap.power_rails_w.items())])
    yield _family("edge_board_power_total_watts", "gauge", "Board power in total (input rail or sum of rails); "
                  "absent without a sensor or with a broken one.", [({"source": source}, snap.power_w)])
    yield _family("edge_board_input_volts", "gauge", "Board input voltage where the sensor reports it.",
                  [({"source": source}, snap.power_input_v)])


def _energy_families(totals: EnergyTotals) -> Iterator[Metric | None]:
    yield _family("edge_energy_joules_total", "counter", "Board energy spent in model inference: board power × "
                  "inference time, summed (includes the board's idle draw for that time).",
                  [({"source": s}, j) for s, j in sorted(totals.joules.items())])
    yield _family("edge_energy_inferences_total", "counter", "Cases inferred, by the power source that metered them "
                  "(source none: not metered).", [({"source": s}, n) for s, n in sorted(totals.inferences.items())])
    yield _family("edge_energy_joules_per_triage", "gauge", "Mean board energy per metered triage inference since start.",
                  [({"source": s}, j) for s, j in sorted(totals.joules_per_triage().items())])


def _transition_labels(key: object) -> dict[str, object]:
    if isinstance(key, str) and ":" in key and "\u2192" in key:  # "thermal:normal→warm"
        kind, _, change = key.partition(":")
        old, _, new = change.partition("\u2192")
        return {"kind": kind, "from": old, "to": new}
    if isinstance(key, tuple) and len(key) == 3:
        return {"kind": key[0], "from": key[1], "to": key[2]}
    if isinstance(key, tuple) and len(key) == 2:
        return {"from": key[0], "to": key[1]}
    return {"transition": key}
