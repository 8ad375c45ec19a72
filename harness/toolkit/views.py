"""What clients received so far, read off the history: the views scenarios wait on and assert on.

Built on the checkers' own grouping of records into connections, so a scenario's "what q0 got" is the
same thing the checkers judge. Filters: the run, one consumer by name, or consumers by name prefix
(`prefix="late"`: the consumers started as `late0`, `late1`, ...)."""
from __future__ import annotations

from dataclasses import dataclass

from harness.checks import Conn, connections
from harness.history import Frame, History

__all__ = ["Resumption", "conns", "frames", "heartbeats", "resumptions", "seqs"]

ENDED_WITH_RUN = frozenset({"terminal", "terminal_open", "204"})  # a connection that ended with its run, not cut


@dataclass(frozen=True)
class Resumption:
    """A connection that ended before its run did, and what its consumer did next."""

    conn: str
    consumer: str
    cursor: int | None  # the consumer's cursor when the connection ended
    next_cursor: int | None  # the cursor its next request asked for; None: it never asked again
    resumed_at: int | None  # the first seq it received after the cut; None: none


def conns(history: History, run_id: str | None = None, *, consumer: str | None = None,
          prefix: str | None = None) -> list[Conn]:
    """The SSE connections recorded so far, in the order they opened, filtered."""
    return [c for c in connections(history)
            if (run_id is None or c.run_id == run_id) and (consumer is None or c.consumer == consumer)
            and (prefix is None or c.consumer.startswith(prefix))]


def frames(history: History, run_id: str | None = None, *, consumer: str | None = None,
           prefix: str | None = None, type: str | None = None) -> list[Frame]:
    """Frames received with a seq (of event `type` only, when given), connection by connection
    (reconnects included, duplicates kept)."""
    return [f for c in conns(history, run_id, consumer=consumer, prefix=prefix) for f in c.frames
            if f.seq is not None and (type is None or f.type == type)]


def seqs(history: History, run_id: str | None = None, *, consumer: str | None = None,
         prefix: str | None = None) -> list[int]:
    """The seqs of `frames`, in arrival order per connection."""
    return [f.seq for f in frames(history, run_id, consumer=consumer, prefix=prefix) if f.seq is not None]


def heartbeats(history: History, run_id: str | None = None, *, consumer: str | None = None,
               prefix: str | None = None) -> int:
    """How many heartbeat comments the filtered connections received."""
    return sum(len(c.heartbeats) for c in conns(history, run_id, consumer=consumer, prefix=prefix))


def resumptions(history: History, run_id: str | None = None) -> list[Resumption]:
    """Every connection cut before its run ended, with the consumer's cursor then and how it resumed."""
    all_conns = conns(history, run_id)
    out = []
    for i, conn in enumerate(all_conns):
        if conn.closed is None or conn.closed.reason in ENDED_WITH_RUN:
            continue
        later = [c for c in all_conns[i + 1:] if c.consumer == conn.consumer]
        resumed_at = next((f.seq for c in later for f in c.frames if f.seq is not None), None)
        out.append(Resumption(conn.conn, conn.consumer, conn.closed.last_seq, later[0].cursor if later else None,
                              resumed_at))
    return out
