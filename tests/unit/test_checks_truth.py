"""Truth from the database: lag from the rows and the wire with the clock offset applied (issue 7,
loophole 1), the service's metric lines reconciled with the rows (`metrics_agree`), the stored run state
against the terminal event (`run_state`), and a wait that times out still leaving its counterexamples
(loophole 9). Every history and snapshot here is made by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from _histories import WALL0, Builder
from harness import scenario as scenario_module
from harness.checks import CHECKERS, CheckOptions, lag, metrics_agree, run_state
from harness.model import (
    EventRow,
    GaugeReading,
    InsertRecord,
    PublishRecord,
    RunSnapshot,
    Snapshot,
    payload_digest,
)
from harness.service_logs import inserts_from_log_lines
from harness.errors import WaitTimeout
from harness.history import FaultWindow, Frame, Record
from harness.observer.snapshot import _clock_offset, _runs
from harness.scenario import ScenarioRecord, assert_invariants

LAG_S = 0.3  # every hand-made event is published this long after its ts


def _rows(n: int, lag_s: float = LAG_S, run: str = "r1", terminal: str | None = "succeeded") -> tuple[EventRow, ...]:
    """Events 1..n: ts WALL0 + seq, published lag_s later; the last one RunFinished when `terminal`."""
    return tuple(EventRow(s, "RunFinished" if terminal and s == n else "RunStep", WALL0 + s, WALL0 + s + lag_s)
                 for s in range(1, n + 1))


def _snap(n: int = 6, lag_s: float = LAG_S, **changes: Any) -> Snapshot:
    run = RunSnapshot("r1", "succeeded", n, n + 1, _rows(n, lag_s), "succeeded")
    return replace(Snapshot({"r1": run}), **changes)


def _fault(name: str, target: str, start: float, end: float | None, **params: Any) -> FaultWindow:
    """A fault window at wall WALL0 + start .. WALL0 + end."""
    return FaultWindow(name, target, start, end, WALL0 + start, None if end is None else WALL0 + end, params)


# -- loophole 1: lag comes from the database and the wire, never the service's lag_ms --

def test_publish_lag_is_the_rows_not_the_service_s_lag_ms() -> None:
    """Log lines claiming 5 ms over rows showing 300 ms: the old check took the logs' word."""
    claims = tuple(PublishRecord("r1", s, WALL0 + s + LAG_S, 5.0, "RunStep") for s in range(1, 7))
    res = lag.check([], _snap(publishes=claims), CheckOptions(lag_bound_ms=100))
    assert res.valid is False and res.evidence["counterexample"]["lag_ms"] == pytest.approx(300.0)


def _live_frames(offset_s: float, real_lag_s: float, n: int = 6) -> list[Record]:
    """A consumer receiving n events live, real_lag_s after they happened; the database's clock reads
    the harness clock minus offset_s, so the rows' and frames' ts are on that clock."""
    b = Builder(t=10.0)
    b.open("a")
    for seq in range(1, n + 1):
        b.tick(0.5)
        happened = b.wall
        b.tick(real_lag_s)
        b.records.append(Frame("a", "c0", "r1", seq, "RunStep", happened - offset_s, b.wall, b.t))
    return b.records


def _db_rows(records: list[Record], offset_s: float | None) -> Snapshot:
    rows = tuple(EventRow(f.seq, f.type, f.event_ts, f.event_ts) for f in records
                 if isinstance(f, Frame) and f.seq is not None)
    return Snapshot({"r1": RunSnapshot("r1", "started", len(rows), len(rows) + 1, rows)}, clock_offset_s=offset_s)


@pytest.mark.parametrize(("offset_s", "real_lag_s", "valid"), [
    (2.0, 0.02, True),  # the database's clock 2 s behind: 20 ms read as 2 s without the offset
    (-1.0, 0.9, False),  # 1 s ahead: 900 ms read as -100 ms, a pass, without the offset
])
def test_delivery_lag_applies_the_measured_clock_offset(offset_s: float, real_lag_s: float, valid: bool) -> None:
    records = _live_frames(offset_s, real_lag_s)
    res = lag.check(records, _db_rows(records, offset_s), CheckOptions(lag_source="delivery", lag_bound_ms=500))
    assert res.valid is valid, res.evidence
    assert res.evidence["summary"]["max"] == pytest.approx(real_lag_s * 1000, abs=1)


