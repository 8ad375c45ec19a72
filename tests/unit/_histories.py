"""Helpers for checker tests: a history builder with a fake clock and Hypothesis generators."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from harness.model import EventRow, RunSnapshot, Snapshot
from harness.history import ConnClosed, ConnOpened, FaultWindow, Frame, Heartbeat, Op, Record

WALL0 = 1_700_000_000.0  # wall = WALL0 + mono: distinct clocks catch a checker mixing them up


@dataclass
class Builder:
    t: float = 0.0
    records: list[Record] = field(default_factory=list)
    _conns: dict[str, tuple[str, str]] = field(default_factory=dict)
    _index: int = 0

    def tick(self, dt: float = 0.01) -> Builder:
        self.t += dt
        return self

    @property
    def wall(self) -> float:
        return WALL0 + self.t

    def open(self, conn: str, consumer: str = "c0", run: str = "r1", from_seq: int | None = 0,
             status: int | None = 200, last_event_id: str | None = None) -> Builder:
        self._conns[conn] = (consumer, run)
        self.records.append(ConnOpened(conn, consumer, run, from_seq, last_event_id, status, self.wall, self.t))
        return self.tick()

    def frame(self, conn: str, seq: int, type: str = "RunStep", ts: float | None = None, **wire: Any) -> Builder:
        """``wire``: what the frame's ``id:`` and data said (``id_seq``, ``data_seq``, ``data_run_id``,
        ``payload_digest``), for the content check."""
        consumer, run = self._conns[conn]
        self.records.append(Frame(conn, consumer, run, seq, type, ts, self.wall, self.t, **wire))
        return self.tick()

    def frames(self, conn: str, seqs: range | list[int], last_type: str | None = None) -> Builder:
        seqs = list(seqs)
        for s in seqs:
            self.frame(conn, s, last_type if (last_type and s == seqs[-1]) else "RunStep")
        return self

    def heartbeat(self, conn: str) -> Builder:
        consumer, run = self._conns[conn]
        self.records.append(Heartbeat(conn, consumer, run, self.wall, self.t, "heartbeat"))
        return self.tick()

    def close(self, conn: str, reason: str = "eof", last_seq: int | None = None) -> Builder:
        consumer, run = self._conns[conn]
        self.records.append(ConnClosed(conn, consumer, run, reason, self.wall, self.t, last_seq))
        return self.tick()

    def op(self, type: str, f: str, value: Any = None, process: str = "p0", ref: int | None = None,
           error: str | None = None) -> Op:
        rec = Op(self._index, self.t, process, type, f, value, self.wall, error, ref)
        self._index += 1
        self.records.append(rec)
        self.tick()
        return rec

    def fault(self, name: str, start: float, end: float | None, target: str = "sse",
              params: dict[str, Any] | None = None) -> Builder:
        self.records.append(FaultWindow(name, target, start, end, WALL0 + start,
                                        None if end is None else WALL0 + end, params or {}))
        return self


def snapshot(last_seq: int, run: str = "r1", published_at: float | None = WALL0, terminal: bool = True,
             state: str | None = None, next_seq: int | None = None, ts: float | None = None) -> Snapshot:
    """A converged snapshot of one run with events 1..last_seq (the last one RunFinished)."""
    events = tuple(EventRow(s, "RunFinished" if terminal and s == last_seq else "RunStep", ts, published_at)
                   for s in range(1, last_seq + 1))
    state = state or ("succeeded" if terminal else "started")
    return Snapshot({run: RunSnapshot(run, state, last_seq, last_seq + 1 if next_seq is None else next_seq, events)},
                    publishes=None, taken_at=WALL0 + 1e6)


def ops_after_terminal(second_type: str, status: int | None = None, error: str | None = None,
                       f: str = "append") -> list[Record]:
    """A cancel of run r1 that succeeds (seq 3), then an ``f`` completed ``second_type`` (ok: seq 4)."""
    b = Builder()
    inv = b.op("invoke", "cancel", {"run_id": "r1", "type": "RunFinished"})
    b.op("ok", "cancel", {"run_id": "r1", "seq": 3, "status": 200}, ref=inv.index)
    inv = b.op("invoke", f, {"run_id": "r1", "type": "RunStep"})
    value = {"run_id": "r1", "status": status} if second_type != "ok" else {"run_id": "r1", "seq": 4, "status": 201}
    b.op(second_type, f, value, ref=inv.index, error=error)
    return b.records


def delivery_history(n: int, cuts: list[int], consumer: str = "c0", run: str = "r1",
                     probe: bool = False, mode: str = "from_seq") -> list[Record]:
    """A correct subscriber of a run with events 1..n (n is RunFinished) that reconnects after each
    cut (the seq it last received before the connection dropped)."""
    b = Builder(t=1.0)
    cursor, k = 0, 0
    for end in [*sorted(set(c for c in cuts if 0 <= c < n)), n]:
        conn = f"{consumer}#{k}"
        _open_resumed(b, conn, consumer, run, cursor, mode)
        b.frames(conn, range(cursor + 1, end + 1), last_type="RunFinished" if end == n else None)
        b.close(conn, "terminal" if end == n else "eof", end)
        cursor, k = end, k + 1
        b.tick(0.1)
    if probe:
        _open_resumed(b, f"{consumer}#{k}", consumer, run, cursor, mode, status=204)
        b.close(f"{consumer}#{k}", "204", cursor)
    return b.records


def _open_resumed(b: Builder, conn: str, consumer: str, run: str, cursor: int, mode: str,
                  status: int = 200) -> None:
    if mode == "from_seq":
        b.open(conn, consumer, run, from_seq=cursor, status=status)
    else:  # a browser: the URL keeps fromSeq=0 and the header carries the cursor
        b.open(conn, consumer, run, from_seq=0, status=status, last_event_id=str(cursor) if cursor else None)


@st.composite
def correct_deliveries(draw: st.DrawFn, max_events: int = 30) -> tuple[int, list[Record]]:
    n = draw(st.integers(min_value=2, max_value=max_events))
    cuts = draw(st.lists(st.integers(min_value=0, max_value=n - 1), max_size=6))
    consumers = draw(st.integers(min_value=1, max_value=3))
    mode = draw(st.sampled_from(["from_seq", "last_event_id"]))
    records: list[Record] = []
    for i in range(consumers):
        records += delivery_history(n, cuts if i == 0 else cuts[i:], consumer=f"c{i}", mode=mode)
    return n, records


def frame_positions(records: list[Record]) -> list[int]:
    return [i for i, r in enumerate(records) if isinstance(r, Frame)]


def with_frame(records: list[Record], at: int, frame: Frame) -> list[Record]:
    return records[:at] + [frame] + records[at:]


def replace_frame(records: list[Record], at: int, **changes: Any) -> list[Record]:
    out = list(records)
    out[at] = replace(out[at], **changes)
    return out
