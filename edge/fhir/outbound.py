"""The JSON API's answers as FHIR R4 resources: a triage result -> ``RiskAssessment``, an error
-> ``OperationOutcome`` carrying the same machine code in ``details.coding``.

prediction[0] is the answer (the level after the safety rules, in ``qualitativeRisk``); the
others are the remaining levels with the model's calibrated probabilities. A degraded answer has
no probabilities: one prediction, the level, and a note saying why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from edge.errors import EdgeError
from edge.fhir.codes import (ERROR_SYSTEM, ISSUE_TYPES, MODEL_SYSTEM, REQUEST_ID_SYSTEM, SCALE_NAMES, SCALE_SYSTEMS,
                             VALUE_ISSUE)
from edge.fhir.inbound import Inbound


def _level(scale: str, level: int) -> dict[str, Any]:
    name = SCALE_NAMES.get(scale, scale.upper())
    return {"coding": [{"system": SCALE_SYSTEMS.get(scale, f"urn:edge-triage:scale:{scale}"), "code": str(level),
                        "display": f"{name} {level}"}], "text": f"{name} level {level}"}


def _method(model: dict[str, str] | None) -> dict[str, Any]:
    if not model:
        return {"text": "safety rules only: no model loaded"}
    label = f"{model['name']} {model['version']}"
    return {"coding": [{"system": MODEL_SYSTEM, "code": model["sha256"], "display": label}],
            "text": f"{label} (sha256 {model['sha256']})"}


def _notes(result: dict[str, Any]) -> list[dict[str, str]]:
    notes = [{"text": reason} for reason in result.get("reasons") or []]
    for rule in result.get("rules_fired") or []:
        notes.append({"text": f"Safety rule {rule.get('id')} (level {rule.get('level')} or more urgent): "
                              f"{rule.get('text')}"})
    if result.get("degraded"):
        notes.append({"text": f"Degraded answer ({result['degraded']}): the model did not decide this case."})
    shown = result.get("explanation")
    if shown:
        drivers = ", ".join(f"{item.get('kind')} '{item.get('name')}' ({item.get('urgency_effect'):+})" for item in shown)
        notes.append({"text": f"Basis shown (what moved the urgency): {drivers}"})
    if result.get("review_required"):
        notes.append({"text": "Review required by the triage nurse."})
    return notes


def risk_assessment(result: dict[str, Any], inbound: Inbound, now: dt.datetime | None = None) -> dict[str, Any]:
    scale = str(result.get("scale") or "ktas")  # results before the multi-scale model were all KTAS
    level = int(result["level"])
    answer: dict[str, Any] = {"outcome": _level(scale, level), "qualitativeRisk": _level(scale, level)}
    probabilities = result.get("probabilities")
    if probabilities:
        answer["probabilityDecimal"] = probabilities[level - 1]
    if result.get("reasons"):
        answer["rationale"] = "; ".join(result["reasons"])
    predictions = [answer] + [{"outcome": _level(scale, other), "probabilityDecimal": probabilities[other - 1]}
                              for other in range(1, len(probabilities or []) + 1) if other != level]
    request_id = str(result["request_id"])
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": request_id,
        "identifier": [{"system": REQUEST_ID_SYSTEM, "value": request_id}],
        # preliminary: decision support the nurse confirms or overrides (POST /v1/audit/<id>/ack).
        "status": "preliminary",
        "code": {"text": f"{SCALE_NAMES.get(scale, scale)} emergency triage acuity"},
        "subject": inbound.subject or {"display": "patient not identified in the request"},
        "occurrenceDateTime": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "method": _method(result.get("model")),
        "prediction": predictions,
    }
    if inbound.basis:
        resource["basis"] = inbound.basis
    notes = _notes(result)
    if notes:
        resource["note"] = notes
    return resource


def operation_outcome(error: EdgeError, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error" if error.http_status < 500 else "fatal",
        "code": ISSUE_TYPES.get(error.code) or ("security" if error.http_status in (401, 403) else
                                                 VALUE_ISSUE if error.http_status < 500 else "exception"),
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": error.code}], "text": error.message},
    }
    where = expression or error.field
    if where:
        issue["expression"] = [where]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
