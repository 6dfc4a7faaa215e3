"""/openapi.json: a valid OpenAPI 3.1 document that follows the code (every route, the case's
fields and bounds, the result's keys), checked against real answers of a real server."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from edge.clinical.case import CASE_FIELDS, NUMERIC_BOUNDS
from tests.servicekit import make_config, serving

TOKEN = "t" * 40
# The web pages' blueprint and its static files are not the integration API (see edge/service/openapi.py).
NOT_API = ("web.", "static")


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("openapi")
    token = tmp / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o600)
    with serving(make_config(tmp, tiny_bundle, token_file=str(token), batch_max=4)) as (client, app):
        yield client, app


@pytest.fixture(scope="module")
def spec(served) -> dict[str, Any]:
    client, _ = served
    reply = client.get("/openapi.json")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    return reply.json


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(spec).validate()  # raises with the first problem


def test_every_flask_route_is_documented_and_nothing_else(served, spec: dict[str, Any]) -> None:
    _, app = served
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_API):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.update((path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"})
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == documented


def test_the_case_schema_is_edge_case_with_its_bounds(spec: dict[str, Any]) -> None:
    case = spec["components"]["schemas"]["Case"]
    assert set(case["properties"]) == set(CASE_FIELDS) | {"scale"}
    assert case["additionalProperties"] is False and case["required"] == ["complaint"]
    for name, (low, high, _) in NUMERIC_BOUNDS.items():
        assert (case["properties"][name]["minimum"], case["properties"][name]["maximum"]) == (low, high)
    undocumented = [n for n, s in case["properties"].items() if s.get("description") == "undocumented"]
    assert not undocumented, f"edge/service/api_schemas.py cannot describe case fields {undocumented}"


def _validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    # Resolve "#/components/..." references against the whole document.
    return jsonschema.Draft202012Validator({**spec, "$ref": f"#/components/schemas/{name}"})


def test_real_answers_match_their_schemas(served, spec: dict[str, Any]) -> None:
    client, _ = served
    result = client.post("/v1/triage?explain=1", {"complaint": "chest pain", "age": 60, "hr": 120}).json
    _validator(spec, "Result").validate(result)
    error = client.post("/v1/triage", {"complaint": "x", "hr": 999})
    assert error.status == 400
    _validator(spec, "Error").validate(error.json)
    with pytest.raises(jsonschema.ValidationError):  # the schema does constrain: a wrong level fails
        _validator(spec, "Result").validate({**result, "level": 7})
    ack = client.post(f"/v1/audit/{result['request_id']}/ack", {"final_level": result["level"]}).json
    _validator(spec, "Acknowledgement").validate(ack)
