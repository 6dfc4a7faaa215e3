"""Web pages: CSP without inline script, local assets only, CSRF on every browser post, and the
service token (bearer or a signed-in session) for staff, status and kiosk from another host.
Uses the real app (tiny real bundle, real SQLite audit) through Flask's test client, which lets a
test present a non-loopback client address."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

TOKEN = "s3cret-token-for-tests-0123456789"
REMOTE = {"REMOTE_ADDR": "192.0.2.10"}
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def app(tmp_path: Path, tiny_bundle: Path):
    from edge.service.app import create_app
    from edge.service.config import ServiceConfig

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = ServiceConfig(model_dir=str(tiny_bundle), audit_db=str(tmp_path / "audit.sqlite3"),
                           audit_key_file=str(tmp_path / "audit.key"), token_file=str(token_file),
                           deadline_ms=5000.0).validate()
    app = create_app(config, monitor=False)
    yield app
    app.extensions["edge"].stop()


def _csrf(client, path: str = "/", environ: dict | None = None) -> str:
    html = client.get(path, environ_base=environ or LOCAL).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html).group(1)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("path", ["/", "/staff", "/status", "/staff/login"])
def test_pages_have_csp_no_inline_script_and_only_local_assets(app, path):
    response = app.test_client().get(path, environ_base=LOCAL)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    parser = _Tags()
    parser.feed(response.get_data(as_text=True))
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts, "every page loads its script"
    for attrs in scripts:
        assert attrs.get("src") or attrs.get("type") == "application/json"
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), f"inline handler on <{tag}>"
        assert "style" not in attrs, f"inline style on <{tag}>"
        for name in ("src", "href", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(https?:)?//", value), f"non-local asset {value}"


def test_static_assets_are_served_locally_and_reference_nothing_remote(app):
    client = app.test_client()
    static = Path(__import__("edge.web", fromlist=["x"]).__file__).parent / "static"
    for asset in sorted(static.iterdir()):
        response = client.get(f"/ui/static/{asset.name}", environ_base=LOCAL)
        assert response.status_code == 200, asset.name
        text = asset.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{asset.name} references a remote URL"
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|\beval\(|document\.write", text)


def test_kiosk_post_needs_the_csrf_header_from_its_own_session(app):
    client = app.test_client()
    body = {"complaint": "rash", "age": 30}
    assert client.post("/kiosk/api/submit", json=body, environ_base=LOCAL).status_code == 403
    token = _csrf(client)
    bad = client.post("/kiosk/api/submit", json=body, headers={"X-CSRF-Token": "0" * 64}, environ_base=LOCAL)
    assert bad.status_code == 403 and bad.get_json()["error"]["code"] == "csrf_failed"
    ok = client.post("/kiosk/api/submit", json=body, headers={"X-CSRF-Token": token}, environ_base=LOCAL)
    assert ok.status_code == 200
    # Another browser's session cannot reuse the token.
    other = app.test_client()
    other.get("/", environ_base=LOCAL)
    stolen = other.post("/kiosk/api/submit", json=body, headers={"X-CSRF-Token": token}, environ_base=LOCAL)
    assert stolen.status_code == 403


def test_session_cookie_is_httponly_and_samesite_strict(app):
    response = app.test_client().get("/", environ_base=LOCAL)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_staff_triage_from_loopback_browser_needs_csrf(app):
    client = app.test_client()
    case = {"complaint": "chest pain", "age": 60}
    assert client.post("/staff/api/triage", json=case, environ_base=LOCAL).status_code == 403
    token = _csrf(client, "/staff")
    response = client.post("/staff/api/triage", json=case, headers={"X-CSRF-Token": token}, environ_base=LOCAL)
    assert response.status_code == 200
    detail = response.get_json()
    assert detail["source"] == "staff" and detail["result"]["level"] <= 2
    assert detail["result"]["explanation"], "the staff board asks for the explanation"


@pytest.mark.parametrize("path", ["/staff", "/status", "/"])
def test_pages_from_another_host_redirect_to_sign_in(app, path):
    response = app.test_client().get(path, environ_base=REMOTE)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/staff/login?next=")


@pytest.mark.parametrize("path", ["/staff/api/queue", "/status/api"])
def test_json_from_another_host_needs_the_token(app, path):
    client = app.test_client()
    assert client.get(path, environ_base=REMOTE).status_code == 401
    wrong = client.get(path, headers={"Authorization": "Bearer not-the-token-000000"}, environ_base=REMOTE)
    assert wrong.status_code == 401
    right = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=REMOTE)
    assert right.status_code == 200


def test_machine_client_with_bearer_token_needs_no_csrf(app):
    client = app.test_client()
    response = client.post("/staff/api/triage", json={"complaint": "ankle sprain", "age": 20},
                           headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=REMOTE)
    assert response.status_code == 200
    request_id = response.get_json()["request_id"]
    ack = client.post(f"/staff/api/ack/{request_id}", json={"final_level": 3, "reason": "mechanism of injury"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=REMOTE)
    assert ack.status_code == 200
    assert ack.get_json()["audit"]["action"] in ("override", "acknowledge")


def test_sign_in_with_the_token_opens_staff_pages_for_that_browser_only(app):
    client = app.test_client()
    page = client.get("/staff/login?next=/status", environ_base=REMOTE)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    # A form post without the CSRF field, or with a wrong token, signs nobody in.
    assert client.post("/staff/login", data={"token": TOKEN, "next": "/status"}, environ_base=REMOTE).status_code == 401
    bad = client.post("/staff/login", data={"token": "wrong-token-0000000000", "csrf_token": csrf},
                      environ_base=REMOTE)
    assert bad.status_code == 401 and "not valid" in bad.get_data(as_text=True)
    good = client.post("/staff/login", data={"token": TOKEN, "csrf_token": csrf, "next": "/status"},
                       environ_base=REMOTE)
    assert good.status_code == 303 and good.headers["Location"] == "/status"
    assert client.get("/status", environ_base=REMOTE).status_code == 200
    assert client.get("/status/api", environ_base=REMOTE).status_code == 200
    # The signed-in session still needs CSRF for posts.
    assert client.post("/staff/api/triage", json={"complaint": "rash"}, environ_base=REMOTE).status_code == 403
    # A different browser is still outside.
    assert app.test_client().get("/staff/api/queue", environ_base=REMOTE).status_code == 401


def test_tampered_session_cookie_is_not_signed_in(app):
    client = app.test_client()
    client.get("/", environ_base=REMOTE)
    cookie = client.get_cookie("edge_web")
    client.set_cookie("edge_web", cookie.value[:-4] + "AAAA")
    assert client.get("/staff/api/queue", environ_base=REMOTE).status_code == 401


def test_sign_in_never_redirects_off_site(app):
    client = app.test_client()
    page = client.get("/staff/login", environ_base=REMOTE).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        response = client.post("/staff/login", data={"token": TOKEN, "csrf_token": csrf, "next": target},
                               environ_base=REMOTE)
        assert response.headers["Location"] == "/staff"
