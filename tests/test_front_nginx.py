"""The ward-network front (edge.service.front) through a real nginx on an ephemeral loopback port: the
rendered config passes ``nginx -t``; TLS answers; size, header and protocol errors are JSON in
the API's error shape; a slow client is cut off by nginx while /livez keeps answering; ward
clients are seen by their own address (not as loopback) by the service."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest

from tests.kit.nginx_front import check_config, free_port, nginx_binary, running_front, write_config
from tests.servicekit import make_config, serving

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (apt-get install nginx; "
                                "`make test` installs it when missing)")
CASE = {"complaint": "ankle sprain", "age": 30}


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    conf, _ = write_config(tmp_path, upstream_port=8080)
    result = check_config(nginx_binary(), tmp_path, conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_catches_a_broken_config(tmp_path: Path) -> None:
    conf, _ = write_config(tmp_path, upstream_port=8080)
    conf.write_text(conf.read_text().replace("client_header_timeout", "client_header_timeoutt"))
    assert check_config(nginx_binary(), tmp_path, conf).returncode != 0


@pytest.fixture(scope="module")
def front(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("front")
    with serving(make_config(tmp, tiny_bundle, max_body_bytes=4096)) as (client, _):
        upstream = int(client.base.rsplit(":", 1)[1])
        with running_front(tmp / "nginx", upstream, header_timeout_s=1, body_timeout_s=1,
                           max_body_bytes=4096) as settings:
            host, port = settings.listen.rsplit(":", 1)
            tls = ssl.create_default_context(cafile=settings.cert)  # verified: the generated cert's SAN
            yield host, int(port), tls, client


def _https(front, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port, tls, _ = front
    conn = http.client.HTTPSConnection(host, port, context=tls, timeout=20)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_triage_through_tls(front) -> None:
    status, headers, body = _https(front, "POST", "/v1/triage", json.dumps(CASE).encode())
    assert status == 200 and 1 <= json.loads(body)["level"] <= 5
    assert "max-age" in headers["Strict-Transport-Security"]


@pytest.mark.parametrize("path, body, headers, status, code", [
    ("/v1/triage", b"x" * 10_000, {}, 413, "body_too_large"),
    ("/livez", None, {"X-Big": "a" * 20_000}, 431, "headers_too_large"),
])
def test_front_errors_are_json_and_echo_nothing(front, path, body, headers, status, code) -> None:
    got, response_headers, payload = _https(front, "POST" if body else "GET", path, body, headers)
    assert got == status and response_headers["Content-Type"] == "application/json"
    assert json.loads(payload)["error"]["code"] == code and b"aaaa" not in payload


def test_plain_http_on_the_tls_port_gets_a_json_400(front) -> None:
    host, port, _, _ = front
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/livez")
    response = conn.getresponse()
    assert response.status == 400 and json.loads(response.read())["error"]["code"] == "https_required"


def test_a_slow_client_is_cut_off_by_the_front_while_livez_answers(front) -> None:
    host, port, tls, _ = front
    raw = socket.create_connection((host, port), timeout=15)
    slow = tls.wrap_socket(raw, server_hostname=host)
    slow.sendall(b"POST /v1/triage HTTP/1.1\r\nHost: x\r\nX-Dribble: a")  # and then nothing
    assert _https(front, "GET", "/livez")[0] == 200
    try:
        closed = slow.recv(1024) == b""  # nginx's header timeout closes it (no answer is owed)
    except (ConnectionResetError, ssl.SSLError):
        closed = True
    finally:
        slow.close()
    assert closed


def test_ward_clients_are_not_loopback_to_the_service(front) -> None:
    # Through the front from this machine: X-Forwarded-For is 127.0.0.1, allowed like a local client.
    assert _https(front, "POST", "/v1/triage", json.dumps(CASE).encode())[0] == 200
    # What the service does with a ward address (the front sets the header; a client cannot):
    _, _, _, direct = front
    reply = direct.post("/v1/triage", CASE, headers={"X-Forwarded-For": "10.20.30.40"})
    assert reply.status == 403 and reply.json["error"]["code"] == "forbidden"


def test_a_down_service_is_a_json_502(tmp_path: Path) -> None:
    with running_front(tmp_path, free_port()) as settings:
        host, port = settings.listen.rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=settings.cert),
                                           timeout=20)
        conn.request("GET", "/livez")
        response = conn.getresponse()
        error = json.loads(response.read())["error"]
    assert response.status == 502 and error["code"] == "service_unavailable"
    assert "clinician" in error["message"]
