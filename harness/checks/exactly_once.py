"""Invariant 1: every published event reaches each consumer exactly once, across reconnects, up to
the terminal event.

Per (consumer, run): the consumer's first cursor ``c0`` and its end ``T`` (the ``RunFinished`` seq it
received, or the run's terminal seq when it got a 204) bound what it must have received: every seq in
``(c0, T]`` that exists in the log, except seqs the consumer itself skipped by resuming past them.
A seq below the highest one received that never arrived is lost for good (the consumer's cursor has
moved past it), so that fails even without a terminal. A consumer that never reached its end is
``unknown`` (opts ``require_terminal``, default True; False judges the prefix only).
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import (
    Conn, combine, connections, duplicate_deliveries, run_of, seq_ranges, sessions,
)
from harness.checks._result import HistoryLike, Opts, Result, failed, passed, unknown
from harness.checks.snapshot import RunSnapshot, Snapshot

NAME = "exactly_once"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: Opts | None = None) -> Result:
    opts = opts or {}
    groups = sessions(connections(history))
    if not groups:
        return unknown("no SSE connections in the history")
    per = {
        f"{consumer}/{run_id}": check_session(conns, run_of(snapshot, run_id), bool(opts.get("require_terminal", True)))
        for (consumer, run_id), conns in groups.items()
    }
    return combine(per)


def check_session(session: list[Conn], run: RunSnapshot | None, require_terminal: bool = True) -> Result:
    dups, delivered = duplicate_deliveries(session)
    end, reached, skipped = _session_end(session, run, delivered)
    expected = set(range(session[0].cursor + 1, end + 1)) - skipped
    if run is not None:  # a seq missing from the log is invariant 5's failure, not a lost delivery
        expected &= {e.seq for e in run.events}
    lost = sorted(expected - delivered.keys())
    base = {"consumer": session[0].consumer, "run_id": session[0].run_id, "connections": len(session)}
    if lost or dups:
        return failed(**base, **_loss_evidence(session, lost, delivered), duplicated=dups[:10],
                      duplicate_count=len(dups))
    if not reached and require_terminal:
        return unknown("consumer never reached the terminal event", **base, last_seq=max(delivered, default=None),
                       terminal_seq=run.terminal_seq if run else None)
    return passed(**base, delivered=len(delivered), end_seq=end)


def _session_end(session: list[Conn], run: RunSnapshot | None,
                 delivered: dict[int, Any]) -> tuple[int, bool, set[int]]:
    """(last seq the consumer must have, whether it reached the end, seqs it skipped by itself)."""
    skipped: set[int] = set()
    high = session[0].cursor
    for conn in session:
        if conn.cursor > high:  # the consumer resumed past seqs it never had: not the server's fault
            skipped |= set(range(high + 1, conn.cursor + 1))
        high = max([high, conn.cursor, *(f.seq for f in conn.frames if f.seq is not None)])
        term = conn.terminal_frame
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
