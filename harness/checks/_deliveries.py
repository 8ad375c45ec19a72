"""Shared views over the history for the checkers: connections and per-consumer sessions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checks._result import HistoryLike, Result, UNKNOWN, merge_valid
from harness.model import TERMINAL_TYPE, RunSnapshot, Snapshot
from harness.history import ConnClosed, ConnOpened, FaultWindow, Frame, Heartbeat, Op, Record, of_kind, pair_ops, records_of

MAX_LISTED = 10  # evidence lists are cut here: a counterexample should be readable
# Close reasons that mean the server ended the stream, so the consumer had no reason to ask again:
# "terminal_open" too, since the consumer stops on the RunFinished frame the server sent.
SERVER_ENDS = frozenset({"eof", "204", "terminal", "terminal_open"})


@dataclass
class Conn:
    """Everything recorded about one SSE connection, in record order."""

    conn: str
    consumer: str
    run_id: str
    opened: ConnOpened | None = None
    frames: list[Frame] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    closed: ConnClosed | None = None

    @property
    def cursor(self) -> int:
        return self.opened.cursor if self.opened else 0

    @property
    def status(self) -> int | None:
        return self.opened.status if self.opened else None

    @property
    def got_204(self) -> bool:
        return self.status == 204 or (self.closed is not None and self.closed.reason == "204")

    def terminal_frame(self, run: RunSnapshot | None) -> Frame | None:
        """The frame that ends this connection's obligations: the first ``RunFinished`` at the database's
        terminal seq; without a snapshot of the run, the first frame that says ``RunFinished``. A frame
        that merely claims the terminal at another seq ends nothing (the content check fails it)."""
        return next((f for f in self.frames if f.type == TERMINAL_TYPE and f.seq is not None
                     and (run is None or f.seq == run.terminal_seq)), None)

    @property
    def ended_by_server(self) -> bool:
        """The server ended this connection: closed it (after a terminal or not) or answered 204."""
        return self.closed is not None and self.closed.reason in SERVER_ENDS


def connections(history: HistoryLike | Iterable[Record]) -> list[Conn]:
    """Connections in the order they first appear in the history."""
    conns: dict[str, Conn] = {}
    for rec in records_of(history):
        if not isinstance(rec, (ConnOpened, Frame, Heartbeat, ConnClosed)):
            continue
        c = conns.setdefault(rec.conn, Conn(rec.conn, rec.consumer, rec.run_id))
        if isinstance(rec, ConnOpened):
            c.opened = rec
        elif isinstance(rec, Frame):
            c.frames.append(rec)
        elif isinstance(rec, Heartbeat):
            c.heartbeats.append(rec)
        else:
            c.closed = rec
    return list(conns.values())


def terminal_committed_at(history: HistoryLike | Iterable[Record], snapshot: Snapshot | None) -> dict[str, float]:
    """Per run, the earliest harness wall time by which its terminal event was certainly committed: an
    ok cancel or ``RunFinished`` append completed, a client received the run's ``RunFinished`` (at the
    database's terminal seq), or the row's ``publishedAt`` on the harness clock plus the offset's
    uncertainty (the outbox publishes committed rows only)."""
    known: dict[str, float] = {}

    def note(run_id: str, wall: float) -> None:
        known[run_id] = min(wall, known.get(run_id, wall))

    records = records_of(history)
    for invoke, done in pair_ops(of_kind(records, Op)):
        value = invoke.value if isinstance(invoke.value, dict) else {}
        ends_run = invoke.f == "cancel" or (invoke.f == "append" and value.get("type") == TERMINAL_TYPE)
        if done is not None and done.type == "ok" and ends_run and value.get("run_id"):
            note(str(value["run_id"]), done.wall)
    for conn in connections(records):
        term = conn.terminal_frame(run_of(snapshot, conn.run_id))
        if term is not None:
            note(conn.run_id, term.wall)
    if snapshot is not None:
        for run in snapshot.runs.values():
            row = next((e for e in run.events if e.type == TERMINAL_TYPE), None)
            if row is not None and row.published_at is not None:
                note(run.run_id, snapshot.to_wall(row.published_at) + (snapshot.clock_uncertainty_s or 0.0))
    return known


def sessions(conns: Iterable[Conn]) -> dict[tuple[str, str], list[Conn]]:
    """Connections grouped by (consumer, run): one subscriber's life across reconnects."""
    out: dict[tuple[str, str], list[Conn]] = {}
    for c in conns:
        out.setdefault((c.consumer, c.run_id), []).append(c)
    return out


