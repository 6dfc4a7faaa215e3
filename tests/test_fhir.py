"""FHIR round trip on a real server: a Bundle built and validated with fhir.resources (R4B) ->
POST /fhir/RiskAssessment/$triage -> a RiskAssessment fhir.resources validates, with the level the
JSON API gives the same case; errors are OperationOutcomes with the JSON API's machine codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

fhir = pytest.importorskip("fhir.resources.R4B.bundle")
from fhir.resources.R4B.bundle import Bundle  # noqa: E402
from fhir.resources.R4B.operationoutcome import OperationOutcome  # noqa: E402
from fhir.resources.R4B.riskassessment import RiskAssessment  # noqa: E402

from tests.servicekit import make_config, serving  # noqa: E402

PATH = "/fhir/RiskAssessment/$triage"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
PATIENT_URL = "urn:uuid:6f0b1c1e-0000-4000-8000-000000000001"
CANARY = "zebracanary chest pain"  # must never reach the audit log's plain columns or the logs


def _obs(code: str, *, value: float | None = None, unit: str | None = None, text: str | None = None,
         n: int = 0, system: str = LOINC) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                                "code": {"coding": [{"system": system, "code": code}]},
                                "subject": {"reference": PATIENT_URL}}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if text is not None:
        resource["valueString"] = text
    return {"fullUrl": f"urn:uuid:6f0b1c1e-0000-4000-8000-0000000001{n:02d}", "resource": resource}


def _bundle(*observations: dict[str, Any], birth: str | None = None) -> dict[str, Any]:
    if birth is None:
        birth = str(dt.date.today().year - 67) + "-01-01"
    patient = {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "p1", "gender": "male",
                                                   "birthDate": birth}}
    body = {"resourceType": "Bundle", "type": "collection", "entry": [patient, *observations]}
    # Built and checked with the FHIR library, then sent as the JSON an EHR would send.
    return json.loads(Bundle.model_validate(body).model_dump_json())


URGENT = (_obs("8661-1", text="chest pain and dyspnea", n=1), _obs("8867-4", value=112, unit="/min", n=2),
          _obs("59408-5", value=95, unit="%", n=3), _obs("8310-5", value=98.6, unit="[degF]", n=4),
          _obs("85354-9", n=5))
JSON_CASE = {"complaint": "chest pain and dyspnea", "age": 67, "sex": "M", "hr": 112, "spo2": 95, "temp_c": 37.0}


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("fhir")
    with serving(make_config(tmp, tiny_bundle, max_body_bytes=8192)) as (client, app):
        yield client, app


def _post(client, body: Any, query: str = "", **kwargs: Any):
    return client.post(PATH + query, body, content_type="application/fhir+json", **kwargs)


def _outcome(reply) -> tuple[str, list[str]]:
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(reply.json)
    issue = outcome.issue[0]
    return issue.details.coding[0].code, list(issue.expression or [])


def test_round_trip_gives_a_valid_risk_assessment_with_the_json_api_level(served) -> None:
    client, app = served
    bp = _obs("85354-9", n=5)
    bp["resource"]["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 150, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 90, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}]
    reply = _post(client, _bundle(*URGENT[:4], bp))
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    assessment = RiskAssessment.model_validate(reply.json)  # a valid FHIR R4 RiskAssessment
    assert assessment.subject.reference == PATIENT_URL
    assert assessment.status == "preliminary" and assessment.occurrenceDateTime is not None
    answer = assessment.prediction[0]
    level = int(answer.qualitativeRisk.coding[0].code)
    assert answer.qualitativeRisk.coding[0].system == "urn:edge-triage:scale:ktas"
    assert len(assessment.prediction) == 5
    assert abs(sum(float(p.probabilityDecimal) for p in assessment.prediction) - 1) < 1e-3
    model = app.extensions["edge"].runtime.identity()
    assert assessment.method.coding[0].code == model["sha256"] and model["name"] in assessment.method.text
    assert any("C-CHEST-RISK" in note.text for note in assessment.note)
    assert {ref.reference for ref in assessment.basis} >= {URGENT[0]["fullUrl"], URGENT[1]["fullUrl"]}
    same = client.post("/v1/triage", {**JSON_CASE, "sbp": 150, "dbp": 90}).json
    assert level == same["level"] and level <= 2
    assert float(answer.probabilityDecimal) == pytest.approx(same["probabilities"][level - 1], abs=1e-6)
    # The same audit record as the JSON API: one decision under the RiskAssessment's id.
    assert app.extensions["edge"].audit.get(assessment.id)["level"] == level


def test_a_condition_carries_the_complaint_and_explain_shows_the_basis(served) -> None:
    client, _ = served
    condition = {"fullUrl": "urn:uuid:c1", "resource": {
        "resourceType": "Condition", "subject": {"reference": PATIENT_URL}, "code": {"text": "ankle sprain"}}}
    reply = _post(client, _bundle(condition, _obs("72514-3", value=3, unit="{score}", n=6)), "?explain=1")
    assert reply.status == 200, reply.body
    assessment = RiskAssessment.model_validate(reply.json)
    same = client.post("/v1/triage", {"complaint": "ankle sprain", "age": 67, "sex": "M", "pain": 3}).json
    assert int(assessment.prediction[0].qualitativeRisk.coding[0].code) == same["level"]
    assert any(note.text.startswith("Basis shown") for note in assessment.note)


@pytest.mark.parametrize("observation, code, where", [
    (_obs("8310-5", value=37, unit="K", n=7), "wrong_unit", "valueQuantity.code"),
    (_obs("8867-4", value=112, unit="%", n=7), "wrong_unit", "valueQuantity.code"),
    (_obs("8310-5", value=130, unit="[degF]", n=7), "out_of_range", "valueQuantity.value"),
    (_obs("8867-4", value=112, unit="/min", n=7, system="http://snomed.info/sct"), "missing_code", ".code"),
])
def test_wrong_units_and_missing_loinc_codes_get_an_operation_outcome(served, observation, code, where) -> None:
    client, _ = served
    reply = _post(client, _bundle(URGENT[0], observation))
    assert reply.status == 400
    got, expression = _outcome(reply)
    assert got == code and expression[0].startswith("Bundle.entry[2].resource") and expression[0].endswith(where)


@pytest.mark.parametrize("raw, code, status", [
    (b"{not json", "invalid_json", 400),
    (b"[1, 2]", "not_an_object", 400),
    (json.dumps({"resourceType": "Patient"}).encode(), "not_a_bundle", 400),
    (json.dumps({"resourceType": "Bundle", "type": "collection"}).encode(), "missing_field", 400),
    (json.dumps({"resourceType": "Bundle", "entry": [{"resource": "x"}]}).encode(), "invalid_resource", 400),
    (json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}).encode(),
     "missing_field", 400),
    (b"{" + b" " * 9000 + b"}", "body_too_large", 413),
])
def test_malformed_bundles_get_an_operation_outcome_and_a_4xx(served, raw, code, status) -> None:
    client, _ = served
    reply = client.post(PATH, raw=raw, content_type="application/fhir+json")
    assert reply.status == status
    assert _outcome(reply)[0] == code


def test_other_errors_keep_the_json_api_codes(served) -> None:
    client, _ = served
    assert _outcome(client.post(PATH, raw=b"{}", content_type="text/plain"))[0] == "unsupported_media_type"
    born = str(dt.date.today().year + 1)  # a birth date in the future
    reply = _post(client, _bundle(URGENT[0], birth=born))
    assert reply.status == 400 and _outcome(reply) == ("out_of_range", ["Bundle.entry[0].resource.birthDate"])
    reply = _post(client, _bundle(*URGENT[:2]), "?scale=triage-x")
    assert reply.status == 400 and _outcome(reply)[1] == ["scale"]


def test_no_error_echoes_patient_data(served, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = served
    bad = _obs("8310-5", value=41.5, unit="degC", n=8)
    reply = _post(client, _bundle(_obs("8661-1", text=CANARY, n=1), bad))
    assert reply.status == 400
    assert b"zebracanary" not in reply.body and b"41.5" not in reply.body
    assert "zebracanary" not in caplog.text
