"""What the HTTP server layer may write to the journal: never text a client sent.

Waitress logs some messages with request text in them — the path of a request whose client went
away or whose handler raised, and the value of a malformed ``X-Forwarded-*``/``Forwarded`` header
(only the trusted proxy's, i.e. anything on 127.0.0.1: the nginx front, the kiosk, any local
process). A path or a header can carry anything, a patient's name included, so those messages
keep their fixed part and lose the client's text. The rest of waitress's messages (socket errors,
thread counts, the queue) hold none.
"""

from __future__ import annotations

import logging

WAITRESS_LOGGER = "waitress"
# message prefix -> what is logged instead (no arguments)
WITHHELD = {
    "Client disconnected while serving": "Client disconnected while serving a request (path withheld)",
    "Exception while serving": "Exception while serving a request (path withheld)",
    "Malformed proxy header": "Malformed proxy header from a trusted proxy (header value withheld); answered 400",
    "Unknown Forwarded token": "Unknown Forwarded token (withheld)",
}


class WithholdRequestText(logging.Filter):
    """Rewrites waitress's records that would carry request text (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        for prefix, fixed in WITHHELD.items():
            if message.startswith(prefix):
                record.msg, record.args = fixed, ()
                break
        return True


def withhold_request_text() -> None:
    """Install the filter on waitress's logger (once; later calls do nothing)."""
    logger = logging.getLogger(WAITRESS_LOGGER)
    if not any(isinstance(f, WithholdRequestText) for f in logger.filters):
        logger.addFilter(WithholdRequestText())
