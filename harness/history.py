"""The history: every request, SSE connection, frame, heartbeat and fault window, as plain data.

Records are frozen dataclasses with ``to_dict`` / ``from_dict`` so a failed run can be saved as JSONL
and re-checked offline. Times come in two clocks: ``wall`` (epoch seconds, comparable with the
database's ``publishedAt`` and the service's log lines) and ``mono`` / ``time`` (``time.monotonic()``
seconds of the recording process, for intervals that must not jump with NTP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

OpType = Literal["invoke", "ok", "fail", "info"]
# "terminal": the server closed after RunFinished; "terminal_open": it had not closed when the consumer
# stopped waiting for it to.
CloseReason = Literal["terminal", "terminal_open", "eof", "error", "timeout", "204"]
CLOSE_REASONS: tuple[str, ...] = ("terminal", "terminal_open", "eof", "error", "timeout", "204")


class _Record:
    """Shared (de)serialisation: a record is its fields plus a ``kind`` tag."""

    kind: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every record is a dataclass: asdict and fields accept it

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        out.update(dataclasses.asdict(self))
        return out

    @classmethod
    def from_dict(cls: type[_R], data: dict[str, Any]) -> _R:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_R = TypeVar("_R", bound=_Record)


@dataclass(frozen=True)
class Op(_Record):
    """A Jepsen-style operation: an ``invoke`` and later one ``ok`` / ``fail`` / ``info`` completion.

    ``fail`` means the operation certainly did not take effect; an unknown outcome is ``info``.
    ``ref`` on a completion is the index of its invoke, so concurrent ops of one process still pair.
    """

    kind: ClassVar[str] = "op"
    index: int
    time: float
    process: str
    type: str
    f: str
    value: Any = None
    wall: float = 0.0
    error: str | None = None
    ref: int | None = None


@dataclass(frozen=True)
class ConnOpened(_Record):
    """An SSE request got an answer (``status``) or failed before one (``status`` None)."""

    kind: ClassVar[str] = "conn_open"
    conn: str
    consumer: str
    run_id: str
    from_seq: int | None
    last_event_id: str | None
    status: int | None
    wall: float
    mono: float

    @property
    def cursor(self) -> int:
        """The cursor the server should honour: ``Last-Event-ID`` wins over ``fromSeq``."""
        if self.last_event_id is not None:
            with contextlib.suppress(ValueError):
                return int(self.last_event_id)
        return self.from_seq if self.from_seq is not None else 0


@dataclass(frozen=True)
class Frame(_Record):
    """One SSE event received; ``seq`` is None when neither ``id`` nor data carried one."""

    kind: ClassVar[str] = "frame"
    conn: str
    consumer: str
    run_id: str
    seq: int | None
    type: str
    event_ts: float | None
    wall: float
    mono: float
    # What the wire said, for the content check: the `id:` field and the data's own seq, run id and
    # a digest of its payload (``harness.model.payload_digest``); None when absent.
    id_seq: int | None = None
    data_seq: int | None = None
    data_run_id: str | None = None
    payload_digest: str | None = None


@dataclass(frozen=True)
class Heartbeat(_Record):
    """An SSE comment line (the service's heartbeat)."""

    kind: ClassVar[str] = "heartbeat"
    conn: str
    consumer: str
    run_id: str
    wall: float
    mono: float
    text: str = ""


@dataclass(frozen=True)
class ConnClosed(_Record):
    """The end of a connection; ``last_seq`` is the consumer's cursor after it."""

    kind: ClassVar[str] = "conn_close"
    conn: str
    consumer: str
    run_id: str
    reason: str
    wall: float
    mono: float
    last_seq: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class FaultWindow(_Record):
    """A fault that was active from ``start`` to ``end`` (monotonic; ``*_wall`` epoch).

    ``end`` None means the fault was never healed within the history.
    """

    kind: ClassVar[str] = "fault"
    name: str
    target: str
    start: float
    end: float | None
    start_wall: float
    end_wall: float | None
    params: dict[str, Any] = field(default_factory=dict)


Record = Union[Op, ConnOpened, Frame, Heartbeat, ConnClosed, FaultWindow]
RECORD_TYPES: dict[str, type[Any]] = {
    t.kind: t for t in (Op, ConnOpened, Frame, Heartbeat, ConnClosed, FaultWindow)
}


def record_from_dict(data: dict[str, Any]) -> Record:
    try:
        cls = RECORD_TYPES[data["kind"]]
    except KeyError as exc:
        raise ValueError(f"unknown history record kind: {data.get('kind')!r}") from exc
    rec: Record = cls.from_dict(data)
    return rec


class History:
    """Thread-safe, append-only recorder. ``records`` is a snapshot tuple safe to hand to checkers."""

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._lock = threading.Lock()
        self._records: list[Record] = list(records)
        self._next_index = sum(1 for r in self._records if isinstance(r, Op))

    # Clocks are methods so tests can subclass History with a fake clock.
    def mono(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def append(self, record: Record) -> Record:
        with self._lock:
            self._records.append(record)
        return record

    def op(
        self,
        process: str,
        type: OpType,
        f: str,
        value: Any = None,
        error: str | None = None,
        ref: int | None = None,
    ) -> Op:
        """Record an operation event; the index is allocated under the lock so it is gapless."""
        with self._lock:
            rec = Op(self._next_index, self.mono(), process, type, f, value, self.wall(), error, ref)
            self._next_index += 1
            self._records.append(rec)
        return rec

    @contextlib.contextmanager
    def fault(self, name: str, target: str, params: dict[str, Any] | None = None) -> Iterator[None]:
        """Record a fault window around a block; recorded in ``finally`` so a crash still leaves it."""
        start, start_wall = self.mono(), self.wall()
        try:
            yield
        finally:
            self.append(FaultWindow(name, target, start, self.mono(), start_wall, self.wall(), dict(params or {})))

    @property
    def records(self) -> tuple[Record, ...]:
        with self._lock:
            return tuple(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def save(self, path: str | Path) -> None:
        save_jsonl(self.records, path)

    @classmethod
    def load(cls, path: str | Path) -> History:
        return cls(load_jsonl(path))


def save_jsonl(records: Iterable[Record], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_dict(), separators=(",", ":"), default=str) + "\n")


def load_jsonl(path: str | Path) -> list[Record]:
    with open(path, encoding="utf-8") as fh:
        return [record_from_dict(json.loads(line)) for line in fh if line.strip()]


# Filters: plain functions over any sequence of records, so checkers accept a History or a list.

def records_of(history: History | Iterable[Record]) -> tuple[Record, ...]:
    return history.records if isinstance(history, History) else tuple(history)


def of_kind(history: History | Iterable[Record], cls: type[_R]) -> list[_R]:
    return [r for r in records_of(history) if isinstance(r, cls)]


def by_run(history: History | Iterable[Record], run_id: str) -> list[Record]:
    return [r for r in records_of(history) if _run_of(r) == run_id]


def by_connection(history: History | Iterable[Record], conn: str) -> list[Record]:
    return [r for r in records_of(history) if getattr(r, "conn", None) == conn]


def _run_of(rec: Record) -> str | None:
    if isinstance(rec, Op):
        value = rec.value
        return value.get("run_id") if isinstance(value, dict) else None
    if isinstance(rec, FaultWindow):
        return None
    return rec.run_id


def pair_ops(ops: Iterable[Op]) -> list[tuple[Op, Op | None]]:
    """Match each invoke with its completion (None: still pending).

    A completion names its invoke by ``ref``; without one, Jepsen's rule applies: the next
    completion of the same process.
    """
    pending: dict[str, Op] = {}
    pairs: list[tuple[Op, Op | None]] = []
    slots: dict[int, int] = {}
    for op in ops:
        if op.type == "invoke":
            pending[op.process] = op
            slots[op.index] = len(pairs)
            pairs.append((op, None))
            continue
        inv_index = op.ref if op.ref is not None else getattr(pending.get(op.process), "index", None)
        if inv_index is None or inv_index not in slots:
            continue
        slot = slots.pop(inv_index)
        pairs[slot] = (pairs[slot][0], op)
        if pending.get(op.process) is pairs[slot][0]:
            del pending[op.process]
    return pairs


__all__ = [
    "CLOSE_REASONS",
    "CloseReason",
    "ConnClosed",
    "ConnOpened",
    "FaultWindow",
    "Frame",
    "Heartbeat",
    "History",
    "Op",
    "OpType",
    "Record",
    "by_connection",
    "by_run",
    "load_jsonl",
    "of_kind",
    "pair_ops",
    "record_from_dict",
    "records_of",
    "save_jsonl",
]
