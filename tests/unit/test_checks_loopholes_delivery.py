"""Issue 7's loopholes 2 to 8 in the delivery checkers and the SSE consumer, each shown by a hand-made
history (or a scripted server) that the checkers passed before and must fail now."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx

from _histories import WALL0, Builder, delivery_history, ops_after_terminal, snapshot
from harness.checks import CHECKERS, CheckOptions, append_after_terminal, content, exactly_once, heartbeat, terminal, time_travel
from harness.model import PublishRecord, Snapshot, payload_digest
from harness.history import ConnClosed, FaultWindow, Frame, Heartbeat, History, Record, of_kind
from harness.workload import ConsumerConfig, SSEConsumer


def _with_payloads(snap: Snapshot, run: str = "r1") -> Snapshot:
    """Rows whose payload is ``{"n": seq}`` and whose ts is ``WALL0 - seq``."""
    r = snap.runs[run]
    events = tuple(replace(e, ts=WALL0 - e.seq, payload_digest=payload_digest({"n": e.seq})) for e in r.events)
    return replace(snap, runs={run: replace(r, events=events)})


def _true_frame(b: Builder, conn: str, seq: int, type: str = "RunStep", run: str = "r1") -> Builder:
    return b.frame(conn, seq, type, WALL0 - seq, id_seq=seq, data_seq=seq, data_run_id=run,
                   payload_digest=payload_digest({"n": seq}))


def _faithful(n: int) -> Builder:
    b = Builder().open("a")
    for s in range(1, n + 1):
        _true_frame(b, "a", s, "RunFinished" if s == n else "RunStep")
    return b.close("a", "terminal")


# --- loophole 2: content is never checked; a frame's claim of RunFinished ended the obligations ---------

def test_a_frame_claiming_the_terminal_at_another_seq_ends_nothing() -> None:
    b = Builder().open("a")
    _true_frame(b, "a", 1)
    _true_frame(b, "a", 2, "RunFinished")  # the database's seq 2 is a RunStep; its RunFinished is seq 5
    b.close("a", "terminal")
    snap = _with_payloads(snapshot(5))
    ce = exactly_once.check(b.records, snap).evidence["counterexample"]
    assert ce["lost"] == [[3, 5]] and ce["ended"] == "terminal"
    ce = content.check(b.records, snap).evidence["counterexample"]
    assert ce["problem"] == "type differs from the database row" and ce["seq"] == 2 and ce["row_type"] == "RunStep"
    # the fake terminal ends nothing, so the consumer's reconnect after it is no probe to judge as one
    b.open("b", from_seq=2).close("b", "eof")
    assert terminal.check(b.records, snap).valid is True


def test_content_passes_a_faithful_stream_and_is_registered() -> None:
    assert CHECKERS["content"] is content.check
    res = content.check(_faithful(4).records, _with_payloads(snapshot(4)))
    assert res.valid is True and res.evidence["skipped"] == {}


def _one_frame(seq: int = 2, type: str = "RunStep", **wire: Any) -> list[Record]:
    fields: dict[str, Any] = {"ts": WALL0 - 2, "id_seq": 2, "data_seq": 2, "data_run_id": "r1",
              "payload_digest": payload_digest({"n": 2})}
    fields.update(wire)
    ts = fields.pop("ts")
    return Builder().open("a").frame("a", seq, type, ts, **fields).records


def test_content_fails_each_field_that_differs_from_the_wire_or_the_row() -> None:
    snap = _with_payloads(snapshot(4))
    cases = {
        "id: and data.seq differ": _one_frame(data_seq=3),
        "frame of another run": _one_frame(data_run_id="r2"),
        "ts differs from the database row": _one_frame(ts=WALL0 - 2 + 0.002),
        "payload differs from the database row": _one_frame(payload_digest=payload_digest({"n": 3})),
        "type differs from the database row": _one_frame(type="RunStarted"),
        "frame for a seq the log does not hold": _one_frame(seq=9, id_seq=9, data_seq=9),
        "the frame's data carries no payload": _one_frame(payload_digest=None),
        "the frame's data carries no ts": _one_frame(ts=None),
    }
    for problem, records in cases.items():
        res = content.check(records, snap)
        assert res.valid is False and res.evidence["counterexample"]["problem"] == problem, (problem, res)
    assert content.check(_one_frame(ts=WALL0 - 2 + 0.0005), snap).valid is True  # microseconds on the wire


def test_content_skips_absent_fields_and_needs_the_run_in_the_snapshot() -> None:
    bare = delivery_history(3, [])  # a recorder that keeps no wire fields, rows without digests
    res = content.check(bare, snapshot(3))
    assert res.valid is True and res.evidence["skipped"] == {"id": 3, "run_id": 3, "ts": 3, "payload": 3}
    assert content.check(bare, None).valid == "unknown"
    assert content.check(bare, replace(snapshot(3), runs={})).valid == "unknown"
    assert content.check(_one_frame(data_seq=3), None).valid is False  # the wire contradicts itself


# --- loophole 3: the consumer hung up on RunFinished, so nothing after it could be seen -----------------

def _frame_bytes(seq: int, etype: str) -> bytes:
    data = json.dumps({"runId": "r1", "seq": seq, "type": etype, "ts": "2025-01-02T03:04:05Z", "payload": {"n": seq}})
    return f"id: {seq}\nevent: {etype}\ndata: {data}\n\n".encode()


def _serve(after_terminal: Callable[[], AsyncIterator[bytes]], window_s: float = 0.3) -> History:
    """One connection: events 1..3 (3 is RunFinished), then whatever ``after_terminal`` yields."""

    async def body() -> AsyncIterator[bytes]:
        yield _frame_bytes(1, "RunStep") + _frame_bytes(2, "RunStep") + _frame_bytes(3, "RunFinished")
        async for chunk in after_terminal():
            yield chunk

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    history = History()
    config = ConsumerConfig("http://test", backoff_initial_s=0.0, after_terminal_s=window_s)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            outcome = await SSEConsumer(config, history, client).consume("r1", "c0")
        assert outcome.stop_reason == "terminal" and outcome.reached_terminal and outcome.connections == 1

    asyncio.run(main())
    return history


async def _closes() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that ends at once: the server closes right after the terminal


async def _streams_on() -> AsyncIterator[bytes]:
    yield _frame_bytes(4, "RunStep")


async def _never_closes() -> AsyncIterator[bytes]:
    yield b": heartbeat\n\n"
    await asyncio.sleep(30)
    yield b""


def test_a_server_closing_after_the_terminal_passes_at_no_cost() -> None:
    history = _serve(_closes, window_s=5.0)
    (closed,) = of_kind(history, ConnClosed)
    assert closed.reason == "terminal" and closed.mono - of_kind(history, Frame)[-1].mono < 1.0
    assert terminal.check(history, snapshot(3)).valid is True


def test_a_frame_after_the_terminal_is_recorded_and_fails() -> None:
    history = _serve(_streams_on)
    assert [f.seq for f in of_kind(history, Frame)] == [1, 2, 3, 4]
    ce = terminal.check(history, snapshot(3)).evidence["counterexample"]
    assert ce["problem"] == "frame after the terminal event" and ce["seq"] == 4


def test_a_stream_left_open_after_the_terminal_fails() -> None:
    history = _serve(_never_closes, window_s=0.3)
    (closed,) = of_kind(history, ConnClosed)
    assert closed.reason == "terminal_open"
    assert len(of_kind(history, Heartbeat)) == 1
    ce = terminal.check(history, snapshot(3)).evidence["counterexample"]
    assert ce["problem"] == "heartbeat after the terminal event"
    quiet = [r for r in history.records if not isinstance(r, Heartbeat)]
    ce = terminal.check(quiet, snapshot(3)).evidence["counterexample"]
    assert ce["problem"] == "the server kept the stream open after the terminal event"
    # a slow_close toxic on the sse link holds the close: the fault's doing, not the server's
    held = History([*quiet, FaultWindow("slow_close", "sse", 0.0, None, 0.0, None, {})])
    assert terminal.check(held, snapshot(3)).valid is True
    paused_worker = History([*quiet, FaultWindow("pause", "outbox-worker-0", 0.0, None, 0.0, None, {})])
    assert terminal.check(paused_worker, snapshot(3)).valid is False


# --- loophole 4: a 204 probe that got no answer satisfied require_204_probe -----------------------------

def test_an_unanswered_probe_is_no_204() -> None:
    b = Builder(records=delivery_history(3, []), t=10.0)
    b.open("c0#1", "c0", from_seq=3, status=None).close("c0#1", "error", 3)
    res = terminal.check(b.records, snapshot(3), CheckOptions(require_204_probe=True))
    assert res.valid == "unknown" and res.evidence["probes_after_terminal"] == 0
    probed = delivery_history(3, [], probe=True)
    assert terminal.check(probed, snapshot(3), CheckOptions(require_204_probe=True)).valid is True


# --- loophole 5: exactly_once passed an empty or tail-less consumer, and a 204 for a live run ----------

RELAXED = CheckOptions(require_terminal=False)


def test_a_consumer_that_got_nothing_from_a_finished_run_fails() -> None:
    b = Builder().open("a").close("a", "eof")
    ce = exactly_once.check(b.records, snapshot(4), RELAXED).evidence["counterexample"]
    assert ce["lost"] == [[1, 4]] and ce["ended"] == "eof"


def test_a_lost_published_tail_fails_even_without_require_terminal() -> None:
    b = Builder().open("a").frames("a", [1, 2]).close("a", "eof")
    assert exactly_once.check(b.records, snapshot(4), RELAXED).evidence["counterexample"]["lost"] == [[3, 4]]
    # the consumer gave up by itself: only its prefix is judged
    b = Builder().open("a").frames("a", [1, 2]).close("a", "timeout")
    assert exactly_once.check(b.records, snapshot(4), RELAXED).valid is True
    # the tail was never published: the server owed nothing more yet
    unpublished = snapshot(4)
    run = unpublished.runs["r1"]
    events = (*run.events[:3], replace(run.events[3], published_at=None))
    unpublished = replace(unpublished, runs={"r1": replace(run, events=events)})
    b = Builder().open("a").frames("a", [1, 2, 3]).close("a", "eof")
    assert exactly_once.check(b.records, unpublished, RELAXED).valid is True


def test_a_published_event_withheld_from_a_live_connection_fails() -> None:
    # The tail was published at WALL0; the consumer held its connection open 6 s and never got it.
    b = Builder().open("a").frames("a", [1, 2]).tick(6.0).close("a", "timeout")
    ce = exactly_once.check(b.records, snapshot(4), RELAXED).evidence["counterexample"]
    assert ce["problem"] == "a published event was withheld from a live connection" and ce["lost"] == [[3, 4]]
    patient = CheckOptions(require_terminal=False, withheld_after_s=10)
    assert exactly_once.check(b.records, snapshot(4), patient).valid is True
    # a consumer that gave up sooner, or a fault on the stream's path, decides nothing
    soon = Builder().open("a").frames("a", [1, 2]).tick(1.0).close("a", "timeout")
    assert exactly_once.check(soon.records, snapshot(4), RELAXED).valid is True
    cut = Builder(records=list(b.records)).fault("latency", 0.0, 10.0, target="sse")
    assert exactly_once.check(cut.records, snapshot(4), RELAXED).valid is True


def test_a_204_or_a_final_close_for_a_run_that_is_not_terminal_fails() -> None:
    live = snapshot(4, terminal=False)
    b = Builder().open("a").frames("a", [1, 2]).close("a", "eof").open("b", from_seq=2, status=204).close("b", "204")
    ce = exactly_once.check(b.records, live, RELAXED).evidence["counterexample"]
    assert ce["problem"] == "the server ended the stream of a run that is not terminal" and ce["conn"] == "b"
    b = Builder().open("a").frames("a", [1, 2]).close("a", "eof")
    assert exactly_once.check(b.records, live, RELAXED).evidence["counterexample"]["reason"] == "eof"
    # a close the consumer recovered from by reconnecting is not an end
    b.open("b", from_seq=2).frames("b", [3, 4]).close("b", "timeout")
    assert exactly_once.check(b.records, live, RELAXED).valid is True


def test_require_terminal_relaxes_only_the_named_consumers() -> None:
    b = Builder()
    b.open("a", consumer="idle0").frames("a", [1]).close("a", "timeout")
    b.open("b", consumer="live0").frames("b", [1, 2]).close("b", "timeout")
    only_idle = CheckOptions(require_terminal={"idle": False})
    res = exactly_once.check(b.records, snapshot(4), only_idle)
    assert res.valid == "unknown" and [u["consumer"] for u in res.evidence["unknowns"]] == ["live0"]
    for option, verdict in (({"idle": False, "live": False}, True), ({"": False, "live0": True}, "unknown"),
                            (("live",), "unknown"), ((), True)):
        assert exactly_once.check(b.records, snapshot(4), CheckOptions(require_terminal=option)).valid == verdict, option


def test_an_end_of_stream_inside_a_stream_fault_is_a_cut_not_the_servers_end() -> None:
    b = Builder().open("a").frames("a", [1, 2]).close("a", "eof")
    cut = Builder(records=list(b.records)).fault("limit_data", 0.0, 10.0, target="sse")
    assert exactly_once.check(cut.records, snapshot(4), RELAXED).valid is True
    assert exactly_once.check(cut.records, snapshot(4, terminal=False), RELAXED).valid is True
    elsewhere = Builder(records=list(b.records)).fault("pause", 0.0, 10.0, target="queue-worker-0")
    assert exactly_once.check(elsewhere.records, snapshot(4), RELAXED).valid is False


# --- loophole 6: time travel trusted the logs, excused unpublished events, and allowed 0.1 s -----------

def test_time_travel_judges_against_the_database_clock_with_the_measured_offset() -> None:
    h = delivery_history(3, [])  # frames received from WALL0 + 1.01
    on_db_clock = snapshot(3, published_at=WALL0 + 1.5)  # PostgreSQL's clock runs 1 s ahead of the harness
    assert time_travel.check(h, replace(on_db_clock, clock_offset_s=-1.0, clock_uncertainty_s=0.001)).valid is True
    ce = time_travel.check(h, replace(on_db_clock, clock_offset_s=0.0, clock_uncertainty_s=0.001))
    assert ce.valid is False and ce.evidence["tolerance_s"] == 0.006
    # 50 ms early: within the old 0.1 s, beyond the measured uncertainty
    early = replace(snapshot(3, published_at=WALL0 + 1.06), clock_offset_s=0.0, clock_uncertainty_s=0.0)
    assert time_travel.check(h, early).evidence["counterexample"]["seq"] == 1


def test_time_travel_ignores_logs_and_fails_unpublished_events() -> None:
    h = delivery_history(3, [])
    late = snapshot(3, published_at=WALL0 + 5.0)
    logs = tuple(PublishRecord("r1", s, WALL0) for s in (1, 2, 3))  # the service says: published in time
    assert time_travel.check(h, replace(late, publishes=logs)).valid is False
    assert time_travel.check(h, snapshot(3, published_at=None)).valid is False


def test_a_republish_after_a_publish_path_fault_is_judged_against_the_rows_ts() -> None:
    # Frames from WALL0 + 1.01; the row's publishedAt is a re-publish at WALL0 + 5 after a crash.
    h = delivery_history(3, [])
    late = replace(snapshot(3, published_at=WALL0 + 5.0, ts=WALL0 + 0.5), clock_offset_s=0.0, clock_uncertainty_s=0.0)
    assert time_travel.check(h, late).valid is False
    crash = Builder(records=list(h)).fault("kill", 2.0, 3.0, target="outbox-worker-0").records
    assert time_travel.check(crash, late).valid is True
    # a crash that was over before the frame arrived: its first publish was still on the wire
    over = Builder(records=list(h)).fault("failpoint:outbox.after_publish", 0.6, 0.9, target="outbox-worker-0",
                                          params={"action": "1*crash"})
    assert time_travel.check(over.records, late).valid is True
    # ... but no fault lets a frame arrive before its row was written
    unwritten = replace(late, runs={"r1": replace(late.runs["r1"], events=tuple(
        replace(e, ts=WALL0 + 2.0) for e in late.runs["r1"].events))})
    assert time_travel.check(crash, unwritten).evidence["counterexample"]["problem"] == \
        "received before the event was written"
    # a fault off the publish path, or one that cannot abort a mark, excuses nothing
    elsewhere = Builder(records=list(h)).fault("pause", 2.0, 3.0, target="queue-worker-0").records
    assert time_travel.check(elsewhere, late).valid is False
    for name, action in (("failpoint:outbox.before_publish", "crash"), ("failpoint:outbox.after_publish", "sleep(400)")):
        held = Builder(records=list(h)).fault(name, 2.0, 3.0, target="outbox-worker-0", params={"action": action})
        assert time_travel.check(held.records, late).valid is False, name


# --- loophole 7: any refusal passed, a 5xx or a 400 included ------------------------------------------

MESSAGE = "Non-monotonic seq append: run r1 is already cancelled"


def test_only_the_contracts_refusal_passes() -> None:
    check = append_after_terminal.check
    assert check(ops_after_terminal("fail", 409, MESSAGE), snapshot(3)).valid is True
    assert check(ops_after_terminal("fail", 409, "conflict", f="cancel"), snapshot(3)).valid is True
    for status, error in ((400, "bad request"), (409, "conflict"), (404, "not found")):
        res = check(ops_after_terminal("fail", status, error), snapshot(3))
        assert res.valid is False and res.evidence["counterexample"]["problem"].startswith("refused with another")
    assert check(ops_after_terminal("info", 500, "internal error"), snapshot(3)).valid == "unknown"
    profile = CheckOptions(refusal_status=(422,), refusal_message="finished")
    assert check(ops_after_terminal("fail", 422, "run finished"), snapshot(3), profile).valid is True
    assert check(ops_after_terminal("fail", 409, MESSAGE), snapshot(3), profile).valid is False


# --- loophole 8: a fault anywhere excused a silent stream ---------------------------------------------

def test_only_a_fault_on_the_stream_path_excuses_a_silence() -> None:
    b = Builder().open("a").heartbeat("a").tick(9.0).heartbeat("a").close("a", "timeout")
    opts = CheckOptions(heartbeat_interval_s=1.0, heartbeat_tolerance_s=0.5)
    paused_worker = Builder(records=list(b.records)).fault("pause", 0.0, 20.0, target="queue-worker-0")
    assert heartbeat.check(paused_worker.records, None, opts).evidence["counterexample"]["silence_s"] > 8.9
    cut_stream = Builder(records=list(b.records)).fault("partition", 0.0, 20.0, target="sse")
    assert heartbeat.check(cut_stream.records, None, opts).valid is True

