"""systemd readiness and watchdog notifications (sd_notify) in pure Python.

systemd hands a ``Type=notify`` service the path of a datagram socket in ``$NOTIFY_SOCKET``;
a leading ``@`` means the Linux abstract namespace. Every call is a no-op when the variable is
unset (running in a terminal, under pytest, in a container without systemd), so callers never
need to ask whether they run under systemd.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "ready", "status", "watchdog", "stopping", "watchdog_interval", "is_enabled"]


def _socket_address() -> str | bytes | None:
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):
        # Abstract namespace: the kernel wants a leading NUL byte instead of '@'.
        return b"\0" + path[1:].encode()
    if path.startswith("/"):
        return path
    return None  # vsock or other transports are not used on our boards


def is_enabled() -> bool:
    """True when a notification socket is configured (we run under systemd Type=notify)."""
    return _socket_address() is not None


def notify(message: str) -> bool:
    """Send one newline-separated ``KEY=VALUE`` message; True if it was sent.

    Never raises: a lost notification must not take the triage service down (systemd's own
    timeouts turn a lost READY or WATCHDOG into a restart, which is the correct fail-safe).
    """
    address = _socket_address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def _one_line(text: str) -> str:
    # STATUS must stay a single line or systemd would parse the rest as further assignments.
    return " ".join(text.split())


def ready(status_text: str | None = None) -> bool:
    """Tell systemd the service is up (model loaded and warmed)."""
    message = "READY=1"
    if status_text:
        message += f"\nSTATUS={_one_line(status_text)}"
    return notify(message)


def status(status_text: str) -> bool:
    """Free-form status shown by ``systemctl status`` (no patient data, ever)."""
    return notify(f"STATUS={_one_line(status_text)}")


def watchdog() -> bool:
    """Keep-alive ping; send only when the service's own health check passed."""
    return notify("WATCHDOG=1")


def stopping(status_text: str | None = None) -> bool:
    """Tell systemd a clean shutdown has begun."""
    message = "STOPPING=1"
    if status_text:
        message += f"\nSTATUS={_one_line(status_text)}"
    return notify(message)


def watchdog_interval() -> float | None:
    """Seconds between required pings (``$WATCHDOG_USEC``), or None if no watchdog is set for us.

    Like ``sd_watchdog_enabled``: if ``$WATCHDOG_PID`` is set it must be our pid, otherwise the
    watchdog belongs to another process (e.g. a parent shell) and we must not ping it.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    try:
        interval_usec = int(usec)
    except ValueError:
        return None
    if interval_usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return interval_usec / 1_000_000
