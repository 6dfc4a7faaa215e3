"""Property-based fuzz of the JSON input: whatever arrives, the service answers 200 or a 4xx with
a JSON error code — never a 5xx, never a crash — on a real server; and ``parse_case`` either
returns a valid case or raises ``CaseError``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.case import CASE_FIELDS, parse_case
from edge.errors import CaseError
from tests.servicekit import make_config, serving

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
field_values = st.one_of(scalars, st.sampled_from(["F", "M", "walk", "ambulance", "A", "V", "P", "U"]),
                         st.floats(-50, 400), st.lists(scalars, max_size=2))
cases = st.dictionaries(st.sampled_from(CASE_FIELDS + ("extra", "Complaint")), field_values, max_size=8)
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=600)  # surrogates and controls too
bodies = st.one_of(cases, json_values, st.fixed_dictionaries({"complaint": any_text}, optional={
    "age": field_values, "hr": field_values, "spo2": field_values, "mental": field_values, "injury": field_values}))


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(bodies, json_values))
def test_parse_case_accepts_or_refuses_cleanly(payload) -> None:
    try:
        case = parse_case(payload)
    except CaseError as error:
        assert error.code and error.message and error.http_status == 400
        return
    assert case.complaint.strip() and len(case.complaint) <= 500
    for name in CASE_FIELDS[1:]:
        value = getattr(case, name)
        assert value is None or not isinstance(value, float) or math.isfinite(value)


@pytest.fixture(scope="module")
def client(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    config = make_config(tmp_path_factory.mktemp("fuzz"), tiny_bundle, deadline_ms=2000)
    with serving(config) as (http, _):
        yield http


def _encode(payload) -> bytes:
    return json.dumps(payload, allow_nan=True).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=bodies, path=st.sampled_from(["/v1/triage", "/v1/triage?explain=1", "/v1/triage/batch"]),
       raw_tail=st.one_of(st.just(b""), st.binary(max_size=8)))
def test_server_never_answers_5xx(client, payload, path, raw_tail) -> None:
    body = {"cases": [payload, payload]} if path.endswith("batch") and isinstance(payload, dict) else payload
    reply = client.post(path, raw=_encode(body) + raw_tail)
    assert reply.status < 500, reply.body[:300]
    data = reply.json
    if reply.status == 200:
        results = data["results"] if path.endswith("batch") else [data]
        assert all(1 <= r["level"] <= 5 for r in results)
        assert all(r["degraded"] != "model error" for r in results), "accepted input must not break the model"
    else:
        assert data["error"]["code"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_server_survives_arbitrary_bytes(client, raw) -> None:
    reply = client.post("/v1/triage", raw=raw)
    assert 400 <= reply.status < 500 or reply.status == 200
    assert "error" in reply.json or "level" in reply.json


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, st.fixed_dictionaries({"final_level": scalars}, optional={"reason": scalars})))
def test_acknowledgements_never_5xx(client, body) -> None:
    request_id = client.post("/v1/triage", {"complaint": "cough"}).json["request_id"]
    reply = client.post(f"/v1/audit/{request_id}/ack", raw=_encode(body))
    assert reply.status in (200, 400), reply.body[:300]
