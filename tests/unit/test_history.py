from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.history import (
    ConnClosed, ConnOpened, FaultWindow, Frame, Heartbeat, History, Op, Record, by_connection, by_run, of_kind,
    pair_ops, record_from_dict,
)

SAMPLES: list[Record] = [
    Op(0, 1.0, "p0", "invoke", "append", {"run_id": "r1", "type": "RunStep"}, 100.0),
    Op(1, 1.5, "p0", "info", "append", {"run_id": "r1"}, 100.5, "ReadTimeout()", ref=0),
    ConnOpened("c0#0", "c0", "r1", 3, "5", 200, 100.0, 1.0),
    Frame("c0#0", "c0", "r1", 6, "RunStep", 99.9, 100.1, 1.1),
    Heartbeat("c0#0", "c0", "r1", 100.2, 1.2, "heartbeat"),
    ConnClosed("c0#0", "c0", "r1", "eof", 100.3, 1.3, 6, None),
    FaultWindow("partition", "sse", 1.0, 2.0, 100.0, 101.0, {"toxic": "timeout"}),
]


@pytest.mark.parametrize("rec", SAMPLES, ids=lambda r: r.kind)
def test_record_round_trips_through_json(rec: Record) -> None:
    data = json.loads(json.dumps(rec.to_dict()))
    assert record_from_dict(data) == rec


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown history record kind"):
        record_from_dict({"kind": "nope"})


def test_cursor_prefers_last_event_id() -> None:
    opened = SAMPLES[2]
    assert isinstance(opened, ConnOpened) and opened.cursor == 5
    assert ConnOpened("c", "c", "r", 3, None, 200, 0, 0).cursor == 3
    assert ConnOpened("c", "c", "r", None, None, 200, 0, 0).cursor == 0
    assert ConnOpened("c", "c", "r", 3, "junk", 200, 0, 0).cursor == 3


def test_save_and_load_jsonl(tmp_path: Path) -> None:
    h = History(SAMPLES)
    path = tmp_path / "history.jsonl"
    h.save(path)
    assert len(path.read_text().splitlines()) == len(SAMPLES)
    assert History.load(path).records == tuple(SAMPLES)


def test_op_indexes_are_gapless_across_threads() -> None:
    h = History()
    def work(p: int) -> None:
        for _ in range(200):
            h.op(f"p{p}", "invoke", "read")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(op.index for op in of_kind(h, Op)) == list(range(1600))


def test_loaded_history_continues_op_indexes() -> None:
    h = History(SAMPLES)
    assert h.op("p1", "invoke", "read").index == 2


def test_fault_window_is_recorded_even_when_the_block_raises() -> None:
    h = History()
    with pytest.raises(RuntimeError), h.fault("kill", "api", {"signal": 9}):
        raise RuntimeError("boom")
    (fw,) = of_kind(h, FaultWindow)
    assert fw.name == "kill" and fw.end is not None and fw.end >= fw.start and fw.params == {"signal": 9}


def test_filters() -> None:
    h = History(SAMPLES + [Frame("c1#0", "c1", "r2", 1, "RunStep", None, 0, 0)])
    assert len(by_run(h, "r1")) == 6  # ops carry run_id in their value; the fault names no run
    assert [r.kind for r in by_connection(h, "c0#0")] == ["conn_open", "frame", "heartbeat", "conn_close"]
    assert len(of_kind(h, Frame)) == 2


def test_pair_ops_by_ref_and_by_process() -> None:
    ops = [
        Op(0, 0, "p", "invoke", "append", {}), Op(1, 0, "p", "invoke", "append", {}),
        Op(2, 0, "p", "ok", "append", {}, ref=1), Op(3, 0, "p", "fail", "append", {}, ref=0),
        Op(4, 0, "q", "invoke", "read"), Op(5, 0, "q", "ok", "read"), Op(6, 0, "z", "invoke", "read"),
    ]
    pairs = {inv.index: (done.index if done else None) for inv, done in pair_ops(ops)}
    assert pairs == {0: 3, 1: 2, 4: 5, 6: None}