def test_delivery_lag_uses_the_row_s_ts_over_the_frame_s() -> None:
    records = _live_frames(0.0, 0.9)
    told = [replace(r, event_ts=r.wall - 0.01) if isinstance(r, Frame) else r for r in records]  # "10 ms"
    res = lag.check(told, _db_rows(records, 0.0), CheckOptions(lag_source="delivery"))
    assert res.valid is False and res.evidence["summary"]["max"] == pytest.approx(900, abs=1)


def test_a_fault_off_the_sample_s_path_excuses_no_lag() -> None:
    spiky = _snap(10)
    spiky = replace(spiky, runs={"r1": replace(spiky.runs["r1"], events=tuple(
        replace(e, published_at=e.published_at + 2.0) if e.seq in (3, 4) and e.published_at is not None else e
        for e in spiky.runs["r1"].events))})
    opts = CheckOptions(lag_bound_ms=1000, lag_settle_s=0.2)
    queue_paused = [_fault("pause", "queue-worker-0", 3.1, 6.4)]  # seqs 3, 4 published at 5.3, 6.3
    sse_cut = [_fault("down", "sse", 3.1, 6.4)]
    outbox_link = [_fault("toxic:latency", "pg_outbox", 3.1, 6.4)]
    assert lag.check(queue_paused, spiky, opts).valid is False  # the old check excused any fault
    assert lag.check(sse_cut, spiky, opts).valid is False  # the stream is not the publish path
    assert lag.check(outbox_link, spiky, opts).valid is True


def test_delivery_lag_is_excused_by_a_stream_fault_only() -> None:
    records = _live_frames(0.0, 0.02, n=10)
    slow = [replace(r, wall=r.wall + 0.4) if isinstance(r, Frame) and r.seq == 5 else r for r in records]
    late = next(r for r in slow if isinstance(r, Frame) and r.seq == 5)
    window = (late.wall - 0.2 - WALL0, late.wall - WALL0)
    opts = CheckOptions(lag_source="delivery", lag_bound_ms=100, lag_settle_s=0.0)
    snap = _db_rows(records, 0.0)
    assert lag.check([*slow, _fault("pause", "queue-worker-0", *window)], snap, opts).valid is False
    assert lag.check([*slow, _fault("down", "sse", *window)], snap, opts).valid is True


# -- metrics_agree: the service's metric lines against its rows --

def _lines(snap: Snapshot, publish_lag: float = LAG_S * 1000) -> Snapshot:
    """A service whose lines agree with `snap`'s rows: one insert and one publish line per row."""
    rows = snap.runs["r1"].events
    return replace(snap, inserts=tuple(InsertRecord("r1", e.seq, e.ts or 0.0, e.type) for e in rows),
                   publishes=tuple(PublishRecord("r1", e.seq, e.published_at or 0.0, publish_lag, e.type)
                                   for e in rows))


def _inserts(snap: Snapshot) -> tuple[InsertRecord, ...]:
    assert snap.inserts is not None
    return snap.inserts


def _publishes(snap: Snapshot) -> tuple[PublishRecord, ...]:
    assert snap.publishes is not None
    return snap.publishes


def test_metrics_agree_passes_lines_that_match_the_rows() -> None:
    res = metrics_agree.check([], _lines(_snap()))
    assert res.valid is True and res.evidence["rows"] == 6


def test_metrics_agree_without_logs_is_unknown() -> None:
    assert metrics_agree.check([], _snap()).valid == "unknown"
    assert metrics_agree.check([], None).valid == "unknown"


def _problem(res: Any) -> str:
    assert res.valid is False, res.evidence
    assert res.evidence["pattern"] == "the service's metrics disagree with its data"
    return str(res.evidence["counterexample"]["problem"])


