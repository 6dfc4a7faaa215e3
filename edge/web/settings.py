"""Settings of the web pages: one dataclass, read from the service's ``[web]`` table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Mapping

from edge.errors import EdgeError


@dataclass
class WebSettings:
    kiosk_idle_s: float = 60.0  # the kiosk clears itself after this long without a touch
    result_idle_s: float = 30.0  # the kiosk's answer screen clears sooner: the next patient is waiting
    staff_refresh_s: float = 2.0  # how often the staff board polls its queue
    status_refresh_s: float = 5.0
    queue_size: int = 50  # recent cases kept in memory for the staff board
    queue_max_age_s: float = 12 * 3600.0
    history_points: int = 120  # temperature samples kept for the status chart
    history_interval_s: float = 5.0
    session_max_age_s: float = 12 * 3600.0  # a remote staff sign-in lasts one shift
    language: str = "en"
    secret_key: str | None = None  # signs the web session cookie; random per process when unset

    def validate(self) -> "WebSettings":
        for name in ("kiosk_idle_s", "result_idle_s", "staff_refresh_s", "status_refresh_s",
                     "queue_max_age_s", "history_interval_s", "session_max_age_s"):
            if getattr(self, name) <= 0:
                raise EdgeError("config_invalid", f"web setting '{name}' must be above 0.", field=name)
        for name in ("queue_size", "history_points"):
            if getattr(self, name) < 1:
                raise EdgeError("config_invalid", f"web setting '{name}' must be 1 or more.", field=name)
        return self


_NAMES = {f.name for f in fields(WebSettings)}


def settings_from(values: Mapping[str, Any] | WebSettings | None) -> WebSettings:
    if isinstance(values, WebSettings):
        return values.validate()
    values = dict(values or {})
    unknown = sorted(set(values) - _NAMES)
    if unknown:
        raise EdgeError("config_unknown_key",
                        f"Unknown web setting '{unknown[0]}'. Known: {', '.join(sorted(_NAMES))}.",
                        field=unknown[0])
    return dataclasses.replace(WebSettings(), **values).validate()
