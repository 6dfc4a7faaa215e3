"""Per-app state of the web pages: settings, session signer, queue, token check, history.
Created once per app and kept in ``app.extensions["edge_web"]``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from edge.errors import EdgeError

from edge.web.history import DecisionStats, PowerHistory, TemperatureHistory
from edge.web.queue import CaseQueue
from edge.web.security import FileToken, SessionSigner, TokenCheck
from edge.web.settings import WebSettings, settings_from
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
    token_check: TokenCheck
    power_history: PowerHistory = field(default_factory=PowerHistory)
    attached_to: Any = field(default=None)  # the service state whose listeners hold our queue


def _service_token_check(service: Any, settings: WebSettings) -> TokenCheck:
    """The service's own access policy (edge.service.access.AccessPolicy) when it has one — asked as a
    non-loopback client presenting the token — else a token file. No token configured means no
    remote staff access at all."""
    access = getattr(service, "access", None)
    if access is not None and callable(getattr(access, "check", None)):
        def check(presented: str | None) -> bool:
            if not presented:
                return False
            try:
                access.check(None, f"Bearer {presented}")
            except EdgeError:
                return False
            return True
        return check
    config = getattr(service, "config", None)
    return FileToken(getattr(config, "token_file", None) or settings.token_file)


def _follow_monitor(monitor: Any, history: TemperatureHistory) -> None:  # PowerHistory too
    """Feed the temperature chart from the monitor's own sampling thread (no second sampler).
    edge.board.sampler.Monitor takes callbacks only in its constructor, so we append to its
    callback list; without a monitor the status requests themselves record the history."""
    callbacks = getattr(monitor, "_on_sample", None)
    if isinstance(callbacks, list) and history.on_sample not in callbacks:
        callbacks.append(history.on_sample)
        history.follows_monitor = True


def _settings_for(app: Flask, explicit: WebSettings | None) -> WebSettings:
    if explicit is not None:
        return explicit.validate()
    service = app.extensions.get("edge")
    from_service = getattr(getattr(service, "config", None), "web", None)
    return settings_from(from_service if from_service else app.config.get("EDGE_WEB"))


def web_state(app: Flask, explicit: WebSettings | None = None) -> WebState:
    """The app's web state, attaching the queue to the service's result listeners as soon as
    the service state exists (it may be set after the blueprint is registered)."""
    with _LOCK:
        state: WebState | None = app.extensions.get(EXTENSION)
        if state is None:
            settings = _settings_for(app, explicit)
            state = WebState(
                settings=settings,
                signer=SessionSigner(settings.secret_key, settings.session_max_age_s),
                queue=CaseQueue(settings.queue_size, settings.queue_max_age_s),
                history=TemperatureHistory(settings.history_points, settings.history_interval_s),
                stats=DecisionStats(),
                strings=table(settings.language),
                token_check=FileToken(settings.token_file),
                power_history=PowerHistory(settings.history_points, settings.history_interval_s),
            )
            app.extensions[EXTENSION] = state
        service = app.extensions.get("edge")
        if service is not None and state.attached_to is not service:
            listeners = getattr(service, "result_listeners", None)
            for listener in (state.queue.listener, state.stats.listener):
                if listeners is not None and listener not in listeners:
                    listeners.append(listener)
            _follow_monitor(getattr(service, "monitor", None), state.history)
            _follow_monitor(getattr(service, "monitor", None), state.power_history)
            state.token_check = _service_token_check(service, state.settings)
            state.attached_to = service
        return state