def test_a_missing_insert_line_fails() -> None:
    good = _lines(_snap())
    missing = replace(good, inserts=_inserts(good)[:2] + _inserts(good)[3:])
    assert _problem(metrics_agree.check([], missing)) == "no line for an inserted row"
    # unless the appender was killed around the row's ts: it may have committed and died before its line
    killed = [_fault("kill", "queue-worker-0", 2.5, 3.5)]
    assert metrics_agree.check(killed, missing).valid is True
    assert metrics_agree.check([_fault("kill", "outbox-worker-0", 2.5, 3.5)], missing).valid is False


def test_an_extra_insert_line_fails() -> None:
    good = _lines(_snap())
    phantom = replace(good, inserts=(*_inserts(good), InsertRecord("r1", 9, WALL0, "RunStep")))
    assert _problem(metrics_agree.check([], phantom)) == "line for no row in the database"
    twice = replace(good, inserts=(*_inserts(good), _inserts(good)[0]))
    assert _problem(metrics_agree.check([], twice)) == "2 lines for one inserted row"


def test_a_publish_counted_twice_fails_unless_a_crash_explains_it() -> None:
    good = _lines(_snap())
    first = _publishes(good)[2]
    assert first.lag_ms is not None
    again = replace(first, time=first.time + 1.0, lag_ms=first.lag_ms + 1000)  # the re-publish is the marked one
    earlier = replace(first, time=first.time - 1.0, lag_ms=first.lag_ms - 1000)  # published, killed before the mark
    twice = replace(good, publishes=(*_publishes(good), first))
    assert "lines for one published row" in _problem(metrics_agree.check([], twice))
    crashed = replace(good, publishes=(*_publishes(good), earlier))
    kill = _fault("kill", "outbox-worker-0", 3.0, 3.2)
    assert metrics_agree.check([kill], crashed).valid is True
    assert metrics_agree.check([_fault("failpoint:outbox.before_commit", "outbox-worker-0", 3.0, 3.2,
                                       action="crash")], crashed).valid is True
    assert metrics_agree.check([_fault("kill", "queue-worker-0", 3.0, 3.2)], crashed).valid is False
    assert metrics_agree.check([_fault("kill", "outbox-worker-0", 40.0, 41.0)], crashed).valid is False
    # an earlier attempt cannot have lagged more than the publish the row records
    later = replace(good, publishes=(*_publishes(good), again))
    assert _problem(metrics_agree.check([kill], later)) == "a re-published line reports more lag than the row's publish"


def test_a_missing_publish_line_fails() -> None:
    good = _lines(_snap())
    missing = replace(good, publishes=_publishes(good)[1:])
    assert _problem(metrics_agree.check([], missing)) == "no line for a published row"


def test_lag_ms_beyond_the_tolerance_of_the_rows_fails() -> None:
    assert _problem(metrics_agree.check([], _lines(_snap(), publish_lag=5.0))) == \
        "lag_ms differs from the database's publishedAt - ts"
    assert metrics_agree.check([], _lines(_snap(), publish_lag=LAG_S * 1000 + 20)).valid is True  # within 25 ms
    res = metrics_agree.check([], _lines(_snap(), publish_lag=LAG_S * 1000 + 40))
    assert res.evidence["counterexample"]["allowed_ms"] == pytest.approx(30.0)  # 10 % of 300 ms


def _gauge(*readings: tuple[float, float | None, float | None]) -> Snapshot:
    """Scrapes (at WALL0 + t, gauge, database value) of one API's backlog gauge sampled every 0.5 s."""
    scraped = tuple(GaugeReading("http://api/metrics", WALL0 + t, v, db) for t, v, db in readings)
    return replace(_lines(_snap()), backlog_gauge=scraped, backlog_sample_s=0.5)


def test_a_backlog_gauge_that_catches_up_with_the_database_agrees() -> None:
    res = metrics_agree.check([], _gauge((0.0, 3.0, 0.0), (0.4, 0.0, 0.0)))
    assert res.valid is True and res.evidence["backlog_gauge"] == {"http://api/metrics": "agrees"}
    assert metrics_agree.check([], _lines(_snap())).evidence["backlog_gauge"] == "not read"


