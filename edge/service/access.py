"""Access control: loopback clients may triage without a token; any other client, and every admin
action (bundle reload, audit export), needs ``Authorization: Bearer <token>``.

The token lives in a file that only the service user may read (mode 0600 or stricter); a file
others can read is refused at start, because a leaked token lets anyone on the ward network
triage or swap the model. Comparison is constant-time. Proxy headers (X-Forwarded-For) are never
trusted: the appliance is reached directly.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import stat
from pathlib import Path

from edge.errors import EdgeError

MIN_TOKEN_CHARS = 16


class SecurityError(EdgeError):
    """Configuration that would leave the service unprotected."""


def read_token_file(path: str | Path) -> str:
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecurityError("token_file_missing", f"Token file {path} does not exist; create it with "
                            f"`umask 077; head -c 32 /dev/urandom | base64 > {path}`.", http_status=500) from None
    if not stat.S_ISREG(info.st_mode):
        raise SecurityError("token_file_invalid", f"Token file {path} is not a regular file.", http_status=500)
    if info.st_mode & 0o077:
        raise SecurityError(
            "token_file_permissions",
            f"Token file {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be readable by its owner only: "
            f"run `chmod 600 {path}`.", http_status=500)
    if info.st_uid != os.geteuid() and os.geteuid() != 0:
        raise SecurityError("token_file_owner", f"Token file {path} must be owned by the service user.", http_status=500)
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise SecurityError("token_too_short", f"The token in {path} must be at least {MIN_TOKEN_CHARS} characters.",
                            http_status=500)
    return token


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1024)  # a device's address, parsed once (every request asks)
def is_loopback_client(remote_addr: str | None) -> bool:
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class AccessPolicy:
    """Decides per request; ``token`` None means no token configured (loopback-only service)."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    @classmethod
    def from_config(cls, token_file: str | None, host: str) -> "AccessPolicy":
        token = read_token_file(token_file) if token_file else None
        if token is None and not is_loopback_host(host):
            raise SecurityError(
                "token_required",
                f"Binding to {host} exposes the service beyond this device; set token_file to a 0600 file "
                "holding a bearer token, or bind to 127.0.0.1.", http_status=500)
        return cls(token)

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def _token_matches(self, authorization: str | None) -> bool:
        if self._token is None or not authorization:
            return False
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token.encode())

    def token_ok(self, presented: str | None) -> bool:
        """The bare token (a sign-in form, a page's bearer header) matches the service's."""
        return bool(presented) and self._token_matches(f"Bearer {presented}")

    def check(self, remote_addr: str | None, authorization: str | None, *, admin: bool = False) -> None:
        """Raise 401 (no or bad credentials) or 403 (not allowed at all) unless the request may proceed."""
        if not admin and is_loopback_client(remote_addr):
            return
        if admin and self._token is None:
            raise SecurityError("admin_disabled", "Admin actions need a token; configure token_file to enable them.",
                                http_status=403)
        if self._token is None:
            raise SecurityError("forbidden", "Only clients on this device may call the service.", http_status=403)
        if not authorization:
            raise SecurityError("token_required", "Send 'Authorization: Bearer <token>'.", http_status=401)
        if not self._token_matches(authorization):
            raise SecurityError("token_invalid", "The bearer token is not valid.", http_status=401)
