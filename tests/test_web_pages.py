"""Kiosk answers (next step only, fail toward the staff), the staff queue's order and alerts,
the status JSON, the strings table and the web settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.clinical.case import TriageCase
from edge.web.queue import CaseQueue, needs_staff_now
from edge.service.config_tables import web_settings as settings_from
from edge.web.strings import EN

WEB = Path(__file__).resolve().parents[1] / "edge" / "web"
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def app(tmp_path: Path, tiny_bundle: Path):
    from edge.service.app import create_app
    from edge.service.config import ServiceConfig

    config = ServiceConfig(model_dir=str(tiny_bundle), audit_db=str(tmp_path / "audit.sqlite3"),
                           audit_key_file=str(tmp_path / "audit.key"), deadline_ms=5000.0).validate()
    app = create_app(config, monitor=False)
    yield app
    app.extensions["edge"].stop()


def _kiosk(app, body):
    client = app.test_client()
    html = client.get("/", environ_base=LOCAL).get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html).group(1)
    return client.post("/kiosk/api/submit", json=body, headers={"X-CSRF-Token": token}, environ_base=LOCAL)


@pytest.mark.parametrize("body, action", [
    ({"complaint": "chest pain", "age": 64, "sex": "M", "pain": 7}, "staff_now"),
    ({"complaint": "suicidal thoughts", "age": 22}, "staff_now"),
    ({"complaint": "rash", "age": 30, "sex": "F", "pain": 1}, "wait"),
])
def test_kiosk_answer_is_only_the_next_step(app, body, action):
    response = _kiosk(app, body)
    assert response.status_code == 200
    answer = response.get_json()
    assert set(answer) == {"action", "title", "body"}
    assert answer["action"] == action
    assert not re.search(r"level|probab|\d", answer["title"] + answer["body"], re.IGNORECASE)
    # The decision itself is audited as a kiosk decision.
    assert app.extensions["edge"].audit.count() == 1


def test_kiosk_refused_value_names_the_field_in_plain_words(app):
    response = _kiosk(app, {"complaint": "headache", "age": 200})
    assert response.status_code == 400
    assert response.get_json() == {"action": "fix", "field": "age", "message": "Please check this answer: age"}
    assert _kiosk(app, {"complaint": "   "}).get_json()["field"] == "complaint"


def test_kiosk_fails_toward_the_staff_when_the_service_breaks(app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("inference worker crashed")

    monkeypatch.setattr(app.extensions["edge"].scheduler, "submit", broken)
    answer = _kiosk(app, {"complaint": "rash", "age": 30}).get_json()
    assert answer["action"] == "staff_now" and answer["title"] == "Please tell the staff"


def test_queue_orders_open_cases_by_level_then_waiting_time_and_acknowledged_last():
    now = [1000.0]
    queue = CaseQueue(size=10, clock=lambda: now[0])

    def add(rid, level, rules=()):
        queue.listener(TriageCase(complaint=f"case {rid}"), {"request_id": rid, "level": level,
                                                            "rules_fired": list(rules), "degraded": None}, "api")
        now[0] += 10

    add("a", 3)
    add("b", 2)
    add("c", 3)
    add("d", 4, rules=[{"id": "C-SEIZURE", "level": 3}])
    add("e", 1)
    assert queue.acknowledge("e", 1, None)
    snap = queue.snapshot()
    assert [c["request_id"] for c in snap["cases"]] == ["b", "a", "c", "d", "e"]
    assert snap["alerts"] == ["b", "d"]  # level 1-2 or a red-flag rule, not yet acknowledged
    assert snap["cases"][1]["waiting_s"] == 50.0  # "a" arrived first, five arrivals ago
    assert queue.get("zzz") is None and not queue.acknowledge("zzz", 3, None)


def test_queue_is_bounded_in_size_and_age():
    now = [0.0]
    queue = CaseQueue(size=3, max_age_s=100, clock=lambda: now[0])
    for i in range(5):
        queue.listener({"complaint": "x"}, {"request_id": str(i), "level": 3}, "api")
    assert [c["request_id"] for c in queue.snapshot()["cases"]] == ["2", "3", "4"]
    now[0] = 101
    assert queue.snapshot()["cases"] == []


def test_degraded_answers_always_need_staff():
    assert needs_staff_now({"level": 3, "rules_fired": [], "degraded": "deadline"})
    assert not needs_staff_now({"level": 3, "rules_fired": [], "degraded": None})


def test_status_json_reports_model_latency_and_no_patient_data(app):
    client = app.test_client()
    canary = "canary-complaint-zebra"
    client.post("/v1/triage", json={"complaint": canary, "age": 40}, environ_base=LOCAL)
    data = client.get("/status/api", environ_base=LOCAL).get_json()
    assert data["model"]["loaded"] and data["model"]["name"] == "tiny-test"
    assert data["latency"]["count"] == 1 and data["latency"]["p50_ms"] > 0
    assert canary not in client.get("/status/api", environ_base=LOCAL).get_data(as_text=True)
    # The staff queue does hold it (staff need to see the complaint) — in memory only.
    assert canary in client.get("/staff/api/queue", environ_base=LOCAL).get_data(as_text=True)


def test_every_string_the_pages_use_is_in_the_table():
    used: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"t\['([a-z0-9_.]+)'\]", template.read_text()))
    for script in (WEB / "static").glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"\)', script.read_text()))
    prefixes = {"staff.arrival.", "staff.mental.", "level.", "field.", "metric."}
    assert used, "the scan found the pages' strings"
    missing = sorted(k for k in used if k not in EN and k not in prefixes)
    assert missing == []
    for prefix, names in {"level.": "12345", "staff.mental.": "AVPU"}.items():
        assert all(prefix + n in EN for n in names)


def test_web_settings_refuse_unknown_keys_and_bad_values():
    assert settings_from({"kiosk_idle_s": 5}).kiosk_idle_s == 5
    with pytest.raises(Exception, match="kiosk_idle"):
        settings_from({"kiosk_idle": 5})
    with pytest.raises(Exception, match="above 0"):
        settings_from({"kiosk_idle_s": 0})


def test_web_table_of_the_service_config_reaches_the_pages_and_typos_fail_at_start(tmp_path, tiny_bundle):
    from edge.service.app import create_app
    from edge.service.config import ServiceConfig
    from edge.errors import EdgeError

    base = {"model_dir": str(tiny_bundle), "audit_db": str(tmp_path / "audit.sqlite3"),
            "audit_key_file": str(tmp_path / "audit.key")}
    with pytest.raises(EdgeError, match="kiosk_idle"):
        create_app(ServiceConfig(**base, web={"kiosk_idle": 5}).validate(), monitor=False, start=False)
    app = create_app(ServiceConfig(**base, web={"kiosk_idle_s": 7}).validate(), monitor=False)
    try:
        html = app.test_client().get("/", environ_base=LOCAL).get_data(as_text=True)
        assert '"kioskIdleMs": 7000' in html
    finally:
        app.extensions["edge"].stop()
