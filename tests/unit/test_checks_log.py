"""Invariants 3, 5, 6 and 7: checks that read the database snapshot and the request ops."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from _histories import WALL0, Builder, delivery_history, ops_after_terminal, snapshot
from harness.checks import append_after_terminal, gapless, outbox, time_travel
from harness.model import EventRow, PublishRecord, RunSnapshot, Snapshot, to_epoch
from harness.service_logs import publishes_from_log_lines


def _with_events(snap: Snapshot, events: tuple[EventRow, ...], **run_changes: Any) -> Snapshot:
    run = snap.runs["r1"]
    return replace(snap, runs={"r1": replace(run, events=events, **run_changes)})


def test_gapless_passes_and_names_the_first_gap() -> None:
    assert gapless.check([], snapshot(5)).valid is True
    snap = snapshot(5)
    snap = _with_events(snap, tuple(e for e in snap.runs["r1"].events if e.seq not in (2, 3)))
    ce = gapless.check([], snap).evidence["counterexample"]
    assert ce["seq"] == 2 and ce["missing"] == [[2, 3]]
    assert gapless.check([], None).valid == "unknown"


def test_gapless_repeated_seq() -> None:
    snap = snapshot(2)
    snap = _with_events(snap, snap.runs["r1"].events + (EventRow(2, "RunStep"),))
    assert gapless.check([], snap).evidence["counterexample"]["repeated"] == [2]


def test_outbox_converged_and_not() -> None:
    assert outbox.check([], snapshot(3)).valid is True
    ce = outbox.check([], snapshot(3, next_seq=2)).evidence["counterexample"]
    assert ce["backlog"] == 2 and ce["seq"] == 2
    unpublished = snapshot(3)
    unpublished = _with_events(unpublished, (*unpublished.runs["r1"].events[:2], EventRow(3, "RunFinished")))
    assert outbox.check([], unpublished).evidence["counterexample"]["seq"] == 3
    assert outbox.check([], None).valid == "unknown"


def test_outbox_unknown_while_a_fault_is_open() -> None:
    b = Builder().fault("partition", 1.0, None)
    assert outbox.check(b.records, snapshot(3)).valid == "unknown"
    b = Builder().fault("partition", 1.0, 2.0)
    assert outbox.check(b.records, snapshot(3)).evidence["snapshot_after_heal_s"] is not None


def test_time_travel_uses_published_at_not_the_logs() -> None:
    h = delivery_history(3, [])  # frames received around WALL0 + 1.0
    assert time_travel.check(h, snapshot(3, published_at=WALL0)).valid is True
    late = snapshot(3, published_at=WALL0 + 5.0)
    ce = time_travel.check(h, late).evidence["counterexample"]
    assert ce["seq"] == 1 and ce["early_by_s"] > 3.9
    # the database is the truth: log lines claiming seq 1..3 were published in time change nothing
    records = tuple(PublishRecord("r1", s, WALL0 + 0.5) for s in (1, 2, 3))
    assert time_travel.check(h, replace(late, publishes=records)).evidence["counterexample"]["seq"] == 1


def test_time_travel_unknown_without_a_snapshot_false_when_unpublished() -> None:
    h = delivery_history(3, [])
    assert time_travel.check(h, None).valid == "unknown"
    ce = time_travel.check(h, snapshot(3, published_at=None)).evidence["counterexample"]
    assert ce["problem"] == "received, but unpublished at the snapshot" and ce["seq"] == 1


def test_time_travel_tolerance() -> None:
    h = delivery_history(1, [])  # the only frame arrives at WALL0 + 1.01
    snap = snapshot(1, published_at=WALL0 + 1.02)  # 10 ms after: within the fallback tolerance
    assert time_travel.check(h, snap).valid is True
    measured = replace(snap, clock_offset_s=0.0, clock_uncertainty_s=0.001)  # 6 ms when the offset is measured
    assert time_travel.check(h, measured).valid is False
    assert time_travel.check(h, replace(measured, clock_offset_s=-0.02)).valid is True


def test_append_after_terminal() -> None:
    refused = ops_after_terminal("fail", 409, "Non-monotonic seq append: run r1 is already succeeded")
    assert append_after_terminal.check(refused, snapshot(3)).valid is True
    res = append_after_terminal.check(ops_after_terminal("ok"), snapshot(3))
    assert res.valid is False and res.evidence["counterexample"]["seq"] == 4
    assert append_after_terminal.check(ops_after_terminal("ok"), None).valid is False


def test_append_after_terminal_info_outcome() -> None:
    h = ops_after_terminal("info")
    assert append_after_terminal.check(h, None).valid == "unknown"
    # the log shows nothing after, but no refusal was seen either: the guard's answer is untested
    assert append_after_terminal.check(h, snapshot(3)).valid == "unknown"


def test_append_after_terminal_not_exercised_is_unknown() -> None:
    assert append_after_terminal.check(delivery_history(3, []), snapshot(3)).valid == "unknown"


def test_log_with_event_after_terminal_fails() -> None:
    snap = snapshot(3)
    snap = _with_events(snap, snap.runs["r1"].events + (EventRow(4, "RunStep", None, WALL0),), last_seq=4)
    ce = append_after_terminal.check([], snap).evidence["counterexample"]
    assert ce["seq"] == 4 and ce["terminal_seq"] == 3


def test_snapshot_round_trip_and_terminal_seq() -> None:
    snap = replace(snapshot(3), publishes=(PublishRecord("r1", 1, 2.0, 12.5, "RunStep"),))
    assert Snapshot.from_dict(snap.to_dict()) == snap
    assert RunSnapshot("r", "cancelled", 4, None, ()).terminal_seq == 4
    assert RunSnapshot("r", "started", 4, None, ()).terminal_seq is None


def test_publishes_from_log_lines() -> None:
    lines = [
        'logs/outbox.log:{"time":"2025-01-02 03:04:05.678Z","runId":"r1","msg":"metric.events_published",'
        '"component":"outbox-publisher","service":"outbox","level":"info","timestamp":1735787045.678,'
        '"seq":1,"type":"RunStep","lag_ms":12.5,"publishedAt":"2025-01-02T03:04:05.670Z"}',
        '{"msg":"metric.events_inserted","runId":"r1","seq":1}',
        "not json",
    ]
    (rec,) = publishes_from_log_lines(lines)
    assert rec == PublishRecord("r1", 1, 1735787045.67, 12.5, "RunStep")  # publishedAt, not the line's time


def test_to_epoch_formats() -> None:
    assert to_epoch("2025-01-02T03:04:05.5Z") == to_epoch("2025-01-02 03:04:05.500Z") == 1735787045.5
    assert to_epoch(3) == 3.0 and to_epoch("junk") is None and to_epoch(None) is None


def test_an_append_after_the_terminal_row_was_published_must_be_refused() -> None:
    """No client saw the end and no cancel was recorded: the terminal row's publishedAt alone proves the
    terminal committed (the outbox publishes committed rows only), so an append invoked after it and
    accepted fails, and one invoked before it is not judged."""
    b = Builder(t=5.0)
    inv = b.op("invoke", "append", {"run_id": "r1", "type": "RunStep"})
    b.op("ok", "append", {"run_id": "r1", "seq": 4, "status": 201}, ref=inv.index)
    snap = replace(snapshot(3, published_at=WALL0 + 1.0), clock_offset_s=0.0, clock_uncertainty_s=0.001)
    res = append_after_terminal.check(b.records, snap)
    assert res.valid is False and res.evidence["counterexample"]["problem"] == "append ok with a seq after the terminal"
    b2 = Builder(t=5.0)
    inv = b2.op("invoke", "append", {"run_id": "r1", "type": "RunStep"})
    b2.op("fail", "append", {"run_id": "r1", "status": 400}, ref=inv.index, error="bad request")
    after = append_after_terminal.check(b2.records, snap)
    assert after.evidence["counterexample"]["problem"] == "refused with another answer than the contract's"
    assert append_after_terminal.check(b2.records, replace(snap, clock_offset_s=10.0)).valid == "unknown"
