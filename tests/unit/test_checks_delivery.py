"""Invariants 1, 2, 4 and 10 on hand-written and generated delivery histories."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings, strategies as st

from _histories import WALL0, Builder, correct_deliveries, delivery_history, frame_positions, snapshot
from harness.checks import CheckOptions, duplicates, exactly_once, ordering, terminal
from harness.model import EventRow, RunSnapshot, Snapshot
from harness.history import ConnOpened, Frame, Record


def test_correct_history_with_reconnects_passes() -> None:
    h = delivery_history(10, [3, 7], probe=True)
    snap = snapshot(10)
    for mod in (exactly_once, ordering, terminal, duplicates):
        assert mod.check(h, snap).valid is True, mod.NAME
    assert terminal.check(h, snap).evidence["probes_after_terminal"] == 1


def test_resend_of_the_cursor_after_reconnect_is_a_duplicate() -> None:
    b = Builder()
    b.open("a", from_seq=0).frames("a", [1, 2, 3]).close("a", "error")
    b.open("b", from_seq=3).frames("b", [3, 4, 5], last_type="RunFinished").close("b", "terminal")
    res = exactly_once.check(b.records, snapshot(5))
    assert res.valid is False
    dup = res.evidence["counterexample"]["duplicated"][0]
    assert (dup["seq"], dup["conn"], dup["previous_conn"], dup["cursor"]) == (3, "b", "a", 3)
    assert duplicates.check(b.records, None).evidence["counterexample"]["seq"] == 3
    bad = ordering.check(b.records, None).evidence["counterexample"]
    assert (bad["conn"], bad["seq"], bad["problem"]) == ("b", 3, "first frame at or below the cursor")


def test_replay_requested_with_an_older_cursor_is_not_a_duplicate() -> None:
    b = Builder()
    b.open("a", from_seq=0).frames("a", [1, 2, 3]).close("a", "error")
    b.open("b", from_seq=1).frames("b", [2, 3, 4], last_type="RunFinished").close("b", "terminal")
    assert exactly_once.check(b.records, snapshot(4)).valid is True
    assert duplicates.check(b.records, None).valid is True


def test_skip_at_reconnect_is_a_loss_with_neighbours() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2]).close("a", "eof")
    b.open("b", from_seq=2).frames("b", [4, 5], last_type="RunFinished").close("b", "terminal")
    ce = exactly_once.check(b.records, snapshot(5)).evidence["counterexample"]
    assert ce["seq"] == 3 and ce["lost"] == [[3, 3]]
    assert ce["received_before"]["conn"] == "a" and ce["received_after"]["seq"] == 4
    bad = ordering.check(b.records, snapshot(5)).evidence["counterexample"]
    assert bad["expected_seq"] == 3 and bad["seq"] == 4


def test_consumer_that_never_reached_terminal_is_unknown_not_pass() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2, 3]).close("a", "timeout")
    res = exactly_once.check(b.records, snapshot(5))
    assert res.valid == "unknown"
    assert res.evidence["unknowns"][0]["terminal_seq"] == 5
    assert exactly_once.check(b.records, snapshot(5), CheckOptions(require_terminal=False)).valid is True


def test_hole_below_the_high_water_mark_fails_without_terminal() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2, 4]).close("a", "timeout")
    assert exactly_once.check(b.records, None).evidence["counterexample"]["seq"] == 3


def test_premature_204_loses_the_tail() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2]).close("a", "eof")
    b.open("b", from_seq=2, status=204).close("b", "204")
    assert exactly_once.check(b.records, snapshot(4)).evidence["counterexample"]["lost"] == [[3, 4]]
    ce = terminal.check(b.records, snapshot(4)).evidence["counterexample"]
    assert ce["problem"] == "204 before the terminal event" and ce["conn"] == "b"


def _cancelled_by_hand(published: int, last_seq: int) -> Snapshot:
    """The runbook's last resort: state cancelled, no RunFinished, seqs past `published` never published."""
    events = tuple(EventRow(s, "RunStep", None, WALL0 if s <= published else None) for s in range(1, last_seq + 1))
    return Snapshot({"r1": RunSnapshot("r1", "cancelled", last_seq, None, events)})


def test_a_run_cancelled_by_hand_ends_at_its_last_published_event() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2, 3]).close("a", "eof")
    b.open("b", from_seq=3, status=204).close("b", "204")
    assert exactly_once.check(b.records, _cancelled_by_hand(3, 6)).valid is True
    assert terminal.check(b.records, _cancelled_by_hand(3, 6)).valid is True
    # ... but a 204 that cuts off published events is still a loss.
    assert exactly_once.check(b.records, _cancelled_by_hand(4, 6)).evidence["counterexample"]["lost"] == [[4, 4]]
    assert terminal.check(b.records, _cancelled_by_hand(4, 6)).valid is False


def test_last_event_id_is_the_cursor() -> None:
    b = Builder()
    b.open("a").frames("a", [1, 2]).close("a", "eof")
    b.open("b", from_seq=0, last_event_id="2").frames("b", [3], last_type="RunFinished").close("b", "terminal")
    assert exactly_once.check(b.records, snapshot(3)).valid is True
    assert ordering.check(b.records, snapshot(3)).valid is True


