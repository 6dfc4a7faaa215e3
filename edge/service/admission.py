"""Admission's parts: recent per-case service times (the estimate admission predicts with), the
reservation a request holds from its arrival at the server layer until a thread submits it, and
the strict-mode refusal (503 + Retry-After). Used by :mod:`edge.service.scheduler`."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.service.scheduler import Scheduler

SAMPLE_WINDOW = 64
QUANTILE = 0.9


class Overloaded(EdgeError):
    """Strict mode: no model answer now (deadline, full queue, or the policy's rules-only mode)."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        codes = {"overload": "overloaded", "deadline": "deadline_unmeetable"}
        super().__init__(
            codes.get(reason, "degraded_mode"),
            "The service cannot answer within the deadline now; retry after the Retry-After interval "
            "or send without strict=1 to get the rules-only answer.",
            http_status=503, details={"reason": reason, "retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


class Reservation:
    """Work admitted at arrival (the server layer) but not yet submitted by a WSGI thread: it is
    counted in the queue from the moment the request reached the box, so admission sees the
    whole queue, not only what threads have got round to. It lapses at its deadline: a request
    whose client vanished before a thread served it cannot hold a slot for longer than that."""

    def __init__(self, scheduler: "Scheduler", cost_s: float, expires: float) -> None:
        self._scheduler = scheduler
        self.cost_s = cost_s
        self.expires = expires  # time.monotonic()

    def release(self) -> None:
        """Idempotent: by ``submit`` (the real job replaces it) or when the request ends anyway."""
        with self._scheduler._cond:
            self._scheduler._holds.discard(self)


class ServiceTimes:
    """Recent per-case service times; ``estimate`` is their 90th percentile. Admission reads it
    three times per request in the event loop; samples arrive once per model call: so the
    percentile is computed when a sample arrives, not on every read."""

    def __init__(self, initial_s: float = 0.0) -> None:
        self._samples: collections.deque[float] = collections.deque(maxlen=SAMPLE_WINDOW)
        self._estimate = initial_s
        self._lock = threading.Lock()

    def add(self, seconds_per_case: float) -> None:
        with self._lock:
            self._samples.append(seconds_per_case)
            ordered = sorted(self._samples)
            self._estimate = ordered[min(len(ordered) - 1, int(QUANTILE * len(ordered)))]

    def estimate(self) -> float:
        return self._estimate  # one float read: atomic under the GIL