def test_a_backlog_gauge_over_the_wrong_runs_disagrees() -> None:
    """Averaged over every run, not the started ones: -1 (nextSeq = lastSeq + 1) where the runbook says 0."""
    stale = _gauge(*[(t / 4, -1.0, 0.0) for t in range(7)])  # the database's 0 held for 1.5 s
    assert _problem(metrics_agree.check([], stale)) == "the backlog gauge shows another value than the runbook's query"
    moving = _gauge(*[(t / 4, -1.0, float(t % 2)) for t in range(7)])  # the backlog kept changing
    res = metrics_agree.check([], moving)
    assert res.valid is True and res.evidence["backlog_gauge"]["http://api/metrics"].startswith("undecided")
    absent = _gauge((0.0, None, 0.0), (1.5, None, 0.0))
    assert _problem(metrics_agree.check([], absent)) == "the backlog gauge is not exposed"


# -- run_state: runs.state and the reads agree with the terminal event --

def _run(state: str = "succeeded", status: str | None = "succeeded", terminal: bool = True,
         next_seq: int | None = 7) -> Snapshot:
    rows = _rows(6, terminal="RunFinished" if terminal else None)
    return Snapshot({"r1": RunSnapshot("r1", state, 6, next_seq, rows, status if terminal else None)})


def test_run_state_agrees_with_the_terminal_status() -> None:
    assert run_state.check([], _run()).valid is True
    assert run_state.check([], _run("cancelled", "cancelled")).valid is True
    assert run_state.check([], _run(status=None)).valid is True  # the contract's default status
    res = run_state.check([], _run("succeeded", "cancelled"))
    assert res.valid is False and res.evidence["counterexample"]["terminal_status"] == "cancelled"
    assert run_state.check([], _run("started", "succeeded")).valid is False


def test_a_terminal_state_without_run_finished_only_as_the_last_resort() -> None:
    assert run_state.check([], _run("started", terminal=False)).valid is True  # still running
    assert run_state.check([], _run("cancelled", terminal=False, next_seq=None)).valid is True
    assert run_state.check([], _run("cancelled", terminal=False)).valid is False  # outbox row kept
    assert run_state.check([], _run("succeeded", terminal=False, next_seq=None)).valid is False


def _reads(*reads: tuple[float, str]) -> list[Record]:
    """ok reads of r1 invoked at WALL0 + t, each reporting its state."""
    b = Builder()
    for t, state in reads:
        b.t = t
        inv = b.op("invoke", "read", {"run_id": "r1"})
        b.op("ok", "read", {"run_id": "r1", "state": state, "status": 200}, ref=inv.index)
    return b.records


def test_reads_after_the_terminal_was_committed_report_the_stored_state() -> None:
    committed = WALL0 + 6 + LAG_S  # the RunFinished row's publishedAt
    ok = run_state.check(_reads((1.0, "started"), (7.0, "succeeded")), _run())
    assert ok.valid is True and ok.evidence["reads_compared"] == 1
    res = run_state.check(_reads((1.0, "started"), (7.0, "started")), _run())
    assert res.valid is False and res.evidence["counterexample"]["terminal_committed_by"] == committed
    # a RunFinished frame received proves the commit earlier than the row's publishedAt
    b = Builder(t=5.0).open("a")
    b.frame("a", 6, "RunFinished")
    early = run_state.check([*b.records, *_reads((6.1, "started"))], _run())
    assert early.valid is False and early.evidence["reads_compared"] == 1


def test_checkers_are_registered() -> None:
    assert CHECKERS["metrics_agree"] is metrics_agree.check and CHECKERS["run_state"] is run_state.check


# -- the snapshot: round trip, old files, and what the observer fills in --

