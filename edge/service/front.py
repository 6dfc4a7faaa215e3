"""The ward-network front: nginx terminates TLS and absorbs slow and abusive clients, so the
service itself stays on loopback and only ever sees complete, size-checked requests.

Why nginx in front of waitress: 260 connections dribbling one byte a second left /livez and every
triage request unanswered (waitress holds a socket per connection, up to its connection_limit,
and only times them out after minutes). nginx reads headers and the whole body itself, under
short timeouts and size limits, before a request reaches the service; its error pages are JSON
in the API's error shape; staff pages over the ward network are HTTPS.

    python -m edge.service.front cert --dir /etc/edge-triage/tls --name triage-box.ward.local
    python -m edge.service.front render --out /etc/edge-triage/nginx.conf --listen 0.0.0.0:443

The service sees ward clients by their own address (nginx sends ``X-Forwarded-For``, and waitress
trusts it only from 127.0.0.1), so they need the bearer token exactly as if they had connected
directly; loopback-only setups need no front at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

# nginx status -> (code, message): fixed text, nothing from the request.
FRONT_ERRORS = {
    400: ("bad_request", "The request is not valid HTTP; check the request line and headers."),
    408: ("request_timeout", "The request was not received in time; send it again in one go."),
    413: ("body_too_large", "The body is larger than this service accepts."),
    414: ("uri_too_long", "The request URI is too long."),
    429: ("too_many_connections", "Too many connections from this address; close idle ones and retry."),
    494: ("headers_too_large", "The request headers are larger than this service accepts."),
    495: ("bad_certificate", "The client certificate is not valid."),
    497: ("https_required", "This port speaks HTTPS only; use https://."),
    500: ("internal_error", "Internal error in the front; the event was logged."),
    502: ("service_unavailable", "The triage service is not answering; ask a clinician to review the patient "
          "now and tell the duty engineer."),
    503: ("service_unavailable", "The triage service is busy; ask a clinician to review the patient now, "
          "or retry shortly."),
    504: ("service_timeout", "The triage service did not answer in time; ask a clinician to review the "
          "patient now, or retry."),
}


@dataclass(frozen=True)
class FrontSettings:
    listen: str = "0.0.0.0:443"  # host:port on the ward network
    upstream: str = "127.0.0.1:8080"  # the service, on loopback
    # Where systemd's LoadCredential= puts them for systemd/edge-triage-front.service.
    cert: str = "/run/credentials/edge-triage-front.service/cert.pem"
    key: str = "/run/credentials/edge-triage-front.service/key.pem"
    state_dir: str = "/run/edge-triage-front"  # pid file and temp paths (RuntimeDirectory=)
    error_log: str = "stderr"  # the journal; never an access log: URLs carry request ids
    max_body_bytes: int = 65536
    header_timeout_s: float = 5.0  # a slow client loses its connection after this, not the service a thread
    body_timeout_s: float = 5.0
    send_timeout_s: float = 10.0
    keepalive_timeout_s: float = 30.0
    upstream_timeout_s: float = 15.0  # above the service's deadline_max_ms
    # Idle connections to the service kept for reuse: below it, every request past the pool opened
    # and closed a loopback connection (measured: hundreds a second at 320 clients, each an accept
    # and a channel for the service's one event loop; with 256 kept, p99 537-550 ms at 320 clients
    # and 500 slow ones, with 512 501 ms). Idle ones close before the service's own 30 s channel
    # timeout, so nginx never sends on a connection the service is closing. The service takes 1,024.
    upstream_keepalive: int = 512
    upstream_idle_s: float = 20.0
    worker_connections: int = 4096
    per_address_connections: int = 64  # one ward device cannot take every connection
    user: str | None = None  # only when started as root (tests); the unit runs it unprivileged


def _error_locations() -> str:
    overrides = {494: 431, 497: 400}
    blocks = []
    for status, (code, message) in FRONT_ERRORS.items():
        body = json.dumps({"error": {"code": code, "message": message}}).replace("'", "\\'")
        blocks.append(f"        location = /_edge_error/{status} {{\n            internal;\n"
                      f"            default_type application/json;\n"
                      f"            add_header Cache-Control no-store always;\n"
                      f"            return {overrides.get(status, status)} '{body}';\n        }}\n")
    return "".join(blocks)


def render(settings: FrontSettings) -> str:
    """A complete nginx.conf (main context) for ``nginx -c FILE``."""
    s = settings
    state = s.state_dir.rstrip("/")
    # One literal URI per status: $status is already 400 for nginx's internal 494/497. 494 (headers
    # too large) answers 431 like the service; 497 (plain HTTP on the TLS port) answers 400.
    overrides = {494: "=431 ", 497: "=400 "}
    error_pages = "".join(f"        error_page {code} {overrides.get(code, '')}/_edge_error/{code};\n"
                          for code in FRONT_ERRORS)
    user = f"user {s.user};\n" if s.user else ""
    return f"""# Rendered by edge.service.front: the ward-network front of edge-triage. Edit the settings, not this file.
{user}worker_processes 1;  # a ward's traffic; the cores belong to inference
pid {state}/nginx.pid;
error_log {s.error_log} warn;
events {{
    worker_connections {s.worker_connections};
}}
http {{
    access_log off;
    server_tokens off;
    default_type application/json;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;

    # Slow clients: nginx, not a service thread, waits for headers and body, and only so long.
    client_header_timeout {s.header_timeout_s:g}s;
    client_body_timeout {s.body_timeout_s:g}s;
    send_timeout {s.send_timeout_s:g}s;
    keepalive_timeout {s.keepalive_timeout_s:g}s;
    keepalive_requests 10000;
    reset_timedout_connection on;
    client_max_body_size {s.max_body_bytes};
    client_body_buffer_size {s.max_body_bytes};
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    limit_conn_zone $binary_remote_addr zone=per_address:1m;
    limit_conn per_address {s.per_address_connections};
    limit_conn_status 429;

    upstream edge_triage {{
        server {s.upstream};
        keepalive {s.upstream_keepalive};
        keepalive_timeout {s.upstream_idle_s:g}s;
    }}

    server {{
        listen {s.listen} ssl;
        ssl_certificate {s.cert};
        ssl_certificate_key {s.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:edge_tls:1m;
        ssl_session_timeout 1h;

{error_pages}
        location / {{
            proxy_pass http://edge_triage;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            # Replaces whatever the client sent: the service trusts this header from 127.0.0.1 only.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_request_buffering on;  # the whole body, checked for size, before the service sees it
            proxy_buffering on;  # a slow reader ties up nginx memory, not a service thread
            proxy_connect_timeout 2s;
            proxy_read_timeout {s.upstream_timeout_s:g}s;
            proxy_send_timeout {s.upstream_timeout_s:g}s;
            add_header Strict-Transport-Security "max-age=31536000" always;
        }}
{_error_locations()}    }}
}}
"""


def prepare_state_dir(settings: FrontSettings) -> None:
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        Path(settings.state_dir, name).mkdir(parents=True, exist_ok=True, mode=0o700)


def make_certificate(directory: Path, name: str, days: int = 825) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (used when the hospital issues none), made at install
    with openssl; the key is 0600 in a 0700 directory. Existing files are kept."""
    from edge.service.private_files import private_dir

    private_dir(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    old_umask = os.umask(0o077)
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", str(days), "-subj", f"/CN={name}", "-addext",
                        f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    finally:
        os.umask(old_umask)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)  # public
    return cert, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.service.front", description="The nginx front for the ward network.")
    sub = parser.add_subparsers(dest="command", required=True)
    cert = sub.add_parser("cert", help="make a self-signed certificate when the hospital issues none")
    cert.add_argument("--dir", required=True)
    cert.add_argument("--name", required=True, help="the host name ward browsers use")
    out = sub.add_parser("render", help="write nginx.conf for the front")
    out.add_argument("--out", required=True)
    for name, value in asdict(FrontSettings()).items():
        if name != "user":
            out.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    if args.command == "cert":
        paths = make_certificate(Path(args.dir), args.name)
        print(f"certificate {paths[0]}, key {paths[1]}")
        return 0
    settings = FrontSettings(**{k: v for k, v in vars(args).items() if k in FrontSettings.__dataclass_fields__})
    Path(args.out).write_text(render(settings), encoding="utf-8")
    print(f"wrote {args.out}; check it with `nginx -t -c {args.out}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
