"""The OpenAPI 3.1 description of the service's JSON routes, served at ``/openapi.json``.

Built at request time from the running service's config (deadline and batch limits) and the
schemas ``edge.service.api_schemas`` derives from the code. The web pages' blueprint (kiosk, staff board,
status page) is not part of this contract: those routes are the pages' own same-origin feeds,
bound to a browser session and its CSRF token, not an integration API.
"""

from __future__ import annotations

from typing import Any

from edge import __version__
from edge.service.api_schemas import Schema, components
from edge.service.config import ServiceConfig

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ADMIN = [{"bearer": []}]
# Loopback clients need no token; every other client sends the bearer token.
OPEN = [{}, {"bearer": []}]


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _responses(ok: Schema, *, extra: dict[str, Schema] | None = None) -> Schema:
    return {"200": ok, **(extra or {}), "default": _json(ERROR_REF, "An error with a stable machine code.")}


def _flag(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"enum": ["0", "1", "true", "false", "yes", "no"]}}


def _decision_params(config: ServiceConfig) -> list[Schema]:
    return [
        {"name": "deadline_ms", "in": "query", "required": False,
         "description": "Answer within this many milliseconds; a late model answer is replaced by the degraded one.",
         "schema": {"type": "number", "minimum": config.deadline_min_ms, "maximum": config.deadline_max_ms}},
        _flag("strict", "1: refuse (503 degraded_mode) instead of answering degraded."),
        _flag("explain", "1: add the words and fields that drove the answer."),
    ]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def paths(config: ServiceConfig) -> Schema:
    decision = _decision_params(config)
    body = {"required": True, "content": {JSON: {"schema": _ref("Case")}}}
    return {
        "/v1/triage": {"post": {
            "operationId": "triage", "summary": "Triage one case.", "security": OPEN, "parameters": decision,
            "requestBody": body, "responses": _responses(_json(_ref("Result"), "The triage result."))}},
        "/v1/triage/batch": {"post": {
            "operationId": "triage_batch", "summary": "Triage several cases in one call.", "security": OPEN,
            "parameters": decision,
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["cases"],
                "properties": {"cases": {"type": "array", "items": _ref("Case"), "minItems": 1,
                                         "maxItems": config.batch_max}}}}}},
            "responses": _responses(_json({"type": "object", "required": ["results"], "properties": {
                "results": {"type": "array", "items": _ref("Result")}}}, "One result per case, in order."))}},
        "/v1/audit/{request_id}/ack": {"post": {
            "operationId": "acknowledge", "summary": "A nurse confirms or overrides a result.", "security": OPEN,
            "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("AckRequest")}}},
            "responses": _responses(_json(_ref("Acknowledgement"), "The acknowledgement as recorded."))}},
        "/v1/audit/export.csv": {"get": {
            "operationId": "audit_export", "summary": "The audit log as CSV (admin).", "security": ADMIN,
            "parameters": [{"name": "since", "in": "query", "required": False, "schema": {"type": "number"},
                            "description": "Unix time in seconds."}],
            "responses": _responses({"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}})}},
        "/v1/admin/reload": {"post": {
            "operationId": "reload_bundle", "summary": "Load, verify and warm a bundle, then swap it in (admin).",
            "security": ADMIN,
            "requestBody": {"required": False, "content": {JSON: {"schema": {
                "type": "object", "properties": {"model_dir": {"type": "string"}}}}}},
            "responses": _responses(_json({"type": "object", "required": ["reloaded", "model"], "properties": {
                "reloaded": {"const": True}, "model": _ref("ModelIdentity")}}, "The bundle now serving."))}},
        "/livez": {"get": {"operationId": "livez", "summary": "The process answers.", "security": [{}],
                           "responses": _responses(_json({"type": "object", "required": ["alive"]}, "Alive."))}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Ready to give model answers.", "security": [{}],
                            "responses": _responses(_json(_ref("Readiness"), "Ready."),
                                                    extra={"503": _json(_ref("Readiness"), "Not ready, and why.")})}},
        "/info": {"get": {"operationId": "info", "summary": "Model card, intended use, limits, versions.",
                          "security": OPEN, "responses": _responses(_json({
                              "type": "object", "required": ["service", "model", "intended_use", "limits"]},
                              "About this device."))}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text exposition.", "security": OPEN,
                             "responses": _responses({"description": "Metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}})}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document.", "security": OPEN,
                                  "responses": _responses(_json({"type": "object", "required": ["openapi"]},
                                                                "OpenAPI 3.1."))}},
    }


def extra_paths() -> dict[str, Any]:
    """Routes described by the modules that own them (FHIR), when those modules are present."""
    try:
        from edge.fhir.contract import openapi_paths
    except ImportError:
        return {}
    return openapi_paths()


def document(config: ServiceConfig) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Edge triage appliance", "version": __version__,
                 "description": "Offline emergency-department triage decision support. Errors are "
                                "{\"error\": {\"code\", \"message\", \"field\"?}} with stable machine codes; "
                                "no response echoes patient data."},
        "paths": {**paths(config), **extra_paths()},
        "components": {
            "schemas": components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "The token in the service's token_file."}},
        },
    }
