"""The FHIR route in the service's OpenAPI document (edge/service/openapi.py). The FHIR resources are
described loosely (their resourceType and the elements this device always writes); their full
definitions are FHIR R4's, which the tests validate against with fhir.resources."""

from __future__ import annotations

from typing import Any

FHIR_JSON = "application/fhir+json"


def openapi_paths() -> dict[str, Any]:
    from edge.fhir import TRIAGE_PATH

    outcome = {"type": "object", "required": ["resourceType", "issue"], "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["severity", "code", "details"]}}}}
    assessment = {"type": "object", "required": ["resourceType", "status", "subject", "prediction", "occurrenceDateTime"],
                  "properties": {"resourceType": {"const": "RiskAssessment"},
                                 "prediction": {"type": "array", "minItems": 1}}}
    bundle = {"type": "object", "required": ["resourceType", "entry"],
              "properties": {"resourceType": {"const": "Bundle"}, "entry": {"type": "array", "minItems": 1, "items": {
                  "type": "object", "properties": {"fullUrl": {"type": "string"}, "resource": {
                      "type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}}}}}}}
    return {TRIAGE_PATH: {"post": {
        "operationId": "fhir_triage",
        "summary": "FHIR R4 operation $triage: a Bundle of triage facts in, a RiskAssessment out.",
        "security": [{}, {"bearer": []}],
        "parameters": [
            {"name": "deadline_ms", "in": "query", "required": False, "schema": {"type": "number"}},
            {"name": "strict", "in": "query", "required": False, "schema": {"enum": ["0", "1"]}},
            {"name": "explain", "in": "query", "required": False, "schema": {"enum": ["0", "1"]}},
            {"name": "scale", "in": "query", "required": False, "schema": {"enum": ["ktas", "esi"]}}],
        "requestBody": {"required": True, "content": {FHIR_JSON: {"schema": bundle}}},
        "responses": {"200": {"description": "The triage answer.", "content": {FHIR_JSON: {"schema": assessment}}},
                      "default": {"description": "Every error, with the JSON API's machine code.",
                                  "content": {FHIR_JSON: {"schema": outcome}}}}}}}