def test_snapshot_round_trips_inserts_and_terminal_status_and_loads_old_files() -> None:
    snap = replace(_gauge((0.0, 1.0, 1.0)), clock_offset_s=0.25, clock_uncertainty_s=0.001)
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    old = snap.to_dict()
    del old["inserts"], old["backlog_gauge"], old["backlog_sample_s"], old["clock_offset_s"], old["clock_uncertainty_s"], old["runs"]["r1"]["terminal_status"]
    for row in old["runs"]["r1"]["events"]:
        del row["payload_digest"], row["step"]
    loaded = Snapshot.from_dict(old)
    assert loaded.inserts is None and loaded.clock_offset_s is None and loaded.runs["r1"].terminal_status is None


def test_inserts_from_log_lines() -> None:
    lines = ['logs/api-0.log:{"time": "2025-01-02 03:04:05.678Z", "runId": "r1", "msg": "metric.events_inserted", '
             '"component": "run-event-repo", "service": "api-0", "level": "info", "timestamp": 1735787045.678, '
             '"seq": 3, "type": "RunStep"}',
             '{"msg": "metric.events_published", "runId": "r1", "seq": 3, "timestamp": 1.0}', "not json"]
    assert inserts_from_log_lines(lines) == (InsertRecord("r1", 3, 1735787045.678, "RunStep"),)


def test_observer_rows_carry_digest_step_and_terminal_status() -> None:
    events = [("r1", 1, "RunStarted", WALL0, WALL0, {}),
              ("r1", 2, "RunStep", WALL0, None, {"step": 0, "data": "x"}),
              ("r1", 3, "RunStep", WALL0, None, {"step": True}),
              ("r1", 4, "RunFinished", WALL0, None, {"status": "failed"})]
    run = _runs([("r1", "failed", 4, 5), ("r2", "queued", 0, 1)], events)
    assert [e.step for e in run["r1"].events] == [None, 0, None, None]
    assert run["r1"].events[1].payload_digest == payload_digest({"data": "x", "step": 0})
    assert run["r1"].terminal_status == "failed" and run["r2"].terminal_status is None and run["r2"].events == ()


class _Clock:
    """A connection whose server clock reads `behind` seconds behind the caller's, answering after
    the given delays (the round trips)."""

    def __init__(self, behind: float, delays: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = WALL0
        self.behind, self.delays = behind, list(delays)
        monkeypatch.setattr("harness.observer.snapshot.time.time", lambda: self.now)

    def execute(self, sql: str) -> SimpleNamespace:
        delay = self.delays.pop(0)
        self.now += delay / 2
        server = self.now - self.behind
        self.now += delay / 2
        return SimpleNamespace(fetchone=lambda: (server,))


def test_clock_offset_keeps_the_shortest_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _Clock(2.0, [0.2, 0.01, 0.05, 0.3, 0.02], monkeypatch)
    offset, uncertainty = _clock_offset(conn)  # type: ignore[arg-type]  # a stand-in for a psycopg connection
    assert offset == pytest.approx(2.0, abs=1e-6) and uncertainty == pytest.approx(0.005, abs=1e-6)


# -- loophole 9: a wait that times out still writes the judgement --

def test_a_timed_out_wait_still_writes_checks_with_counterexamples(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def never_ends(*_: Any, **__: Any) -> None:
        raise WaitTimeout("timed out after 30.0s waiting for 1 run(s) to end", attempts=3, elapsed=30.0)

    stuck = _run("started", terminal=False, next_seq=3)
    monkeypatch.setattr(scenario_module, "wait_for_outbox", never_ends)
    monkeypatch.setattr(scenario_module, "snapshot_of", lambda *_: stuck)
    stack = SimpleNamespace(config=SimpleNamespace(service=None),
                            info=SimpleNamespace(dsn="postgresql://unused", logs_dir=str(tmp_path)))
    record = ScenarioRecord(tmp_path)
    with pytest.raises(AssertionError) as err:
        assert_invariants(stack, record, ["r1"], ("outbox_converged", "run_state"))  # type: ignore[arg-type]  # a stand-in stack
    message = str(err.value)
    assert message.startswith("the wait for the runs' end timed out: timed out after 30.0s")
    assert "outbox_converged: False:" in message
    checks = json.loads(record.checks_file.read_text())
    assert checks["invariants"] is False and checks["checks"]["outbox_converged"]["valid"] is False
