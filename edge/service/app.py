"""The HTTP API: a Flask app factory. Served by waitress (``edge.service.server``), never ``app.run``.

    POST /v1/triage                 case -> result (?deadline_ms=, ?strict=1, ?explain=1)
    POST /v1/triage/batch           {"cases": [...]} -> {"results": [...]} (at most batch_max)
    POST /v1/audit/<id>/ack         {"final_level": 1-5, "reason": text} acknowledge / override
    GET  /v1/audit/export.csv       admin (token): the audit log as CSV (?since=unix seconds)
    POST /v1/admin/reload           admin (token): {"model_dir": path} load, verify, warm, swap
    POST /fhir/RiskAssessment/$triage  FHIR R4 Bundle -> RiskAssessment (edge/fhir; same triage path)
    GET  /livez /readyz /info /metrics /openapi.json (OpenAPI 3.1 of these routes, edge/service/openapi.py)

Every error is JSON ``{"error": {"code", "message", "field"?}}`` with a stable machine code. No
handler logs or echoes request content: patient data stays in the request and the answer.

On the server, ``POST /v1/triage`` is answered by ``edge.service.fast_triage`` (the same checks and
answer without Flask's per-request machinery) once Flask has served one request; the route here
answers it before that and under Flask's test client.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from edge import __version__ as edge_version
from edge.clinical.case import TriageCase, parse_case
from edge.service.config import ServiceConfig
from edge.errors import BundleError, CaseError, EdgeError
from edge.service.openapi import document as openapi_document
from edge.service import answering, http_request
from edge.service.http_request import json_body
from edge.service.scheduler import Overloaded
from edge.service.telemetry import Scrape
from edge.service.state import ServiceState, build_state

log = logging.getLogger(__name__)

UNPROTECTED = ("/livez", "/readyz")  # probes for the local supervisor
ADMIN_PREFIXES = ("/v1/admin/", "/v1/audit/export")
DECISION_ENDPOINTS = {"triage", "triage_batch", "fhir.triage", "web.kiosk_submit", "web.staff_triage"}
INTENDED_USE = ("Decision support for emergency-department triage: suggests a KTAS-style acuity level (1-5) "
                "from the chief complaint and triage-time facts for a triage nurse to confirm or override.")
LIMITATIONS = (
    "Not a diagnosis and not a substitute for the triage nurse's judgement.",
    "Trained on a small single-country dataset (KTAS, Korea); calibration may differ elsewhere.",
    "Safety rules only raise acuity; degraded answers (deadline, thermal, memory, no model) say so and ask for "
    "clinician review now.",
    "English chief complaints only; very short or vague complaints give uncertain answers.",
)


def _decide(svc: ServiceState, cases: list[TriageCase]) -> list[dict[str, Any]]:
    source = answering.source_tag(request.headers.get("X-Edge-Source"))
    return http_request.triage(svc, cases, source=source).to_dicts()


def _error_response(error: EdgeError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.http_status
    if isinstance(error, Overloaded):
        response.headers["Retry-After"] = str(int(error.retry_after_s))
    return response


def create_app(config: ServiceConfig | None = None, *, state: ServiceState | None = None, start: bool = True,
               **parts: Any) -> Flask:
    """``parts`` go to :func:`edge.service.state.build_state` (triager, runtime, audit, monitor, policy, access)."""
    config = config or ServiceConfig()
    svc = state or build_state(config, **parts)
    app = Flask("edge")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.extensions["edge"] = svc

    @app.before_request
    def _admit() -> None:
        # From arrival at the server layer (edge.service.arrival), time queued for a thread included.
        g.started = request.environ.get("edge.arrived") or time.perf_counter()
        svc.telemetry.begin()
        if request.path in UNPROTECTED:
            return
        if request.blueprint == "web":
            # The web pages (edge.web) check access themselves: loopback, the bearer token, or a
            # browser session signed in with the token (a browser cannot send a bearer header).
            return
        admin = request.path.startswith(ADMIN_PREFIXES)
        svc.access.check(request.remote_addr, request.headers.get("Authorization"), admin=admin)

    @app.after_request
    def _finish(response: Response) -> Response:
        reservation = request.environ.get("edge.reservation")
        if reservation is not None:  # refused before the scheduler (bad input): free its queue slot now
            reservation.release()
        if "started" in g:
            endpoint = request.endpoint or "unmatched"
            timed = endpoint in DECISION_ENDPOINTS
            svc.telemetry.end(endpoint, response.status_code, time.perf_counter() - g.started if timed else None)
            if "answered_s" in g:  # what audit, listeners and encoding added after the result
                svc.scheduler.note_tail(time.perf_counter() - g.started - g.answered_s)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(EdgeError)
    def _edge_error(error: EdgeError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}
        messages = {413: http_request.body_too_large_message(config.max_body_bytes),
                    405: "This method is not allowed on this path.", 404: "No such endpoint."}
        code = codes.get(error.code or 500, "http_error")
        response = jsonify({"error": {"code": code, "message": messages.get(error.code or 0, error.name)}})
        response.status_code = error.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.error("unexpected %s handling %s", type(error).__name__, request.endpoint)  # type only: no PHI
        return _error_response(EdgeError("internal_error", "Internal error; the event was logged.", http_status=500))

    @app.post("/v1/triage")
    def triage() -> Response:
        case = parse_case(json_body())
        return jsonify(_decide(svc, [case])[0])

    @app.post("/v1/triage/batch")
    def triage_batch() -> Response:
        body = json_body()
        cases_in = body.get("cases") if isinstance(body, dict) else None
        if not isinstance(cases_in, list) or not cases_in:
            raise CaseError("invalid_batch", "Send {\"cases\": [case, ...]} with at least one case.", field="cases")
        if len(cases_in) > config.batch_max:
            raise CaseError("batch_too_large", f"At most {config.batch_max} cases per batch.", field="cases")
        cases = []
        for index, item in enumerate(cases_in):
            try:
                cases.append(parse_case(item))
            except CaseError as error:
                error.details = {**error.details, "index": index}
                raise
        return jsonify({"results": _decide(svc, cases)})

    @app.post("/v1/audit/<request_id>/ack")
    def acknowledge(request_id: str) -> Response:
        if svc.audit is None:
            raise EdgeError("audit_disabled", "The audit log is not enabled on this service.", http_status=404)
        body = json_body()
        if not isinstance(body, dict) or "final_level" not in body:
            raise EdgeError("missing_field", "Send {\"final_level\": 1-5, \"reason\": text}.", field="final_level")
        unknown = set(body) - {"final_level", "reason"}
        if unknown:
            raise EdgeError("unknown_field", "Only 'final_level' and 'reason' are accepted.")  # never echo a client's key
        return jsonify(svc.audit.acknowledge(request_id[:64], body["final_level"], body.get("reason")))

    @app.get("/v1/audit/export.csv")
    def audit_export() -> Response:
        if svc.audit is None:
            raise EdgeError("audit_disabled", "The audit log is not enabled on this service.", http_status=404)
        try:
            since = float(request.args.get("since", "0"))
        except ValueError:
            raise EdgeError("invalid_parameter", "'since' must be a Unix time in seconds.", field="since") from None
        return Response(svc.audit.export_csv(since), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=edge-triage-audit.csv"})

    @app.post("/v1/admin/reload")
    def reload_bundle() -> Response:
        body = json_body() if request.content_length else {}
        path = body.get("model_dir") if isinstance(body, dict) else None
        if path is not None and not isinstance(path, str):
            raise EdgeError("invalid_parameter", "'model_dir' must be a path string.", field="model_dir")
        try:
            identity = svc.runtime.reload(path)
        except BundleError as error:
            error.http_status = 422  # the request was understood; the bundle is bad; the old one still serves
            error.details = {**error.details, "serving": svc.runtime.identity()}
            raise
        return jsonify({"reloaded": True, "model": identity})

    @app.get("/livez")
    def livez() -> Response:
        return jsonify({"alive": True})

    @app.get("/readyz")
    def readyz() -> Response:
        ready, problems = svc.readiness()
        response = jsonify({"ready": ready, "problems": problems})
        response.status_code = 200 if ready else 503
        return response

    @app.get("/info")
    def info() -> Response:
        return jsonify(_info(svc))

    @app.get("/metrics")
    def metrics() -> Response:
        text = svc.telemetry.render(Scrape(
            scheduler=svc.scheduler, snapshot=svc.snapshot, decision=svc.decision, policy=svc.policy,
            ready=svc.readiness()[0], energy=svc.energy, audit_written=svc.audit.written if svc.audit else None,
            model=svc.runtime.identity()))
        return Response(text, content_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document(config))

    from edge.fhir import create_blueprint as fhir_blueprint

    app.register_blueprint(fhir_blueprint())
    if importlib.util.find_spec("edge.web") is not None:
        from edge.web import create_blueprint

        app.register_blueprint(create_blueprint())
    if start:
        svc.start()
    return app


def _info(svc: ServiceState) -> dict[str, Any]:
    model = svc.runtime.triager.model
    manifest = model.bundle.manifest if model is not None else {}
    import onnxruntime
    import tokenizers

    return {
        "service": "edge-triage",
        "model": {
            **(model.bundle.identity() if model is not None else {}),
            **{k: manifest.get(k) for k in ("created", "base_model", "quantization", "target", "max_seq_len",
                                            "training_data", "evaluation") if k in manifest},
        } if model is not None else None,
        "intended_use": manifest.get("intended_use", INTENDED_USE),
        "limitations": list(manifest.get("limitations", LIMITATIONS)),
        "versions": {"edge": edge_version, "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                     "tokenizers": tokenizers.__version__, "flask": _version_of("flask")},
        "limits": {"deadline_ms": svc.config.deadline_ms, "deadline_min_ms": svc.config.deadline_min_ms,
                   "deadline_max_ms": svc.config.deadline_max_ms, "batch_max": svc.config.batch_max,
                   "max_body_bytes": svc.config.max_body_bytes},
        "uptime_s": round(time.time() - svc.started_at, 1),
    }


def _version_of(distribution: str) -> str:
    # importlib.metadata costs ~50 ms to import: only /info needs it, so it is not paid at start.
    import importlib.metadata

    return importlib.metadata.version(distribution)
