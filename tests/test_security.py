"""Security: token file rules, who needs a token, and the PHI canary: a unique complaint sent
through every path of a real ``edge-triage serve`` process appears in no log line, no error body
and no metric."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from edge.errors import EdgeError
from edge.service.access import AccessPolicy, is_loopback_client, read_token_file
from tests.servicekit import Client, make_config

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-" + "x" * 30


def _token_file(tmp_path: Path, mode: int = 0o600, text: str = TOKEN) -> Path:
    path = tmp_path / "token"
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def test_token_file_must_be_private(tmp_path: Path) -> None:
    assert read_token_file(_token_file(tmp_path)) == TOKEN
    for mode in (0o644, 0o640, 0o604):
        with pytest.raises(EdgeError) as error:
            read_token_file(_token_file(tmp_path, mode))
        assert error.value.code == "token_file_permissions" and "chmod 600" in error.value.message


def test_missing_or_short_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EdgeError, match="does not exist") as missing:
        read_token_file(tmp_path / "absent")
    assert missing.value.code == "token_file_missing"
    with pytest.raises(EdgeError) as short:
        read_token_file(_token_file(tmp_path, text="short"))
    assert short.value.code == "token_too_short"


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(EdgeError) as error:
        AccessPolicy.from_config(None, "0.0.0.0")
    assert error.value.code == "token_required"
    assert AccessPolicy.from_config(str(_token_file(tmp_path)), "0.0.0.0").has_token
    assert not AccessPolicy.from_config(None, "127.0.0.1").has_token


@pytest.mark.parametrize("address, loopback", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                               ("::ffff:127.0.0.1", True), ("192.0.2.7", False),
                                               ("10.1.2.3", False), ("", False), (None, False), ("junk", False)])
def test_loopback_detection(address, loopback) -> None:
    assert is_loopback_client(address) is loopback


def test_access_matrix() -> None:
    with_token, without = AccessPolicy(TOKEN), AccessPolicy(None)
    good, bad = f"Bearer {TOKEN}", "Bearer " + "y" * len(TOKEN)
    with_token.check("127.0.0.1", None)  # loopback triage needs no token
    with_token.check("192.0.2.7", good)
    with_token.check("127.0.0.1", good, admin=True)
    for remote, auth, admin, status in [
        ("192.0.2.7", None, False, 401), ("192.0.2.7", bad, False, 401), ("192.0.2.7", "Basic abc", False, 401),
        ("127.0.0.1", None, True, 401), ("127.0.0.1", bad, True, 401),
    ]:
        with pytest.raises(EdgeError) as error:
            with_token.check(remote, auth, admin=admin)
        assert error.value.http_status == status
    with pytest.raises(EdgeError) as remote_without:
        without.check("192.0.2.7", None)
    assert remote_without.value.http_status == 403
    with pytest.raises(EdgeError) as admin_without:
        without.check("127.0.0.1", None, admin=True)
    assert admin_without.value.code == "admin_disabled" and admin_without.value.http_status == 403


def test_remote_client_through_the_app(tiny_bundle: Path, tmp_path: Path) -> None:
    """The app applies the policy to the peer address (X-Forwarded-For is not trusted)."""
    from edge.service.app import create_app

    config = make_config(tmp_path, tiny_bundle, token_file=str(_token_file(tmp_path)))
    app = create_app(config, monitor=False, audit=False)
    try:
        remote = app.test_client()
        remote.environ_base["REMOTE_ADDR"] = "192.0.2.7"
        body = {"complaint": "cough"}
        assert remote.post("/v1/triage", json=body).status_code == 401
        spoofed = remote.post("/v1/triage", json=body, headers={"X-Forwarded-For": "127.0.0.1"})
        assert spoofed.status_code == 401
        assert remote.get("/info").status_code == 401
        assert remote.get("/livez").status_code == 200  # probes stay open
        authorised = remote.post("/v1/triage", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert authorised.status_code == 200
    finally:
        app.extensions["edge"].stop()


def _start_serve(tmp_path: Path, bundle: Path, token: Path,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, list[str], str]:
    env = {key: value for key, value in os.environ.items() if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update({"EDGE_TRIAGE_AUDIT_DB": str(tmp_path / "audit.sqlite3"), "PYTHONUNBUFFERED": "1",
                "EDGE_TRIAGE_AUDIT_KEY_FILE": str(tmp_path / "audit.key"), "EDGE_TRIAGE_TOKEN_FILE": str(token),
                **(extra_env or {})})
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--model", str(bundle), "--port", "0", "--log-level", "DEBUG"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()
    port: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                port.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    assert found.wait(60) and port, "server did not start:\n" + "".join(lines)
    return process, lines, f"http://127.0.0.1:{port[0]}"


def test_canary_complaint_never_reaches_logs_errors_or_metrics(tiny_bundle: Path, tmp_path: Path) -> None:
    canary = "quokka-canary-5521 chest pain"
    reason_canary = "wombat-canary-9034"
    process, lines, base = _start_serve(tmp_path, tiny_bundle, _token_file(tmp_path))
    client = Client(base)
    bodies: list[bytes] = []
    try:
        ok = client.post("/v1/triage?explain=1", {"complaint": canary, "age": 70, "hr": 120})
        assert ok.status == 200
        bodies.append(client.post("/v1/triage/batch", {"cases": [{"complaint": canary}] * 2}).body)
        errors = [
            client.post("/v1/triage", {"complaint": canary, "hr": 999}),
            client.post("/v1/triage", {"complaint": canary, "spo2": "ninety"}),
            client.post("/v1/triage", {"complaint": canary * 40}),
            client.post("/v1/triage", {"complaint": canary, "mental": canary}),
            client.post("/v1/triage", raw=('{"complaint": "' + canary).encode()),
            client.post("/v1/triage", raw=canary.encode(), content_type="text/plain"),
            client.post("/v1/triage/batch", {"cases": [{"complaint": canary}, {"complaint": canary, "age": -4}]}),
            client.post("/v1/triage?deadline_ms=" + urllib.parse.quote(canary), {"complaint": canary}),
        ]
        assert all(400 <= e.status < 500 for e in errors), [e.status for e in errors]
        bodies.extend(e.body for e in errors)
        ack = client.post(f"/v1/audit/{ok.json['request_id']}/ack", {"final_level": 1, "reason": reason_canary})
        assert ack.status == 200
        bodies.append(ack.body)
        metrics = client.get("/metrics").body
        info = client.get("/info").body
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    time.sleep(0.2)  # let the pump thread read the last lines
    assert process.returncode == 0, "".join(lines)
    log_text = "".join(lines)
    assert "listening on" in log_text  # the capture works: we did see the server's log
    for secret in ("quokka-canary-5521", reason_canary):
        assert secret not in log_text, "patient data in the server log"
        assert secret.encode() not in metrics and secret.encode() not in info
    for body in bodies[1:-1]:
        assert b"quokka-canary-5521" not in body, body[:200]
