"""Invariant 1: every published event reaches each consumer exactly once, across reconnects, up to
the terminal event.

Per (consumer, run): the consumer's first cursor ``c0`` and its end ``T`` bound what it must have
received: every seq in ``(c0, T]`` that exists in the log, except seqs the consumer itself skipped by
resuming past them. ``T`` is the database's: the ``RunFinished`` it received at the run's terminal seq
(a frame that only claims ``RunFinished`` at another seq ends nothing), or the run's end when it got a
204, or when the server ended its stream (closed it, or sent what the consumer took for the terminal)
and the snapshot shows the run terminal and every event up to its end published: the server owed it
the whole tail, so a lost tail, or nothing at all, fails. A seq below the highest one received that
never arrived is lost for good (the consumer's cursor has moved past it), so that fails even without a
terminal. A 204 for a run the snapshot shows not terminal fails, and so does a consumer left with a
server close of such a run: only its last connection counts, since a server may close a live stream
(shutdown, a slow consumer) as long as the client's reconnect carries on. An end of stream inside a
fault window on the stream's path (``fault_scope``: the sse link, nginx, the API) is the fault's cut,
not the server's end.

A consumer that gave up on a connection the server kept open (timeout, deadline) while an event it was
owed had been published more than option ``withheld_after_s`` (default 5 s) before, on the database's
clock, fails too: the server withheld a published event from a live subscriber (a publish the bus never
carried), and no reconnect can be assumed to repair that. Otherwise a consumer that ended on its own
before its end is ``unknown`` when it must reach the terminal, else its prefix is judged: option ``require_terminal`` is a bool for every consumer,
a mapping of consumer-id prefixes to bools (the longest matching prefix wins; a consumer no prefix
matches must reach the terminal), or a list of the consumer-id prefixes that must (the others need
not), so a scenario relaxes only the consumers it cuts on purpose.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from harness.checks._deliveries import (
    Conn, combine, connections, duplicate_deliveries, fault_windows, overlaps_fault, publish_time, run_of, seq_ranges,
    sessions,
)
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions, RequireTerminal
from harness.checks.fault_scope import faults_on
from harness.model import RunSnapshot, Snapshot
from harness.history import FaultWindow

NAME = "exactly_once"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    groups = sessions(connections(history))
    if not groups:
        return unknown("no SSE connections in the history")
    cuts = faults_on(fault_windows(history), "stream")
    per: dict[str, Result] = {}
    for (consumer, run_id), conns in groups.items():
        result = check_session(conns, run_of(snapshot, run_id), requires_terminal(opts.require_terminal, consumer), cuts)
        if result.valid is not False:
            result = _withheld(conns, snapshot, opts.withheld_after_s, cuts) or result
        per[f"{consumer}/{run_id}"] = result
    return combine(per)


def _withheld(session: list[Conn], snapshot: Snapshot | None, after_s: float,
              cuts: Sequence[FaultWindow]) -> Result | None:
    """Events published long before the consumer gave up on its open, answered, last connection,
    and never delivered to it."""
    last = session[-1]
    if last.status != 200 or last.closed is None or last.ended_by_server or last.opened is None:
        return None
    if overlaps_fault(last.opened.mono, last.closed.mono, cuts):
        return None  # a fault on the stream's path may have held the bytes
    _, delivered = duplicate_deliveries(session)
    owed = [(seq, at) for seq in _owed_seqs(session, snapshot)
            if seq not in delivered and (at := publish_time(snapshot, last.run_id, seq)) is not None
            and max(at, last.opened.wall) + after_s < last.closed.wall]
    if not owed:
        return None
    seq, at = owed[0]
    return failed(problem="a published event was withheld from a live connection", consumer=last.consumer,
                  run_id=last.run_id, conn=last.conn, seq=seq, published_at=at, gave_up_at=last.closed.wall,
                  withheld_s=round(last.closed.wall - max(at, last.opened.wall), 3), lost=seq_ranges(s for s, _ in owed),
                  lost_count=len(owed))


def _owed_seqs(session: list[Conn], snapshot: Snapshot | None) -> list[int]:
    run = run_of(snapshot, session[0].run_id)
    if run is None:
        return []
    end = run.delivery_end if run.delivery_end is not None else run.last_seq
    return [e.seq for e in run.events if session[-1].cursor < e.seq <= end]


def requires_terminal(option: RequireTerminal, consumer: str) -> bool:
    """Whether ``consumer`` must reach the terminal under option ``require_terminal``."""
    if isinstance(option, Mapping):
        matches = [prefix for prefix in option if consumer.startswith(prefix)]
        return bool(option[max(matches, key=len)]) if matches else True
    if isinstance(option, Collection) and not isinstance(option, str):
        return any(consumer.startswith(prefix) for prefix in option)
    return bool(option)


def check_session(session: list[Conn], run: RunSnapshot | None, require_terminal: bool = True,
                  cuts: Sequence[FaultWindow] = ()) -> Result:
    base = {"consumer": session[0].consumer, "run_id": session[0].run_id, "connections": len(session)}
    server_ended = _server_ended(session[-1], cuts)
    premature = _premature_end(session, run, server_ended)
    if premature is not None:
        return failed(**base, **premature)
    dups, delivered = duplicate_deliveries(session)
    end, reached, skipped = _session_end(session, run, delivered)
    if not reached and server_ended and run is not None and _fully_published(run):
        end = max(end, run.delivery_end or 0)  # the server ended the stream: it owed the tail
    expected = set(range(session[0].cursor + 1, end + 1)) - skipped
    if run is not None:  # a seq missing from the log is invariant 5's failure, not a lost delivery
        expected &= {e.seq for e in run.events}
    lost = sorted(expected - delivered.keys())
    if lost or dups:
        ended = session[-1].closed.reason if session[-1].closed else None
        return failed(**base, **_loss_evidence(session, lost, delivered), duplicated=dups[:10],
                      duplicate_count=len(dups), ended=ended)
    if not reached and require_terminal:
        return unknown("consumer never reached the terminal event", **base, last_seq=max(delivered, default=None),
                       terminal_seq=run.terminal_seq if run else None)
    return passed(**base, delivered=len(delivered), end_seq=end)


def _server_ended(conn: Conn, cuts: Sequence[FaultWindow]) -> bool:
    closed = conn.closed
    if closed is None or not conn.ended_by_server:
        return False
    return not (closed.reason == "eof" and overlaps_fault(closed.mono, closed.mono, cuts))


def _premature_end(session: list[Conn], run: RunSnapshot | None, server_ended: bool) -> dict[str, Any] | None:
    """A 204, or a server close the consumer was left with, for a run the snapshot shows not terminal."""
    if run is None or run.delivery_end is not None:
        return None
    conn = next((c for c in session if c.got_204), session[-1] if server_ended else None)
    if conn is None:
        return None
    return {"problem": "the server ended the stream of a run that is not terminal", "conn": conn.conn,
            "reason": conn.closed.reason if conn.closed else None, "cursor": conn.cursor, "state": run.state,
            "last_seq": run.last_seq}


def _fully_published(run: RunSnapshot) -> bool:
    end = run.delivery_end
    return end is not None and all(e.published_at is not None for e in run.events if e.seq <= end)


def _session_end(session: list[Conn], run: RunSnapshot | None,
                 delivered: dict[int, Any]) -> tuple[int, bool, set[int]]:
    """(last seq the consumer must have, whether it reached the end, seqs it skipped by itself)."""
    skipped: set[int] = set()
    high = session[0].cursor
    for conn in session:
        if conn.cursor > high:  # the consumer resumed past seqs it never had: not the server's fault
            skipped |= set(range(high + 1, conn.cursor + 1))
        high = max([high, conn.cursor, *(f.seq for f in conn.frames if f.seq is not None)])
        term = conn.terminal_frame(run)
        if term is not None and term.seq is not None:
            return term.seq, True, skipped
        if conn.got_204:
            known = run.delivery_end if run is not None else None
            return max(conn.cursor, known or 0), True, skipped
    return max(delivered, default=session[0].cursor), False, skipped


def _loss_evidence(session: list[Conn], lost: list[int], delivered: dict[int, Any]) -> dict[str, Any]:
    if not lost:
        return {"lost": []}
    first = lost[0]
    before = max((s for s in delivered if s < first), default=None)
    after = min((s for s in delivered if s > first), default=None)
    return {
        "seq": first,
        "lost": seq_ranges(lost),
        "lost_count": len(lost),
        "received_before": _where(delivered, before),
        "received_after": _where(delivered, after),
    }


def _where(delivered: dict[int, Any], seq: int | None) -> dict[str, Any] | None:
    if seq is None:
        return None
    d = delivered[seq][0]
    return {"seq": seq, "conn": d.conn, "wall": d.wall}
