"""FHIR R4 in and out: ``POST /fhir/RiskAssessment/$triage``.

Why this route: FHIR's convention for an operation that is not plain CRUD is
``[base]/[ResourceType]/$[operation]``, here on RiskAssessment because that is what it produces.
The operation has one resource input (the Bundle of triage facts) and one resource output (the
RiskAssessment), so by the FHIR operations rules both travel bare, without a ``Parameters``
wrapper. The body is a ``Bundle`` (any type: collection, transaction…) as an EHR sends it.

The answer comes from the very path the JSON API uses (``edge.service.answering``, read by ``edge.service.http_request``): the same scheduler,
deadline (``?deadline_ms=``), ``?strict=1``/``?explain=1``, audit record, telemetry and listeners.
Every error is an ``OperationOutcome`` with the JSON API's machine code and HTTP status.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from edge.clinical.case import parse_case
from edge.errors import CaseError, EdgeError
from edge.fhir.inbound import read_bundle
from edge.fhir.outbound import operation_outcome, risk_assessment
from edge.service import http_request
from edge.service.answering import source_tag
from edge.service.http_request import json_body
from edge.service.state import ServiceState

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
TRIAGE_PATH = "/fhir/RiskAssessment/$triage"


def _fhir(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON)


def create_blueprint() -> Blueprint:
    bp = Blueprint("fhir", __name__)

    @bp.post(TRIAGE_PATH)
    def triage() -> Response:
        service: ServiceState = current_app.extensions["edge"]
        inbound = read_bundle(json_body())
        if request.args.get("scale") is not None:
            inbound.case["scale"] = request.args["scale"]
            inbound.sources["scale"] = "scale"
        try:
            case = parse_case(inbound.case)
        except CaseError as error:
            # Point at the element that supplied the field (the message already names the field).
            error.field = inbound.sources.get(error.field or "", error.field)
            raise
        source = source_tag(request.headers.get("X-Edge-Source"))
        result = http_request.triage(service, [case], source=source).results[0].to_dict()
        return _fhir(risk_assessment(result, inbound))

    @bp.errorhandler(EdgeError)
    def _edge_error(error: EdgeError) -> Response:
        response = _fhir(operation_outcome(error), error.http_status)
        retry = getattr(error, "retry_after_s", None)
        if retry is not None:
            response.headers["Retry-After"] = str(int(retry))
        return response

    @bp.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        codes = {413: "body_too_large", 405: "method_not_allowed", 404: "not_found"}
        status = error.code or 500
        return _fhir(operation_outcome(EdgeError(codes.get(status, "bad_request"), error.name, http_status=status)),
                     status)

    @bp.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.error("unexpected %s handling a FHIR request", type(error).__name__)  # type only: no PHI
        return _fhir(operation_outcome(EdgeError("internal_error", "Internal error; the event was logged.",
                                                 http_status=500)), 500)

    return bp
