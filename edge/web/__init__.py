"""The appliance's web pages: the kiosk (``/``), the staff board (``/staff``) and the device
status (``/status``), as one Flask blueprint the service registers. Templates and static assets
live beside this file; nothing is fetched from elsewhere."""

from __future__ import annotations

from flask import Blueprint

from edge.web.settings import WebSettings


def create_blueprint(settings: WebSettings | None = None) -> Blueprint:
    """``settings`` override the service's ``[web]`` table."""
    # Imported here, not at the top: the configuration reads edge.web.settings, and the routes
    # read the service state, which reads the configuration.
    from edge.web.routes import register_routes

    blueprint = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                          static_url_path="/ui/static")
    register_routes(blueprint, settings)
    return blueprint


__all__ = ["create_blueprint", "WebSettings"]
