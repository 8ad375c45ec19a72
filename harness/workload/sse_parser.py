"""A small, pure Server-Sent-Events line parser (WHATWG "event stream interpretation").

Unlike httpx-sse it reports comment lines (the service's heartbeats) as ``SSEComment`` and never
yields an event for a block without data (a comment-only block, or ``id:`` alone). Feed it lines
without their terminator, as ``httpx.Response.aiter_lines()`` gives them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None  # the last event id in force when this event was dispatched
    retry: int | None = None


@dataclass(frozen=True)
class SSEComment:
    text: str


SSEItem = Union[SSEEvent, SSEComment]


@dataclass
class SSEParser:
    """Incremental parser state; ``last_event_id`` survives across events like a browser's does."""

    last_event_id: str | None = None
    retry: int | None = None
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _started: bool = False

    def feed_line(self, line: str) -> list[SSEItem]:
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")  # a BOM may open the stream
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return [SSEComment(line[1:].removeprefix(" "))]
        name, _, value = line.partition(":")
        self._field(name, value.removeprefix(" "))
        return []

    def _field(self, name: str, value: str) -> None:
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        # unknown fields are ignored, as the spec says

    def _dispatch(self) -> list[SSEItem]:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:  # a block with no data dispatches nothing (the httpx-sse pitfall)
            return []
        return [SSEEvent("\n".join(data), event or "message", self.last_event_id, self.retry)]

    def feed_lines(self, lines: Iterable[str]) -> list[SSEItem]:
        return [item for line in lines for item in self.feed_line(line)]


def split_lines(text: str) -> list[str]:
    """Split raw stream text on CRLF, CR or LF (all three are line ends in SSE)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse(text: str) -> list[SSEItem]:
    """Parse a complete stream body; an unterminated last block is not dispatched (as in a browser)."""
    return SSEParser().feed_lines(split_lines(text))


__all__ = ["SSEComment", "SSEEvent", "SSEItem", "SSEParser", "parse", "split_lines"]