def test_frame_after_terminal_and_reconnect_not_204() -> None:
    b = Builder()
    b.open("a").frame("a", 1).frame("a", 2, "RunFinished").frame("a", 3).close("a", "eof")
    assert terminal.check(b.records, None).evidence["counterexample"]["problem"] == "frame after the terminal event"
    b = Builder()
    b.open("a").frame("a", 1).frame("a", 2, "RunFinished").close("a", "terminal")
    b.open("b", from_seq=2, status=200).close("b", "eof")
    ce = terminal.check(b.records, None).evidence["counterexample"]
    assert ce["problem"].startswith("reconnect after the terminal") and ce["status"] == 200


def test_terminal_not_last_in_log() -> None:
    snap = snapshot(3)
    run = snap.runs["r1"]
    events = (replace(run.events[0], type="RunFinished"), *run.events[1:2], replace(run.events[2], type="RunStep"))
    snap = replace(snap, runs={"r1": replace(run, events=events)})
    ce = terminal.check([], snap).evidence["counterexample"]
    assert ce["problem"] == "terminal event is not the last in the log" and ce["seq"] == 1


def test_require_204_probe() -> None:
    h = delivery_history(3, [])
    assert terminal.check(h, snapshot(3)).valid is True
    assert terminal.check(h, snapshot(3), CheckOptions(require_204_probe=True)).valid == "unknown"


def test_duplicate_publishes_are_counted_not_failed() -> None:
    from harness.model import PublishRecord
    snap = replace(snapshot(3), publishes=(PublishRecord("r1", 1, 1.0), PublishRecord("r1", 1, 2.0),
                                           PublishRecord("r1", 2, 3.0)))
    res = duplicates.check(delivery_history(3, [1]), snap)
    assert res.valid is True and res.evidence["duplicate_publishes"]["republished"] == 1


# --- generated histories ------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(correct_deliveries(), st.booleans())
def test_generated_correct_histories_pass(case: tuple[int, list[Record]], with_snapshot: bool) -> None:
    n, records = case
    snap = snapshot(n) if with_snapshot else None
    for mod in (exactly_once, ordering, terminal, duplicates):
        assert mod.check(records, snap).valid is True, (mod.NAME, mod.check(records, snap))


@settings(max_examples=150, deadline=None)
@given(correct_deliveries(), st.data())
def test_one_injected_duplicate_fails_with_that_seq(case: tuple[int, list[Record]], data: st.DataObject) -> None:
    n, records = case
    pos = data.draw(st.sampled_from(frame_positions(records)))
    dup = records[pos]
    assert isinstance(dup, Frame)
    if dup.type == "RunFinished":  # a re-sent terminal after the terminal is invariant 4's business
        return
    records = records[: pos + 1] + [dup] + records[pos + 1:]
    res = exactly_once.check(records, snapshot(n))
    assert res.valid is False
    assert res.evidence["counterexample"]["duplicated"][0]["seq"] == dup.seq
    assert duplicates.check(records, None).evidence["counterexample"]["seq"] == dup.seq
    bad = ordering.check(records, None).evidence["counterexample"]
    assert (bad["seq"], bad["previous_seq"], bad["conn"]) == (dup.seq, dup.seq, dup.conn)


@settings(max_examples=150, deadline=None)
@given(correct_deliveries(), st.data())
def test_one_injected_loss_fails_with_that_seq(case: tuple[int, list[Record]], data: st.DataObject) -> None:
    n, records = case
    candidates = [i for i, r in enumerate(records) if isinstance(r, Frame) and r.type != "RunFinished"]
    pos = data.draw(st.sampled_from(candidates))
    lost = records[pos]
    assert isinstance(lost, Frame)
    records = _resume_without(records[:pos] + records[pos + 1:], lost)
    ce = exactly_once.check(records, snapshot(n)).evidence["counterexample"]
    assert ce["seq"] == lost.seq and ce["lost"] == [[lost.seq, lost.seq]] and ce["consumer"] == lost.consumer


@settings(max_examples=150, deadline=None)
@given(correct_deliveries(), st.data())
def test_one_injected_reorder_fails_ordering_with_the_pair(case: tuple[int, list[Record]], data: st.DataObject) -> None:
    n, records = case
    pairs = [i for i, (r, nxt) in enumerate(zip(records, records[1:]))
             if isinstance(r, Frame) and isinstance(nxt, Frame) and nxt.conn == r.conn]
    if not pairs:
        return
    i = data.draw(st.sampled_from(pairs))
    a, b = records[i], records[i + 1]
    assert isinstance(a, Frame) and isinstance(b, Frame)
    records = records[:i] + [replace(b, wall=a.wall, mono=a.mono), replace(a, wall=b.wall, mono=b.mono)] + records[i + 2:]
    res = ordering.check(records, snapshot(n))
    assert res.valid is False
    ce = res.evidence["counterexample"]
    assert ce["conn"] == a.conn and {ce["seq"], ce["previous_seq"]} <= {a.seq, b.seq} | {ce["cursor"]} | {ce.get("expected_seq")}


def _resume_without(records: list[Record], lost: Frame) -> list[Record]:
    """A real consumer that missed ``lost`` resumes from the seq before it, not from ``lost``."""
    assert lost.seq is not None
    out = []
    for r in records:
        if isinstance(r, ConnOpened) and r.consumer == lost.consumer and r.cursor == lost.seq:
            prev = lost.seq - 1
            r = replace(r, from_seq=prev) if r.last_event_id is None else replace(r, last_event_id=str(prev) if prev else None)
        out.append(r)
    return out
