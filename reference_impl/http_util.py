"""HTTP plumbing shared by the api and the workers' ops listener: JSON errors and bounded bodies.

Every error is `{"error": "<message>"}` with a 4xx (503 during a database outage); bad input never
becomes a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["MAX_BODY_BYTES", "ApiError", "error_response", "parse_run_id", "read_json"]

MAX_BODY_BYTES = 64 * 1024
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class ApiError(Exception):
    """An error answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_run_id(raw: str) -> str:
    """Run ids are UUID strings; anything else is 400 (not 404), and the id is lower-cased."""
    if not _UUID.match(raw):
        raise ApiError(400, f"malformed run id {raw[:80]!r}: expected a UUID")
    return raw.lower()


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: Content-Length may be absent or lie
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
    return bytes(body)


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """The body as JSON; an empty body yields `empty` (None: the body is required)."""
    body = await read_body(request)
    if not body.strip():
        if empty is None:
            raise ApiError(400, "request body is required (JSON)")
        return empty
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not valid JSON") from None
