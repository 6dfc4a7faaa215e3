"""The running service's parts in one typed object (``app.extensions["edge"]``): model runtime,
scheduler, audit log, board monitor, adaptive policy, telemetry, access policy and result
listeners. One loop drives the board: the monitor's sampling thread reads the sensors, updates the
policy, and (through ``_on_sample``) hands the decision to the scheduler and the runtime.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from edge.service.audit import AuditLog
from edge.clinical.case import TriageCase
from edge.service.config import ConfigError, ServiceConfig
from edge.board.energy import EnergyMeter, power_from
from edge.board.policy import Policy, PolicyDecision
from edge.board.sampler import HealthSnapshot, Monitor
from edge.inference.runtime import ModelRuntime
from edge.service.scheduler import Scheduler
from edge.service.access import AccessPolicy
from edge.service.telemetry import Telemetry
from edge.inference.triager import TriageResult, Triager

log = logging.getLogger(__name__)

ResultListener = Callable[[TriageCase, TriageResult, str], None]


@dataclass
class ServiceState:
    config: ServiceConfig
    runtime: ModelRuntime
    scheduler: Scheduler
    audit: AuditLog | None
    telemetry: Telemetry
    access: AccessPolicy
    monitor: Monitor | None = None
    policy: Policy | None = None
    energy: EnergyMeter | None = None  # board energy per inference (edge_energy_* metrics)
    result_listeners: list[ResultListener] = field(default_factory=list)
    decision: PolicyDecision | None = None  # the board policy's latest decision
    snapshot: HealthSnapshot | None = None  # the latest board health snapshot
    started_at: float = field(default_factory=time.time)
    _apply_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def triager(self) -> Triager:
        return self.runtime.triager

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready to give model answers: warmed model, healthy workers, policy not holding us back."""
        problems = []
        if self.runtime.triager.model is None:
            problems.append("no model loaded")
        elif not self.runtime.warmed:
            problems.append("model not warmed up")
        if not self.scheduler.healthy(self.stuck_after_s):
            problems.append("inference worker not running or stuck")
        if self.decision is not None and not self.decision.ready:
            problems.append(f"policy: {self.decision.degraded_reason or 'not ready'}")
        return (not problems, problems)

    @property
    def stuck_after_s(self) -> float:
        return max(self.config.worker_stuck_s, 2.0 * self.config.deadline_max_ms / 1000.0)

    def healthy(self) -> bool:
        """For the systemd watchdog: the service's own workers are alive and not stuck."""
        monitor_alive = self.monitor is None or self.policy is None or self.monitor.running
        return self.scheduler.healthy(self.stuck_after_s) and monitor_alive

    def notify_listeners(self, case: TriageCase, result: TriageResult, source: str) -> None:
        for listener in list(self.result_listeners):
            try:
                listener(case, result, source)
            except Exception as error:  # a broken listener must not cost the caller its answer
                log.error("result listener failed: %s", type(error).__name__)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ServiceState":
        self.scheduler.start()
        if self.monitor is not None:
            if self.policy is not None:
                self.monitor.add_listener(self._on_sample)
            self.monitor.start()  # takes the first sample (and so applies the policy) before returning
        return self

    def stop(self) -> None:
        if self.monitor is not None:
            try:
                self.monitor.stop()
            except Exception as error:
                log.warning("monitor stop failed: %s", type(error).__name__)
        self.scheduler.stop()
        if self.audit is not None:
            self.audit.close()

    def _on_sample(self, snapshot: HealthSnapshot) -> None:
        """On the monitor's thread, after it has fed the policy: apply the decision to the parts."""
        assert self.monitor is not None and self.policy is not None
        if self.monitor.policy is self.policy:
            decision = self.monitor.decision()
        else:  # a monitor built without our policy (tests): feed it here, on the same thread
            decision = self.policy.update(snapshot, time.monotonic())
        if decision is None:
            return
        with self._apply_lock:
            self.snapshot, self.decision = snapshot, decision
            self.scheduler.apply_policy(decision)
            if decision.intra_op_threads:
                self.runtime.set_threads(max(1, min(decision.intra_op_threads, self.config.threads)))


def default_monitor_and_policy(config: ServiceConfig) -> tuple[Monitor, Policy]:
    """The board monitor (one sampling thread) feeding the adaptive policy, from the config."""

    policy = Policy(config.policy_config())
    return Monitor(config.monitor_config(), policy=policy), policy


def _measure_service_time(triager: Triager) -> tuple[float, float]:
    """Seeds for admission control before real samples arrive: one case alone (a request), and
    the per-case cost inside a batch of 8 (an explanation's occlusion variant rides in one batch;
    priced as a whole request each, a long explanation looked unaffordable at start, was always
    answered degraded, and so never taught the scheduler its real price)."""
    if triager.model is None:
        return 0.0, 0.0
    case = TriageCase(complaint="chest pain radiating to the left arm", age=60, hr=100)
    began = time.perf_counter()
    triager.model.probabilities([case])
    alone = time.perf_counter() - began
    began = time.perf_counter()
    triager.model.probabilities([case] * 8)
    return alone, (time.perf_counter() - began) / 8


def build_state(config: ServiceConfig, *, triager: Triager | None = None, runtime: ModelRuntime | None = None,
                audit: AuditLog | None | Literal[False] = None,
                monitor: Monitor | None | Literal[False] = None, policy: Policy | None = None,
                access: AccessPolicy | None = None) -> ServiceState:
    """Assemble the parts. ``audit=False`` disables the audit log and ``monitor=False`` the board
    monitor and policy (tests of other parts only)."""
    if monitor is None:
        monitor, policy = default_monitor_and_policy(config)
    elif monitor is False:
        monitor, policy = None, None
    if runtime is None:
        if triager is not None:
            runtime = ModelRuntime(triager, options=config.runtime_options())
        else:
            runtime = ModelRuntime.load(config.model_dir, config.runtime_options(), config.scale)
    if audit is None:
        try:
            audit = AuditLog.open(config.audit_db, config.audit_key_file, retention_days=config.audit_retention_days,
                                  synchronous=config.audit_synchronous)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError("audit_unavailable", f"Cannot open the audit log {config.audit_db} or its key file "
                              f"{config.audit_key_file}: {error}. Check the path and that this user may write there.",
                              field="audit_db") from None
    alone_s, in_batch_s = _measure_service_time(runtime.triager)
    scheduler = Scheduler(lambda: runtime.triager, workers=config.workers, queue_size=config.queue_size,
                          initial_service_s=alone_s, initial_variant_s=in_batch_s,
                          batch_cases=config.dynamic_batch_cases, batch_wait_s=config.dynamic_batch_wait_ms / 1000.0)
    energy = EnergyMeter(lambda: power_from(monitor))
    scheduler.inference_listeners.append(energy.on_inference)
    return ServiceState(
        config=config, runtime=runtime, scheduler=scheduler, audit=audit or None, telemetry=Telemetry(),
        access=access or AccessPolicy.from_config(config.token_file, config.host), monitor=monitor, policy=policy,
        energy=energy,
    )
