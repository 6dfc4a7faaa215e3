"""Who may use the pages, and proof that a post came from our own page.

- Every browser gets a signed session cookie (HttpOnly, SameSite=Strict) holding a random id.
  The CSRF token is an HMAC of that id: the page carries it in a meta tag (or a hidden form
  field) and sends it back in the ``X-CSRF-Token`` header; a cross-site page can read neither.
- Staff board and status (pages and JSON) are open to loopback clients (the device's own
  screen). From another host they need the service token: as ``Authorization: Bearer`` (machine
  clients; no CSRF, since browsers never attach that header on their own) or once through the
  sign-in form, which marks the signed session as staff for one shift.
- Pages are served with a Content-Security-Policy that allows only our own scripts and styles.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "edge_web"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Pages and JSON show patient data: never keep them in a shared device's cache.
    "Cache-Control": "no-store",
}


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class WebSession:
    sid: str
    staff: bool = False
    fresh: bool = False  # not yet sent to the browser


class SessionSigner:
    def __init__(self, secret: str | bytes | None, max_age_s: float) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(self.secret, salt="edge-web-session")

    def load(self, request: Request) -> WebSession:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data: Any = self._serializer.loads(raw, max_age=self.max_age_s)
                if isinstance(data, dict) and isinstance(data.get("sid"), str):
                    return WebSession(sid=data["sid"], staff=bool(data.get("staff")))
            except BadSignature:
                pass
        return WebSession(sid=secrets.token_urlsafe(18), fresh=True)

    def save(self, response: Response, session: WebSession) -> None:
        value = self._serializer.dumps({"sid": session.sid, "staff": session.staff})
        response.set_cookie(COOKIE, value, max_age=int(self.max_age_s), httponly=True,
                            samesite="Strict", path="/")

    def csrf_token(self, session: WebSession) -> str:
        key = self.secret if isinstance(self.secret, bytes) else self.secret.encode()
        return hmac.new(key, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: WebSession, presented: str | None) -> bool:
        if session.fresh or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(session), presented)
