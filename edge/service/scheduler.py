"""Latency-bounded scheduling: a bounded queue in front of the inference worker thread(s).

Every job carries a deadline. Admission control predicts when a new job would finish from the
recent per-case service times (a high percentile, not the mean: the promise is about p99) times
the work already queued or in service; a job that cannot make its deadline is answered at once
with the rules-only degraded answer (reason ``deadline``, or ``overload`` when the queue is full),
or refused with :class:`Overloaded` (503 + Retry-After) when the client asked for strict mode.
A caller waits for its job only until shortly before the deadline; an inference that overruns
is answered degraded then, and the worker's late result is dropped.

Dynamic batching: a worker that takes a job also takes the jobs queued behind it — up to
``batch_cases`` cases, waiting at most ``batch_wait_s`` for more while the first job's deadline
allows — and runs them as one model call, as an inference server's dynamic batcher does. Each
caller gets its own cases' results; the bundle's batch-invariance gate (``export.int8_gate``)
guarantees they are the same answers a batch of one would give. Explanations run on their own.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from edge.board.policy import PolicyDecision
from edge.service.admission import Overloaded, Reservation, ServiceTimes
from edge.clinical.case import TriageCase
from edge.inference.triager import TriageResult, Triager, explain_variants, new_request_id

__all__ = ["Overloaded", "Reservation", "Scheduler", "ServiceTimes"]

log = logging.getLogger(__name__)

STUCK_FACTOR = 4.0  # a worker busy this many deadlines (at least 10 s) is stuck


@dataclass
class _Job:
    cases: Sequence[TriageCase]
    request_ids: list[str]
    explain: bool
    variants: int  # extra model passes the explanation costs (edge.inference.triager.explain_variants)
    max_tokens: int | None
    deadline: float  # time.monotonic()
    cost_s: float
    done: threading.Event = field(default_factory=threading.Event)
    results: list[TriageResult] | None = None
    failed: bool = False
    abandoned: bool = False


class Scheduler:
    def __init__(self, triager_source: Callable[[], Triager], *, workers: int = 1, queue_size: int = 16,
                 initial_service_s: float = 0.0, batch_cases: int = 8, batch_wait_s: float = 0.001,
                 initial_variant_s: float | None = None) -> None:
        self._triager_source = triager_source
        self.queue_size = queue_size
        self.batch_cases = max(1, batch_cases)
        self.batch_wait_s = max(0.0, batch_wait_s)
        self.batch_sizes: collections.Counter[int] = collections.Counter()  # cases per model call
        self.max_queue = queue_size
        self.max_tokens: int | None = None
        self.rules_only_reason: str | None = None  # set by the policy: "thermal", "memory"
        self.times = ServiceTimes(initial_service_s)
        # Explanations are priced by their size: seconds per occlusion variant, learnt separately
        # (a variant rides in a batch, so it costs less than a request of its own).
        self.variant_times = ServiceTimes(initial_service_s if initial_variant_s is None else initial_variant_s)
        self.tail = ServiceTimes(0.0)  # result -> response (note_tail), for the deadline guard
        self.rejections: collections.Counter[str] = collections.Counter()
        self.overruns = 0
        self.completed = 0
        # Called with (inference seconds, cases) after each model run (energy metering).
        self.inference_listeners: list[Callable[[float, int], None]] = []
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_cost = 0.0
        self._holds: set[Reservation] = set()  # held by requests between arrival and submit
        self._cond = threading.Condition()
        self._running = False
        self._busy: dict[int, tuple[float, float]] = {}  # worker index -> (started, expected cost)
        self._beats: dict[int, float] = {}
        self._threads: list[threading.Thread] = []
        self._workers = workers

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Scheduler":
        with self._cond:
            if self._running:
                return self
            self._running = True
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"inference-{index}", daemon=True)
            self._beats[index] = time.monotonic()
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def apply_policy(self, decision: PolicyDecision) -> None:
        """Take max_tokens, max_queue and rules_only from the board policy's decision."""
        self.max_tokens = decision.max_tokens or None
        self.max_queue = max(0, min(self.queue_size, decision.max_queue))
        self.rules_only_reason = (decision.degraded_reason or "thermal") if decision.rules_only else None

    # -- health ----------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def in_service(self) -> int:
        return len(self._busy)

    def healthy(self, stuck_after_s: float = 10.0) -> bool:
        """Every worker is alive and none has been stuck on one job longer than ``stuck_after_s``."""
        if not self._running or not self._threads:
            return False
        now = time.monotonic()
        if not all(t.is_alive() for t in self._threads):
            return False
        return all(now - started < stuck_after_s for started, _ in list(self._busy.values()))

    # -- admission -------------------------------------------------------------------------
    @property
    def _reserved(self) -> int:
        return len(self._holds)

    @property
    def _reserved_cost(self) -> float:
        return sum(hold.cost_s for hold in self._holds)

    def _lapse(self, now: float) -> None:
        """Drop reservations past their deadline (caller holds ``_cond``); at most max_queue of them."""
        for hold in [h for h in self._holds if h.expires <= now]:
            self._holds.discard(hold)

    def _predicted_finish(self, now: float, cost: float) -> float:
        busy = sum(max(0.0, expected - (now - started)) for started, expected in list(self._busy.values()))
        return now + (self._queued_cost + self._reserved_cost + busy) / self._workers + cost

    def guard_s(self, deadline_s: float) -> float:
        """Room before the deadline to audit, encode and send an answer: 50 ms (10 % of short ones),
        or what that took recently on a busier box, up to 30 % of the deadline."""
        base = min(0.05, 0.1 * deadline_s)
        return min(max(base, self.tail.estimate()), 0.3 * deadline_s)

    def note_tail(self, seconds: float) -> None:
        """How long an answer took from its result to its response (audit, listeners, JSON)."""
        self.tail.add(max(0.0, seconds))

    def job_cost(self, cases: int, variants: int = 0) -> float:
        return self.times.estimate() * cases + self.variant_times.estimate() * variants

    def reserve(self, arrived: float, deadline_s: float, cases: int = 1, variants: int = 0) -> "Reservation | str":
        """Admission at arrival (called from the server's event loop, so it never blocks): a
        :class:`Reservation`, or the reason (``overload``, ``deadline``, ``thermal``…) the request
        must be answered at once without the model. ``arrived`` is ``time.perf_counter()``."""
        if self.rules_only_reason is not None:
            return self.rules_only_reason
        now = time.monotonic()
        cost = self.job_cost(cases, variants)
        deadline = now + deadline_s - (time.perf_counter() - arrived) - self.guard_s(deadline_s)
        with self._cond:
            self._lapse(now)
            if len(self._queue) + self._reserved >= self.max_queue:
                reason = "overload"
            elif self._predicted_finish(now, cost) > deadline:
                reason = "deadline"
            else:
                hold = Reservation(self, cost, deadline)
                self._holds.add(hold)
                return hold
            self.rejections[reason] += 1
        return reason

    def retry_after_s(self) -> float:
        with self._cond:
            return max(1.0, math.ceil(self._predicted_finish(time.monotonic(), 0.0) - time.monotonic()))

    def submit(self, cases: Sequence[TriageCase], *, deadline_s: float, strict: bool = False, explain: bool = False,
               request_ids: list[str] | None = None, started: float | None = None,
               shed: str | None = None, reservation: Reservation | None = None) -> list[TriageResult]:
        """Results for ``cases``, by the deadline: model answers when they make it, else degraded ones.

        ``started`` is when the request arrived (``time.perf_counter()``); ``shed`` is the reason
        the server layer already refused it at arrival (answered at once, counted there);
        ``reservation`` is what it admitted at arrival, replaced here by the real job."""
        started = time.perf_counter() if started is None else started
        if reservation is not None:
            reservation.release()
        if shed is not None:
            if strict:
                raise Overloaded(shed, 30.0 if shed not in ("overload", "deadline") else self.retry_after_s())
            return self._degraded(self._triager_source(), cases, request_ids or [new_request_id() for _ in cases],
                                  shed, started)
        now = time.monotonic()
        deadline = now + deadline_s - (time.perf_counter() - started)  # the clock began at request arrival
        ids = request_ids or [new_request_id() for _ in cases]
        triager = self._triager_source()
        if self.rules_only_reason is not None:  # the board is too hot or short of memory for the model
            if strict:
                with self._cond:
                    self.rejections[self.rules_only_reason] += 1
                raise Overloaded(self.rules_only_reason, 30.0)
            return self._degraded(triager, cases, ids, self.rules_only_reason, started)
        if triager.model is None:
            return self._finish(triager.triage_batch(cases, request_ids=ids), started)
        variants = sum(explain_variants(case) for case in cases) if explain else 0
        cost = self.job_cost(len(cases), variants)
        # Leave room to build and send the degraded answer if we have to give up waiting.
        job = _Job(cases, ids, explain, variants, self.max_tokens, deadline - self.guard_s(deadline_s), cost)
        with self._cond:
            reason = None
            self._lapse(now)
            if len(self._queue) + self._reserved >= self.max_queue:
                reason = "overload"
            elif self._predicted_finish(now, cost) > job.deadline:
                reason = "deadline"
            if reason is None:
                self._queue.append(job)
                self._queued_cost += cost
                self._cond.notify()
            else:
                self.rejections[reason] += 1
                retry_after = max(1.0, math.ceil(self._predicted_finish(now, 0.0) - now))
        if reason is not None:
            if strict:
                raise Overloaded(reason, retry_after)
            return self._degraded(triager, cases, ids, reason, started)
        if job.done.wait(max(0.0, job.deadline - time.monotonic())) and job.results is not None:
            return self._finish(job.results, started)
        with self._cond:
            if job.results is not None:  # finished in the instant after the wait timed out
                return self._finish(job.results, started)
            job.abandoned = True
            if job in self._queue:
                self._queue.remove(job)
                self._queued_cost = max(0.0, self._queued_cost - job.cost_s)
            if not job.failed:
                self.overruns += 1
        return self._degraded(triager, cases, ids, "model error" if job.failed else "deadline", started)

    def _degraded(self, triager: Triager, cases: Sequence[TriageCase], ids: list[str], reason: str,
                  started: float) -> list[TriageResult]:
        return self._finish([triager.degraded(c, reason, started, rid) for c, rid in zip(cases, ids)], started)

    @staticmethod
    def _finish(results: list[TriageResult], started: float) -> list[TriageResult]:
        elapsed = (time.perf_counter() - started) * 1000.0
        for result in results:
            result.latency_ms = elapsed  # end to end inside the service, not just the model run
        return results

    # -- workers ---------------------------------------------------------------------------
    def _take(self) -> _Job | None:
        """The next live job in the queue, or None (caller holds ``_cond``)."""
        while self._queue:
            job = self._queue.popleft()
            self._queued_cost = max(0.0, self._queued_cost - job.cost_s)
            if not job.abandoned and time.monotonic() < job.deadline:
                return job
            job.abandoned = True  # its caller has answered already
        return None

    def _batchable(self, first: _Job, job: _Job, cases: int) -> bool:
        return (not job.explain and job.max_tokens == first.max_tokens
                and cases + len(job.cases) <= self.batch_cases)

    def _next_batch(self, index: int) -> list[_Job] | None:
        """One job, plus the queued jobs that can ride in the same model call."""
        with self._cond:
            while self._running:
                self._beats[index] = time.monotonic()
                first = self._take()
                if first is None:
                    self._cond.wait(1.0)
                    continue
                batch, cases = [first], len(first.cases)
                if not first.explain:
                    # Wait briefly for company only while the whole batch still makes the first deadline.
                    wait_until = min(time.monotonic() + self.batch_wait_s,
                                     first.deadline - self.times.estimate() * self.batch_cases)
                    while cases < self.batch_cases:
                        if self._queue and self._batchable(first, self._queue[0], cases):
                            job = self._take()
                            if job is not None:
                                batch.append(job)
                                cases += len(job.cases)
                            continue
                        if self._queue or time.monotonic() >= wait_until:
                            break
                        self._cond.wait(max(0.0, wait_until - time.monotonic()))
                self._busy[index] = (time.monotonic(), sum(job.cost_s for job in batch))
                return batch
        return None

    def _run(self, batch: list[_Job]) -> list[TriageResult] | None:
        first = batch[0]
        cases = [case for job in batch for case in job.cases]
        ids = [rid for job in batch for rid in job.request_ids]
        try:
            return self._triager_source().triage_batch(cases, max_tokens=first.max_tokens, explain=first.explain,
                                                       request_ids=ids)
        except Exception as error:  # a failing model must cost one answer, never the worker
            log.error("inference failed: %s", type(error).__name__)
            return None

    def _work(self, index: int) -> None:
        while True:
            batch = self._next_batch(index)
            if batch is None:
                return
            began = time.perf_counter()
            results = self._run(batch)
            elapsed = time.perf_counter() - began
            n_cases = sum(len(job.cases) for job in batch)
            first = batch[0]
            if results is not None and not first.explain:
                self.times.add(elapsed / n_cases)
            elif results is not None and first.variants:  # what the answer itself cost is known: the rest is occlusion
                self.variant_times.add(max(0.0, elapsed - self.times.estimate() * n_cases) / first.variants)
            if results is not None:  # the energy was spent even if the caller has given up waiting
                for listener in list(self.inference_listeners):
                    try:
                        listener(elapsed, n_cases)
                    except Exception as error:  # metering must never cost the worker
                        log.error("inference listener failed: %s", type(error).__name__)
            with self._cond:
                self._busy.pop(index, None)
                self._beats[index] = time.monotonic()
                self.completed += len(batch)
                self.batch_sizes[n_cases] += 1
                offset = 0
                for job in batch:
                    if results is None:
                        job.failed = True
                    else:
                        job.results = results[offset:offset + len(job.cases)]
                    offset += len(job.cases)
            for job in batch:
                job.done.set()

    def snapshot(self) -> dict[str, Any]:
        return {"queue_depth": self.depth, "in_service": self.in_service, "max_queue": self.max_queue,
                "service_estimate_s": self.times.estimate(), "overruns": self.overruns,
                "rejections": dict(self.rejections), "rules_only": self.rules_only_reason,
                "batch_cases": {str(k): v for k, v in sorted(self.batch_sizes.items())}}
