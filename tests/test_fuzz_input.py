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

from edge.clinical.case import CASE_FIELDS, parse_case
from edge.errors import CaseError
from tests.servicekit import make_config, serving

# Unbounded on purpose: JSON integers have no size limit (10**309 once overflowed into a 500).
huge_integers = st.one_of(st.integers(), st.integers(10**300, 10**4000), st.integers(-10**4000, -10**300))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_integers,
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
field_values = st.one_of(scalars, st.sampled_from(["F", "M", "walk", "ambulance", "A", "V", "P", "U"]),
                         st.floats(-50, 400), st.floats(), huge_integers, st.lists(scalars, max_size=2))
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
    assert reply.status in (200, 400, 413), reply.body[:300]  # 413: a drawn body past max_body_bytes


NUMBER_TEXTS = ["1e999", "-1e999", "-0", "-0.0", "0e0", "1E+400", "4.9e-324", "1e-999", "-1e-999", "2.5E1",
                "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878"
                "171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075"
                "868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026"
                "184124858368"]


def _number_text(rng) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(NUMBER_TEXTS)
    if roll < 0.6:  # long integer literals, around and past the decoder's digit limit
        digits = rng.choice([20, 309, 310, 1000, 4300, 4301, 6000])
        return rng.choice(["", "-"]) + str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(digits - 1))
    if roll < 0.8:
        return repr(rng.uniform(-400, 400))
    return f"{rng.choice(['', '-'])}{rng.randint(0, 9)}.{rng.randint(0, 99)}e{rng.randint(-400, 400)}"


def _fuzzed_body(rng) -> bytes:
    names = list(CASE_FIELDS[1:]) + ["extra"]
    fields = {"complaint": '"chest pain"'} if rng.random() < 0.9 else {}
    for name in rng.sample(names, rng.randint(1, 4)):
        fields[name] = _number_text(rng)
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    return text.encode() if rng.random() < 0.8 else ('{"cases": [' + text + "]}").encode()


def test_ten_thousand_fuzzed_numeric_bodies_never_5xx(tiny_bundle: Path, tmp_path: Path) -> None:
    """10,000 bodies of huge, infinite, negative-zero and tiny numbers through the WSGI app the
    server runs — the POST /v1/triage fast path, and Flask behind it for the batch route — with no
    sockets (fast); every answer is 200 or a 4xx JSON error, and none echoes a number."""
    import random

    from werkzeug.test import Client

    from edge.service.app import create_app
    from edge.service.fast_triage import TriageFastPath

    rng = random.Random(11)
    loopback = {"REMOTE_ADDR": "127.0.0.1"}  # what waitress puts there for a client on the box
    config = make_config(tmp_path, tiny_bundle, deadline_ms=2000)
    app = create_app(config, monitor=False, audit=False)
    statuses: dict[int, int] = {}
    try:
        client = Client(TriageFastPath(app, app.extensions["edge"]))
        assert client.get("/livez", environ_base=loopback).status_code == 200 and app._got_first_request  # fast path on
        for _ in range(10_000):
            body = _fuzzed_body(rng)
            path = "/v1/triage/batch" if body.startswith(b'{"cases"') else "/v1/triage"
            reply = client.post(path, data=body, content_type="application/json", environ_base=loopback)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert reply.status_code < 500, (reply.status_code, reply.data[:200])
            if reply.status_code != 200:
                assert reply.get_json()["error"]["code"]
                assert b"999" not in reply.data and b"4301" not in reply.data
    finally:
        app.extensions["edge"].stop()
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 1000, statuses  # both ways were exercised
