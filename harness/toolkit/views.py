"""What clients received so far, read off the history: the views scenarios wait on and assert on.

Built on the checkers' own grouping of records into connections, so a scenario's "what q0 got" is the
same thing the checkers judge. Filters: the run, one consumer by name, or consumers by name prefix
(`prefix="late"`: the consumers started as `late0`, `late1`, ...)."""
from __future__ import annotations

from harness.checks._deliveries import Conn, connections
from harness.history import Frame, History

__all__ = ["conns", "frames", "heartbeats", "seqs"]


def conns(history: History, run_id: str | None = None, *, consumer: str | None = None,
          prefix: str | None = None) -> list[Conn]:
    """The SSE connections recorded so far, in the order they opened, filtered."""
    return [c for c in connections(history)
            if (run_id is None or c.run_id == run_id) and (consumer is None or c.consumer == consumer)
            and (prefix is None or c.consumer.startswith(prefix))]


def frames(history: History, run_id: str | None = None, *, consumer: str | None = None,
           prefix: str | None = None) -> list[Frame]:
    """Frames received with a seq, connection by connection (reconnects included, duplicates kept)."""
    return [f for c in conns(history, run_id, consumer=consumer, prefix=prefix) for f in c.frames
            if f.seq is not None]


def seqs(history: History, run_id: str | None = None, *, consumer: str | None = None,
         prefix: str | None = None) -> list[int]:
    """The seqs of `frames`, in arrival order per connection."""
    return [f.seq for f in frames(history, run_id, consumer=consumer, prefix=prefix) if f.seq is not None]


def heartbeats(history: History, run_id: str | None = None, *, consumer: str | None = None,
               prefix: str | None = None) -> int:
    """How many heartbeat comments the filtered connections received."""
    return sum(len(c.heartbeats) for c in conns(history, run_id, consumer=consumer, prefix=prefix))
