"""The runbook's alert rules, the schema requirements and the stuck decision over plain data."""

from __future__ import annotations

import pytest

from harness.runbook.alerts import AlertData, AlertThresholds, evaluate, high_lag, outbox_backlog, run_stall, sse_churn
from harness.runbook.diagnose import Diagnosis
from harness.runbook.recovery import is_stuck
from harness.runbook.schema_check import evaluate as schema_evaluate

T = AlertThresholds()
NOW = 10_000.0


def test_steady_state_fires_nothing() -> None:
    data = AlertData(NOW, started_runs=[{"id": "a", "first": NOW - 30, "last": NOW - 1}], backlog_now=-1.0,
                     backlog_samples=[(NOW - 300 + 30 * i, -1.0) for i in range(11)], lag_ms=[4.0] * 50,
                     connections=["a", "a", "b"])
    assert [r.firing for r in evaluate(data, T)] == [False, False, False, False]


def test_run_stall_after_ten_minutes() -> None:
    data = AlertData(NOW, started_runs=[{"id": "old", "first": NOW - 601, "last": NOW - 500},
                                        {"id": "new", "first": NOW - 10, "last": None}])
    result = run_stall(data, T)
    assert result.firing and [s["runId"] for s in result.evidence["stalled"]] == ["old"]
    assert not run_stall(data, AlertThresholds(stall_after_s=700)).firing


def test_backlog_must_hold_for_the_whole_window() -> None:
    held = AlertData(NOW, backlog_now=150.0, backlog_samples=[(NOW - 300 + 30 * i, 101.0 + i) for i in range(11)])
    assert outbox_backlog(held, T).firing
    dip: list[tuple[float, float | None]] = [(NOW - 300, 50.0)]
    dipped = AlertData(NOW, backlog_now=150.0, backlog_samples=dip + [(NOW - 270 + 30 * i, 200.0) for i in range(10)])
    assert not outbox_backlog(dipped, T).firing
    unknown_start = AlertData(NOW, backlog_now=150.0, backlog_samples=[(NOW - 300, None), (NOW, 150.0)])
    assert not outbox_backlog(unknown_start, T).firing
    instant = AlertThresholds(backlog_threshold=5, backlog_for_s=0)
    assert outbox_backlog(AlertData(NOW, backlog_now=6.0), instant).firing
    assert not outbox_backlog(AlertData(NOW, backlog_now=None), instant).firing


def test_high_lag_on_p95() -> None:
    assert high_lag(AlertData(NOW, lag_ms=[10.0] * 90 + [1500.0] * 10), T).firing  # p95 = 1500
    assert not high_lag(AlertData(NOW, lag_ms=[10.0] * 96 + [1500.0] * 4), T).firing  # p95 = 10
    assert not high_lag(AlertData(NOW), T).firing  # no data: not firing, and says so
    assert "no metric.events_published" in high_lag(AlertData(NOW), T).why


def test_sse_churn_counts_connections_per_run() -> None:
    data = AlertData(NOW, connections=["a"] * 11 + ["b"] * 10)
    result = sse_churn(data, T)
    assert result.firing and result.evidence["runs"] == {"a": 11}


FULL_COLUMNS = {"runs": {"id", "state", "startedat", "finishedat", "lastseq"},
                "run_events": {"id", "runid", "seq", "type", "ts", "publishedat"},
                "run_outbox": {"runid", "nextseq", "updatedat"}}
GOOD_INDEXES = [
    {"table": "run_events", "index": "run_events_runid_seq_key", "unique": True, "primary": False, "columns": ["runid", "seq"]},
    {"table": "run_events", "index": "run_events_runid_publishedat_idx", "unique": False, "primary": False,
     "columns": ["runid", "publishedat"]},
    {"table": "run_outbox", "index": "run_outbox_pkey", "unique": True, "primary": True, "columns": ["runid"]},
]


def test_schema_requirements_met() -> None:
    assert all(r.ok for r in schema_evaluate(GOOD_INDEXES, FULL_COLUMNS))


def test_non_unique_seq_index_and_missing_pk_are_named() -> None:
    indexes = [dict(GOOD_INDEXES[0], unique=False), GOOD_INDEXES[1],
               dict(GOOD_INDEXES[2], primary=False, unique=False)]
    missing = [r.what for r in schema_evaluate(indexes, FULL_COLUMNS) if not r.ok]
    assert missing == ["run_events(runid, seq) UNIQUE", "run_outbox(runid) PRIMARY KEY"]


def test_quoted_camel_case_columns_are_reported() -> None:
    columns = dict(FULL_COLUMNS, run_outbox={"runId", "nextSeq", "updatedAt"})
    bad = {r.what: r.problem for r in schema_evaluate(GOOD_INDEXES, columns) if not r.ok}
    assert 'only the quoted "nextSeq" exists' in bad["column run_outbox.nextseq"]


def diag(verdict: str, **evidence: object) -> Diagnosis:
    return Diagnosis("r", verdict, "", [], dict(evidence))


@pytest.mark.parametrize("d,idle,stuck", [
    (diag("caught_up"), 5.0, False),
    (diag("caught_up"), 700.0, True),  # stalled
    (diag("outbox_stuck", nextSeq=3, eventAgeSeconds=2.0), 2.0, False),  # a busy outbox, not stuck yet
    (diag("outbox_stuck", nextSeq=3, eventAgeSeconds=31.0), 2.0, True),
    (diag("seq_gap", expectedSeq=3), 0.0, True),
])
def test_is_stuck(d: Diagnosis, idle: float, stuck: bool) -> None:
    assert (is_stuck(d, idle, stuck_after_s=30, stalled_after_s=600) is not None) is stuck
