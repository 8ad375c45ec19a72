"""Resolve where a stream starts: `Last-Event-ID` (wins) or `?fromSeq=`, else 0.

`Last-Event-ID` wins because a browser re-sends the original URL (with its old fromSeq) on every
reconnect, while the header carries the last id it actually received. Pure, so it is unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_SEQ", "Cursor", "CursorError", "parse_seq", "resolve_cursor"]

MAX_SEQ = 2**53  # the largest integer a JavaScript client can hold exactly
_DIGITS = re.compile(r"^[0-9]{1,20}$")


class CursorError(ValueError):
    """A fromSeq or Last-Event-ID value that is not a sequence number (answered with 400)."""


@dataclass(frozen=True)
class Cursor:
    value: int  # the last seq the client has; the stream sends seq > value
    from_seq: str | None  # raw query parameter, for the `stream-run` log line
    last_event_id: str | None  # raw header
    source: str  # "last-event-id" | "fromSeq" | "none"

    @property
    def is_resume(self) -> bool:
        return self.value > 0


def parse_seq(raw: str, what: str) -> int:
    text = raw.strip()
    if text.startswith("-") and _DIGITS.match(text[1:]):
        raise CursorError(f"{what} must be a non-negative integer, got {raw!r}")
    if not _DIGITS.match(text):
        raise CursorError(f"{what} must be a non-negative integer, got {raw!r}")
    value = int(text)
    if value > MAX_SEQ:
        raise CursorError(f"{what} must be at most 2**53, got {raw!r}")
    return value


def resolve_cursor(from_seq: str | None, last_event_id: str | None) -> Cursor:
    """Both inputs are raw strings (None when absent); an empty header counts as absent."""
    if last_event_id is not None and last_event_id.strip() != "":
        return Cursor(parse_seq(last_event_id, "Last-Event-ID"), from_seq, last_event_id, "last-event-id")
    if from_seq is not None:
        return Cursor(parse_seq(from_seq, "fromSeq"), from_seq, last_event_id, "fromSeq")
    return Cursor(0, None, last_event_id, "none")
