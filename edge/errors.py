"""Errors as data: a machine code, a human message that says how to fix it, and where it applies.

Messages never contain patient data: they name the field, never echo its value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class EdgeError(Exception):
    """An error the caller can act on.

    ``code`` is stable and machine-readable (``out_of_range``, ``bundle_hash_mismatch``…);
    ``message`` says what is wrong and how to fix it; ``field`` names the input field, if any.
    """

    code: str
    message: str
    field: str | None = None
    http_status: int = 400
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


class CaseError(EdgeError):
    """The triage case (input) is invalid."""


class BundleError(EdgeError):
    """A model bundle is missing, corrupt or inconsistent."""

    def __init__(self, code: str, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("http_status", 500)
        super().__init__(code, message, **kwargs)