def fault_windows(history: HistoryLike) -> list[FaultWindow]:
    return [r for r in records_of(history) if isinstance(r, FaultWindow)]


def run_of(snapshot: Snapshot | None, run_id: str) -> RunSnapshot | None:
    return snapshot.runs.get(run_id) if snapshot is not None else None


def publish_time(snapshot: Snapshot | None, run_id: str, seq: int) -> float | None:
    """The row's ``publishedAt`` on the history's wall clock; None when there is no row or it is not
    published. The database is the truth: the service's own log lines never stand in for it."""
    row = run.event(seq) if (run := run_of(snapshot, run_id)) is not None else None
    if snapshot is None or row is None or row.published_at is None:
        return None
    return snapshot.to_wall(row.published_at)


@dataclass(frozen=True)
class Delivery:
    seq: int
    conn: str
    wall: float


def duplicate_deliveries(session: list[Conn]) -> tuple[list[dict[str, Any]], dict[int, list[Delivery]]]:
    """Deliveries of a seq the consumer already had and did not ask for again.

    A connection with cursor ``c`` asks for every seq above ``c``: a re-delivery there (a replay the
    consumer requested by resuming from an older cursor) is not a duplicate; a seq at or below ``c``
    that was delivered before, or a seq twice on one connection, is.
    """
    delivered: dict[int, list[Delivery]] = {}
    dups: list[dict[str, Any]] = []
    for conn in session:
        seen_here: set[int] = set()
        for fr in conn.frames:
            if fr.seq is None:
                continue
            earlier = delivered.get(fr.seq)
            if earlier and (fr.seq <= conn.cursor or fr.seq in seen_here):
                dups.append(_dup_evidence(conn, fr, earlier[-1]))
            seen_here.add(fr.seq)
            delivered.setdefault(fr.seq, []).append(Delivery(fr.seq, conn.conn, fr.wall))
    return dups, delivered


def _dup_evidence(conn: Conn, fr: Frame, first: Delivery) -> dict[str, Any]:
    return {
        "consumer": conn.consumer,
        "run_id": conn.run_id,
        "seq": fr.seq,
        "conn": conn.conn,
        "cursor": conn.cursor,
        "wall": fr.wall,
        "previous_conn": first.conn,
        "previous_wall": first.wall,
    }


def combine(per_key: Mapping[str, Result], **extra: Any) -> Result:
    """Fold per-item results: worst verdict, first failure as the counterexample, short lists."""
    valid = merge_valid(r.valid for r in per_key.values())
    fails = [{"key": k, **r.evidence} for k, r in per_key.items() if r.valid is False]
    unknowns = [{"key": k, **r.evidence} for k, r in per_key.items() if r.valid == UNKNOWN]
    evidence: dict[str, Any] = {"checked": len(per_key), **extra}
    if fails:
        evidence.update(counterexample=fails[0], failures=fails[:MAX_LISTED], failure_count=len(fails))
    if unknowns:
        evidence.update(unknowns=unknowns[:MAX_LISTED], unknown_count=len(unknowns))
    return Result(valid, evidence)


def overlaps_fault(start: float, end: float, faults: Iterable[FaultWindow], settle: float = 0.0,
                   wall: bool = False) -> bool:
    """Whether [start, end] touches a fault window (extended by ``settle`` after it heals)."""
    for fw in faults:
        f_start = fw.start_wall if wall else fw.start
        f_end = fw.end_wall if wall else fw.end
        if start <= (float("inf") if f_end is None else f_end + settle) and end >= f_start:
            return True
    return False


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """[1, 2, 3, 7] -> [[1, 3], [7, 7]]: long loss lists stay readable."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out
