"""The HTTP API on a real waitress server (ephemeral loopback port): happy paths and every 4xx."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.servicekit import make_config, serving

URGENT = {"complaint": "chest pain and dyspnea", "age": 67, "sex": "M", "hr": 112, "spo2": 95}
MINOR = {"complaint": "ankle sprain", "age": 30, "pain": 3}


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("api")
    token = tmp / "token"
    token.write_text("t" * 40)
    os.chmod(token, 0o600)
    config = make_config(tmp, tiny_bundle, max_body_bytes=4096, batch_max=4, token_file=str(token))
    with serving(config) as (client, app):
        yield client, app


def test_triage_happy_path_returns_the_result_contract(served) -> None:
    client, app = served
    reply = client.post("/v1/triage", URGENT)
    assert reply.status == 200
    result = reply.json
    assert set(result) >= {"level", "model_level", "probabilities", "review_required", "reasons", "rules_fired",
                           "degraded", "latency_ms", "model", "request_id"}
    assert result["degraded"] is None
    assert len(result["probabilities"]) == 5 and abs(sum(result["probabilities"]) - 1) < 1e-3
    assert result["level"] <= 2 and result["review_required"]
    assert any(rule["id"] == "C-CHEST-RISK" for rule in result["rules_fired"])
    assert result["model"]["name"] == "tiny-test"
    assert "explanation" not in result
    audited = app.extensions["edge"].audit.get(result["request_id"])
    assert audited is not None and audited["level"] == result["level"]


def test_explain_names_what_drove_the_answer(served) -> None:
    client, _ = served
    result = client.post("/v1/triage?explain=1", MINOR).json
    names = {item["name"] for item in result["explanation"]}
    assert "sprain" in names or "ankle" in names


def test_batch_answers_each_case_in_order(served) -> None:
    client, _ = served
    reply = client.post("/v1/triage/batch", {"cases": [URGENT, MINOR]})
    assert reply.status == 200
    levels = [r["level"] for r in reply.json["results"]]
    assert len(levels) == 2 and levels[0] < levels[1]


def test_listeners_see_each_decision_with_its_source(served) -> None:
    client, app = served
    seen = []
    app.extensions["edge"].result_listeners.append(lambda case, result, source: seen.append((result.request_id, source)))
    result = client.post("/v1/triage", MINOR, headers={"X-Edge-Source": "kiosk"}).json
    app.extensions["edge"].result_listeners.clear()
    assert seen == [(result["request_id"], "kiosk")]


def test_acknowledge_and_override(served) -> None:
    client, app = served
    result = client.post("/v1/triage", MINOR).json
    ack = client.post(f"/v1/audit/{result['request_id']}/ack", {"final_level": result["level"]})
    assert ack.status == 200 and ack.json["action"] == "acknowledge"
    override = client.post(f"/v1/audit/{result['request_id']}/ack", {"final_level": 2, "reason": "looks unwell"})
    assert override.status == 200 and override.json["action"] == "override"
    no_reason = client.post(f"/v1/audit/{result['request_id']}/ack", {"final_level": 1})
    assert no_reason.status == 400 and no_reason.json["error"]["code"] == "reason_required"
    bad_level = client.post(f"/v1/audit/{result['request_id']}/ack", {"final_level": 7, "reason": "x"})
    assert bad_level.status == 400 and bad_level.json["error"]["field"] == "final_level"
    unknown = client.post("/v1/audit/0123456789abcdef/ack", {"final_level": 2, "reason": "x"})
    assert unknown.status == 404 and unknown.json["error"]["code"] == "unknown_request"


def test_probes_info_and_metrics(served) -> None:
    client, _ = served
    assert client.get("/livez").json == {"alive": True}
    ready = client.get("/readyz")
    assert ready.status == 200 and ready.json["ready"] is True
    info = client.get("/info").json
    assert info["model"]["sha256"] and info["intended_use"] and info["limitations"]
    assert {"onnxruntime", "tokenizers", "python", "edge"} <= set(info["versions"])
    client.post("/v1/triage", MINOR)
    metrics = client.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.body.decode()
    for name in ("edge_request_duration_seconds_bucket", "edge_in_flight_requests", "edge_requests_total",
                 "edge_degraded_total", "edge_rejections_total", "edge_queue_depth", "edge_http_queue_depth"):
        assert name in text
    for line in text.splitlines():  # every sample line parses as "name{labels} number"
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize(
    "path, body, status, code, field",
    [
        ("/v1/triage", {"age": 40}, 400, "missing_field", "complaint"),
        ("/v1/triage", {"complaint": "cough", "hr": 900}, 400, "out_of_range", "hr"),
        ("/v1/triage", {"complaint": "cough", "colour": "red"}, 400, "unknown_field", None),
        ("/v1/triage", {"complaint": "cough", "sex": "X"}, 400, "invalid_choice", "sex"),
        ("/v1/triage", ["not", "an", "object"], 400, "not_an_object", None),
        ("/v1/triage?deadline_ms=1", MINOR, 400, "invalid_deadline", "deadline_ms"),
        ("/v1/triage?deadline_ms=abc", MINOR, 400, "invalid_deadline", "deadline_ms"),
        ("/v1/triage?strict=maybe", MINOR, 400, "invalid_parameter", "strict"),
        ("/v1/triage/batch", {"cases": []}, 400, "invalid_batch", "cases"),
        ("/v1/triage/batch", {"cases": [MINOR] * 5}, 400, "batch_too_large", "cases"),
        ("/v1/triage/batch", {"cases": [MINOR, {"complaint": ""}]}, 400, "empty_complaint", "complaint"),
    ],
)
def test_bad_requests_get_400_with_code_and_field(served, path, body, status, code, field) -> None:
    client, _ = served
    reply = client.post(path, body)
    assert reply.status == status
    error = reply.json["error"]
    assert error["code"] == code and error.get("field") == field and error["message"]


def test_broken_unicode_is_400_not_a_degraded_answer(served) -> None:
    client, _ = served
    reply = client.post("/v1/triage", raw=b'{"complaint": "chest \\ud800 pain"}')
    assert reply.status == 400 and reply.json["error"]["code"] == "invalid_text"


def test_batch_error_names_the_case_index(served) -> None:
    client, _ = served
    error = client.post("/v1/triage/batch", {"cases": [MINOR, {"complaint": "x", "spo2": 130}]}).json["error"]
    assert error["details"]["index"] == 1 and error["field"] == "spo2"


@pytest.mark.parametrize("raw", [b'{"complaint": "cough",', b"[" * 2000 + b"]" * 2000, b"\xff\xfe{}", b""])
def test_invalid_json_is_400(served, raw: bytes) -> None:
    client, _ = served
    reply = client.post("/v1/triage", raw=raw)
    assert reply.status == 400 and reply.json["error"]["code"] == "invalid_json"


def test_unknown_path_is_404_and_wrong_method_is_405(served) -> None:
    client, _ = served
    missing = client.get("/v1/nothing-here")
    assert missing.status == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.get("/v1/triage")
    assert wrong.status == 405 and wrong.json["error"]["code"] == "method_not_allowed"


def test_body_over_the_limit_is_413(served) -> None:
    client, _ = served
    reply = client.post("/v1/triage", raw=b'{"complaint": "' + b"a" * 8000 + b'"}')
    assert reply.status == 413 and reply.json["error"]["code"] == "body_too_large"


def test_non_json_is_415(served) -> None:
    client, _ = served
    reply = client.post("/v1/triage", raw=b"complaint=cough", content_type="application/x-www-form-urlencoded")
    assert reply.status == 415 and reply.json["error"]["code"] == "unsupported_media_type"


def test_admin_needs_the_token(served) -> None:
    client, _ = served
    missing = client.post("/v1/admin/reload")
    assert missing.status == 401 and missing.json["error"]["code"] == "token_required"
    wrong = client.post("/v1/admin/reload", headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status == 401 and wrong.json["error"]["code"] == "token_invalid"
    export = client.get("/v1/audit/export.csv", headers={"Authorization": "Bearer " + "t" * 40})
    assert export.status == 200 and export.body.decode().startswith("seq,request_id")


def test_reload_swaps_a_good_bundle_and_keeps_serving_on_a_bad_one(served, tiny_bundle: Path, tmp_path: Path) -> None:
    from tests.kit.tiny_bundle import build_tiny_bundle

    client, app = served
    auth = {"Authorization": "Bearer " + "t" * 40}
    before = client.get("/info").json["model"]["sha256"]
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.onnx").write_bytes(b"corrupt")
    bad = client.post("/v1/admin/reload", {"model_dir": str(broken)}, headers=auth)
    assert bad.status == 422 and bad.json["error"]["code"] == "hash_mismatch"
    assert bad.json["error"]["details"]["serving"]["sha256"] == before
    assert client.post("/v1/triage", MINOR).json["model"]["sha256"] == before
    new = build_tiny_bundle(tmp_path / "new", seed=7, version="0.0.2")
    good = client.post("/v1/admin/reload", {"model_dir": str(new)}, headers=auth)
    assert good.status == 200 and good.json["model"]["version"] == "0.0.2"
    assert client.post("/v1/triage", MINOR).json["model"]["version"] == "0.0.2"
    restore = client.post("/v1/admin/reload", {"model_dir": str(tiny_bundle)}, headers=auth)
    assert restore.status == 200 and restore.json["model"]["sha256"] == before


def test_unwritable_audit_path_is_a_clear_start_error(tiny_bundle: Path, tmp_path: Path) -> None:
    from edge.service.app import create_app
    from edge.errors import EdgeError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = make_config(tmp_path, tiny_bundle, audit_db=str(blocker / "audit.sqlite3"))
    with pytest.raises(EdgeError) as error:
        create_app(config, monitor=False)
    assert error.value.code == "audit_unavailable" and "audit_db" == error.value.field


def test_the_shipped_bundle_serves(tmp_path: Path) -> None:
    from tests.conftest import SHIPPED_BUNDLE

    if not (SHIPPED_BUNDLE / "manifest.json").is_file():
        pytest.skip(f"no shipped bundle at {SHIPPED_BUNDLE} (built by `edge-export build`)")
    with serving(make_config(tmp_path, SHIPPED_BUNDLE)) as (client, app):
        urgent = client.post("/v1/triage", {"complaint": "crushing chest pain, sweating", "age": 68, "hr": 118})
        # A generous deadline: this test is about the bundle's answers, not about a loaded CI box's timing.
        minor = client.post("/v1/triage?explain=1&deadline_ms=5000", {  # with vitals: the model reads missing vitals as urgent
            "complaint": "Ankle pain", "age": 35, "sex": "F", "arrival": "walk", "injury": True, "mental": "A",
            "pain": 4, "sbp": 130, "dbp": 80, "hr": 76, "rr": 18, "temp_c": 36.5, "spo2": 98})
        info = client.get("/info").json
    assert urgent.status == 200 and urgent.json["degraded"] is None and urgent.json["level"] <= 2
    assert minor.status == 200 and minor.json["degraded"] is None, minor.body[:200]
    assert minor.json["level"] >= 3 and minor.json["explanation"]
    assert info["model"]["name"] == "triage-minilm-int8" and info["model"]["sha256"] == urgent.json["model"]["sha256"]


def test_requests_during_a_swap_get_the_old_or_the_new_model(served, tiny_bundle: Path, tmp_path: Path) -> None:
    import threading

    from tests.kit.tiny_bundle import build_tiny_bundle

    client, _ = served
    auth = {"Authorization": "Bearer " + "t" * 40}
    new = build_tiny_bundle(tmp_path / "swap", seed=3, version="0.0.3")
    stop, replies = threading.Event(), []

    def hammer() -> None:
        while not stop.is_set():
            replies.append(client.post("/v1/triage", MINOR))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for bundle in (new, tiny_bundle, new, tiny_bundle):
            assert client.post("/v1/admin/reload", {"model_dir": str(bundle)}, headers=auth).status == 200
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert replies and all(r.status == 200 for r in replies)
    assert all(r.json["degraded"] in (None, "deadline") for r in replies)
    assert {r.json["model"]["version"] for r in replies} <= {"0.0.1", "0.0.3"}


def test_every_result_names_its_scale_and_a_missing_scale_is_a_400(served) -> None:
    client, _ = served
    result = client.post("/v1/triage", MINOR).json
    assert result["scale"] == "ktas"  # the tiny bundle answers in KTAS only
    assert client.post("/v1/triage", {**MINOR, "scale": "ktas"}).status == 200
    reply = client.post("/v1/triage", {**MINOR, "scale": "esi"})
    assert reply.status == 400
    assert reply.json["error"]["code"] == "scale_unavailable" and reply.json["error"]["field"] == "scale"
    reply = client.post("/v1/triage", {**MINOR, "scale": "mts"})
    assert reply.status == 400 and reply.json["error"]["field"] == "scale"
    batch = client.post("/v1/triage/batch", {"cases": [MINOR, {**MINOR, "scale": "esi"}]})
    assert batch.status == 400 and batch.json["error"]["field"] == "scale"
