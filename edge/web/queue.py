"""The staff board's queue: recent decisions held in memory (never on disk, never logged), fed
by the service's ``result_listeners`` and ordered the way a triage nurse works a waiting room —
most urgent first, then longest waiting."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.clinical.case import TriageCase


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return dict(getattr(value, "__dict__", {}))


def needs_staff_now(result: dict[str, Any]) -> bool:
    """The kiosk's "tell the staff now": level 1-2, any safety rule (every rule is a red flag),
    or a degraded answer (which always means clinician review now)."""
    level = result.get("level")
    return (isinstance(level, int) and level <= 2) or bool(result.get("rules_fired")) or bool(result.get("degraded"))


@dataclass
class QueueEntry:
    request_id: str
    received: float  # time.time() when the decision was made
    source: str
    case: dict[str, Any]
    result: dict[str, Any]
    alert: bool
    final_level: int | None = None
    ack_reason: str | None = None
    acked_at: float | None = field(default=None)

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "level": self.result.get("level"),
            "final_level": self.final_level,
            "complaint": self.case.get("complaint", ""),
            "age": self.case.get("age"),
            "sex": self.case.get("sex"),
            "source": self.source,
            "waiting_s": round(now - self.received, 1),
            "received": self.received,
            "alert": self.alert,
            "acknowledged": self.final_level is not None,
            "review_required": bool(self.result.get("review_required")),
            "degraded": self.result.get("degraded"),
        }

    def detail(self, now: float) -> dict[str, Any]:
        return {**self.summary(now), "case": self.case, "result": self.result, "ack_reason": self.ack_reason}


class CaseQueue:
    def __init__(self, size: int = 50, max_age_s: float = 12 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self.clock = clock
        self._entries: "OrderedDict[str, QueueEntry]" = OrderedDict()
        self._lock = threading.Lock()
        self.version = 0  # bumps on every change; the page shows an alert when it sees a new one

    def listener(self, case: Any, result: Any, source: str) -> None:
        """A ``result_listeners`` callable: record one decision."""
        result_dict = _as_dict(result)
        case_dict = case.to_dict() if isinstance(case, TriageCase) else _as_dict(case)
        request_id = str(result_dict.get("request_id") or "")
        if not request_id:
            return
        entry = QueueEntry(request_id, self.clock(), str(source or "api"), case_dict, result_dict,
                           needs_staff_now(result_dict))
        with self._lock:
            self._entries[request_id] = entry
            self._entries.move_to_end(request_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            self.version += 1

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if now - e.received > self.max_age_s]:
            del self._entries[key]

    def acknowledge(self, request_id: str, final_level: int, reason: str | None) -> bool:
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None:
                return False
            entry.final_level, entry.ack_reason, entry.acked_at = final_level, reason, self.clock()
            self.version += 1
            return True

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(request_id)
            return entry.detail(self.clock()) if entry else None

    def snapshot(self) -> dict[str, Any]:
        """Open cases first (most urgent level, then longest waiting), acknowledged ones after."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            entries = list(self._entries.values())
            version = self.version

        def order(e: QueueEntry) -> tuple:
            level = e.final_level or e.result.get("level") or 2
            return (e.final_level is not None, level, e.received)

        ordered = sorted(entries, key=order)
        alerts = [e.request_id for e in ordered if e.alert and e.final_level is None]
        return {"version": version, "now": now, "alerts": alerts,
                "cases": [e.summary(now) for e in ordered]}
