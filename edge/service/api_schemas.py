"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the JSON API's bodies, derived from the code
that enforces them: the case from ``edge.clinical.case`` (fields, bounds, vocabularies), the result from
``edge.inference.triager.TriageResult``. Derived, not hand-copied, so a new field or bound shows up here
without anyone remembering to edit a document (tests/test_openapi.py checks it stays that way).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edge.service.audit import MAX_REASON_CHARS
from edge.clinical.case import ARRIVALS, CASE_FIELDS, MAX_COMPLAINT_CHARS, MENTAL_STATES, NUMERIC_BOUNDS, SEXES
from edge.inference.triager import TriageResult

Schema = dict[str, Any]

# The triage scales a result can be expressed in. A request may ask for one; a scale the loaded
# bundle does not carry is a 400 naming the field ``scale``.
SCALES = ("ktas", "esi")
CHOICES: dict[str, tuple[str, ...]] = {"sex": SEXES, "arrival": ARRIVALS, "mental": MENTAL_STATES}
BOOLEANS = ("injury",)
# Keys of TriageResult.to_dict that are present in every answer (``explanation`` only with ?explain=1).
ALWAYS_IN_RESULT = tuple(f.name for f in dataclasses.fields(TriageResult)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


def _field(name: str) -> Schema:
    """One case field; ``null`` means "not recorded", the same as leaving it out."""
    if name == "complaint":
        return {"type": "string", "minLength": 1, "maxLength": MAX_COMPLAINT_CHARS,
                "description": "The chief complaint in the patient's or nurse's words (English)."}
    if name in NUMERIC_BOUNDS:
        low, high, unit = NUMERIC_BOUNDS[name]
        return {"type": ["number", "null"], "minimum": low, "maximum": high, "description": unit}
    if name in CHOICES:
        return {"enum": [*CHOICES[name], None]}
    if name in BOOLEANS:
        return {"type": ["boolean", "null"]}
    if name == "scale":
        return {"enum": [*SCALES, None]}
    # A field edge.clinical.case accepts but this module cannot describe: say so rather than guess.
    return {"description": "undocumented"}


def case_schema() -> Schema:
    names = list(dict.fromkeys([*CASE_FIELDS, "scale"]))
    return {
        "type": "object",
        "description": "A triage case. Physiologically impossible values are refused (400 out_of_range).",
        "required": ["complaint"],
        "properties": {name: _field(name) for name in names},
        "additionalProperties": False,
    }


MODEL_IDENTITY: Schema = {
    "type": "object", "required": ["name", "version", "sha256"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                   "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
}


def result_schema() -> Schema:
    level = {"type": "integer", "minimum": 1, "maximum": 5}
    properties: Schema = {
        "level": {**level, "description": "The answer: 1 most urgent, 5 least, after the safety rules."},
        "model_level": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "probabilities": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0, "maximum": 1},
                          "minItems": 5, "maxItems": 5},
        "review_required": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "rules_fired": {"type": "array", "items": {
            "type": "object", "required": ["id", "level", "text"],
            "properties": {"id": {"type": "string"}, "level": level, "text": {"type": "string"}}}},
        "degraded": {"type": ["string", "null"], "description": "Why the model did not decide (rules-only answer)."},
        "latency_ms": {"type": "number", "minimum": 0},
        "model": {"oneOf": [MODEL_IDENTITY, {"type": "null"}]},
        "request_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "explanation": {"type": "array", "items": {"type": "object"}},
        "scale": {"enum": list(SCALES), "description": "The triage scale the level is expressed in."},
        "read_as": {"type": "array", "items": {"type": "object"}},
    }
    return {"type": "object", "required": list(ALWAYS_IN_RESULT), "properties": properties,
            # Results grow fields over time (scale, read_as…); clients must ignore what they do not know.
            "additionalProperties": True}


ERROR: Schema = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"], "additionalProperties": False,
        "properties": {"code": {"type": "string", "pattern": "^[a-z_]+$"}, "message": {"type": "string"},
                       "field": {"type": "string"}, "details": {"type": "object"}}}},
}

ACK_REQUEST: Schema = {
    "type": "object", "required": ["final_level"], "additionalProperties": False,
    "properties": {"final_level": {"type": "integer", "minimum": 1, "maximum": 5},
                   "reason": {"type": ["string", "null"], "maxLength": MAX_REASON_CHARS}},
}

ACKNOWLEDGEMENT: Schema = {
    "type": "object", "required": ["request_id", "action", "final_level", "result_level"],
    "properties": {"request_id": {"type": "string"}, "action": {"enum": ["acknowledge", "override"]},
                   "final_level": {"type": "integer", "minimum": 1, "maximum": 5},
                   "result_level": {"type": "integer", "minimum": 1, "maximum": 5}},
}

READINESS: Schema = {
    "type": "object", "required": ["ready", "problems"],
    "properties": {"ready": {"type": "boolean"}, "problems": {"type": "array", "items": {"type": "string"}}},
}


def components() -> Schema:
    return {"Case": case_schema(), "Result": result_schema(), "Error": ERROR, "AckRequest": ACK_REQUEST,
            "Acknowledgement": ACKNOWLEDGEMENT, "Readiness": READINESS, "ModelIdentity": MODEL_IDENTITY}
