"""Validation of an appended event's body `{"type", "payload"}` (pure)."""

from __future__ import annotations

import re
from typing import Any

from .events import OUTCOMES, TERMINAL_TYPE
from .http_util import ApiError

__all__ = ["validate_event"]

_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$")


def validate_event(body: Any) -> tuple[str, Any]:
    """Return (type, payload) or raise ApiError(400); payload defaults to {}."""
    if not isinstance(body, dict):
        raise ApiError(400, 'body must be a JSON object {"type", "payload"}')
    event_type = body.get("type")
    if not isinstance(event_type, str) or not _TYPE.match(event_type):
        raise ApiError(400, "type must be 1-100 characters [A-Za-z0-9_.:-], starting with a letter")
    payload = body.get("payload", {})
    if event_type == TERMINAL_TYPE:
        status = payload.get("status", "succeeded") if isinstance(payload, dict) else None
        if status not in OUTCOMES:
            raise ApiError(400, f"a RunFinished payload needs status in {'|'.join(OUTCOMES)}")
    return event_type, payload
