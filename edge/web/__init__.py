"""The appliance's web pages: the kiosk (``/``), the staff board (``/staff``) and the device
status (``/status``), as one Flask blueprint the service registers. Templates and static assets
live beside this file; nothing is fetched from elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.web.settings import WebSettings

if TYPE_CHECKING:
    from flask import Blueprint


def create_blueprint(settings: WebSettings | None = None) -> Blueprint:
    """``settings`` override the service's ``[web]`` table."""
    # Flask and the routes are imported here, not at the top: the configuration reads
    # edge.web.settings (and `edge-triage eval` reads the configuration without any web server),
    # and the routes read the service state, which reads the configuration.
    from flask import Blueprint

    from edge.web.routes import register_routes

    blueprint = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                          static_url_path="/ui/static")
    register_routes(blueprint, settings)
    return blueprint


__all__ = ["create_blueprint", "WebSettings"]
