"""Settings of the web pages: one dataclass, read from the service's ``[web]`` table and checked
there with the rest of the configuration (edge.service.config_tables)."""

from __future__ import annotations

from dataclasses import dataclass


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
