"""Invariant 4: the terminal event is last; the server closes the stream on it; a reconnect after it
gets 204.

Fails on: anything after ``RunFinished`` on the same connection (a frame, a heartbeat); a stream the
server had not closed when the consumer stopped reading after the terminal (close reason
``terminal_open``: the consumer reads on for a bounded window), unless a fault window on the stream's
path (``fault_scope``: a ``slow_close`` toxic on the sse link, say) held the close; a frame with a seq
above the run's terminal seq; a reconnect after the consumer received ``RunFinished`` that was not
answered 204; a 204 while the cursor is below the terminal seq (or the run is not finished in the
snapshot); a log whose ``RunFinished`` is not its last event. The terminal is the database's: a frame
that only claims ``RunFinished`` at another seq is no terminal here (the content check fails it). When
no reconnect after the terminal was answered 204, the 204 half is untested: ``unknown`` if option
``require_204_probe`` (default False), else counted in the evidence; a probe that got no answer (a
network fault) does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.checks._deliveries import Conn, combine, connections, fault_windows, overlaps_fault, run_of, sessions
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.checks.fault_scope import faults_on
from harness.model import RunSnapshot, Snapshot, TERMINAL_TYPE
from harness.history import FaultWindow, Frame

NAME = "terminal"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    groups = sessions(connections(history))
    per: dict[str, Result] = {}
    for run_id, run in (snapshot.runs.items() if snapshot else ()):
        per[f"log/{run_id}"] = check_log(run)
    probes = 0
    cuts = faults_on(fault_windows(history), "stream")
    for (consumer, run_id), conns in groups.items():
        result, n = check_session(conns, run_of(snapshot, run_id), cuts)
        per[f"{consumer}/{run_id}"] = result
        probes += n
    if not per:
        return unknown("no connections and no snapshot")
    out = combine(per, probes_after_terminal=probes)
    if out.valid is True and probes == 0 and opts.require_204_probe:
        return unknown("no reconnect after the terminal event was answered 204", **out.evidence)
    return out


def check_log(run: RunSnapshot) -> Result:
    terminals = [e.seq for e in run.events if e.type == TERMINAL_TYPE]
    if len(terminals) > 1:
        return failed(problem="more than one terminal event", run_id=run.run_id, seqs=sorted(terminals))
    if terminals and terminals[0] != max(e.seq for e in run.events):
        return failed(problem="terminal event is not the last in the log", run_id=run.run_id,
                      seq=terminals[0], last_seq=max(e.seq for e in run.events))
    return passed(run_id=run.run_id)


def check_session(session: list[Conn], run: RunSnapshot | None,
                  cuts: Sequence[FaultWindow] = ()) -> tuple[Result, int]:
    """Verdict for one consumer, and how many of its reconnects after the terminal were answered 204."""
    terminal_seq = run.delivery_end if run else None
    seen_terminal = False
    probes = 0
    for conn in session:
        problem = _after_terminal(conn) if seen_terminal else _before_terminal(conn, run, terminal_seq, cuts)
        probes += int(seen_terminal and conn.got_204)
        if problem is not None:
            return failed(**problem), probes
        term = conn.terminal_frame(run)
        if term is not None and term.seq is not None:
            seen_terminal = True
            terminal_seq = term.seq if terminal_seq is None else min(terminal_seq, term.seq)
    return passed(consumer=session[0].consumer, run_id=session[0].run_id, reached=seen_terminal), probes


def _before_terminal(conn: Conn, run: RunSnapshot | None, terminal_seq: int | None,
                     cuts: Sequence[FaultWindow]) -> dict[str, Any] | None:
    base = {"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "cursor": conn.cursor}
    term = conn.terminal_frame(run)
    if term is not None:
        problem = _after_the_terminal_frame(conn, term, cuts)
        if problem is not None:
            return {**problem, **base, "terminal_seq": term.seq}
    beyond = next((f for f in conn.frames if terminal_seq is not None and f.seq is not None
                   and f.seq > terminal_seq), None)
    if beyond is not None:
        return {"problem": "frame beyond the terminal seq", **base, "terminal_seq": terminal_seq,
                "seq": beyond.seq, "wall": beyond.wall}
    # Without a snapshot a first-contact 204 cannot be judged: the terminal seq is unknown.
    premature = conn.cursor < terminal_seq if terminal_seq is not None else run is not None
    if conn.got_204 and premature:
        return {"problem": "204 before the terminal event", **base, "terminal_seq": terminal_seq,
                "wall": conn.opened.wall if conn.opened else None}
    return None


def _after_the_terminal_frame(conn: Conn, term: Frame, cuts: Sequence[FaultWindow]) -> dict[str, Any] | None:
    """What the server did on the connection after it sent the terminal frame."""
    at = next(i for i, f in enumerate(conn.frames) if f is term)
    if at + 1 < len(conn.frames):
        after = conn.frames[at + 1]
        return {"problem": "frame after the terminal event", "seq": after.seq, "type": after.type, "wall": after.wall}
    beat = next((h for h in conn.heartbeats if h.mono > term.mono), None)
    if beat is not None:
        return {"problem": "heartbeat after the terminal event", "wall": beat.wall}
    closed = conn.closed
    if closed is not None and closed.reason == "terminal_open" and not overlaps_fault(term.mono, closed.mono, cuts):
        return {"problem": "the server kept the stream open after the terminal event", "wall": closed.wall,
                "error": closed.error}
    return None


def _after_terminal(conn: Conn) -> dict[str, Any] | None:
    if conn.status is None:
        return None  # the request never got an answer (network fault): nothing to judge
    if conn.got_204 and not conn.frames:
        return None
    first = conn.frames[0] if conn.frames else None
    return {"problem": "reconnect after the terminal event was not answered 204", "conn": conn.conn,
            "consumer": conn.consumer, "run_id": conn.run_id, "cursor": conn.cursor, "status": conn.status,
            "seq": first.seq if first else None, "wall": conn.opened.wall if conn.opened else None}
