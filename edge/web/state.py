"""Per-app state of the web pages: settings, session signer, queue, histories and the string table.
Created once per app, kept in ``app.extensions["edge_web"]`` and attached to the service: the
queue and the decision counts listen to the service's results, the charts to its sampling thread,
and staff sign-in checks the service's own token (edge.service.access)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from flask import Flask

from edge.service.state import ServiceState
from edge.web.history import DecisionStats, PowerHistory, TemperatureHistory
from edge.web.queue import CaseQueue
from edge.web.security import SessionSigner
from edge.service.config_tables import web_settings
from edge.web.settings import WebSettings
from edge.web.strings import table

EXTENSION = "edge_web"
_LOCK = threading.Lock()


@dataclass
class WebState:
    settings: WebSettings
    signer: SessionSigner
    queue: CaseQueue
    history: TemperatureHistory
    stats: DecisionStats
    strings: dict[str, str]
    service: ServiceState
    power_history: PowerHistory = field(default_factory=PowerHistory)

    def token_ok(self, presented: str | None) -> bool:
        """No token configured means no remote staff access at all."""
        return self.service.access.token_ok(presented)


def _attach(state: WebState, service: ServiceState) -> None:
    for listener in (state.queue.listener, state.stats.listener):
        if listener not in service.result_listeners:
            service.result_listeners.append(listener)
    if service.monitor is not None:  # the charts follow the service's one sampling thread
        for history in (state.history, state.power_history):
            service.monitor.add_listener(history.on_sample)
            history.follows_monitor = True


def web_state(app: Flask, explicit: WebSettings | None = None) -> WebState:
    """The app's web state, created on first use (after the service state is in the app)."""
    with _LOCK:
        state: WebState | None = app.extensions.get(EXTENSION)
        if state is None:
            service: ServiceState = app.extensions["edge"]
            settings = web_settings(dataclasses.asdict(explicit) if explicit is not None else service.config.web)
            state = WebState(
                settings=settings,
                signer=SessionSigner(settings.secret_key, settings.session_max_age_s),
                queue=CaseQueue(settings.queue_size, settings.queue_max_age_s),
                history=TemperatureHistory(settings.history_points, settings.history_interval_s),
                stats=DecisionStats(),
                strings=table(settings.language),
                service=service,
                power_history=PowerHistory(settings.history_points, settings.history_interval_s),
            )
            _attach(state, service)
            app.extensions[EXTENSION] = state
        return state
