"""Rendering of `harness bench` results: rows against targets, Markdown, notes carried over."""

from __future__ import annotations

from pathlib import Path

from harness.bench.report import (NOTES_END, NOTES_START, BenchReport, Machine, carry_notes, render_markdown, rows,
                                  write)
from harness.bench.stats import summarize
from harness.bench.stream_lag import LagParams, LagResult
from harness.bench.throughput import ThroughputParams, ThroughputResult

CPU = {"wall_s": 20.0, "machine_busy_percent": 95.0, "shares": {"api-0": 80.0, "postgres": 60.0}}


def _lag(p95_spread: float) -> LagResult:
    lags = [1.0 + p95_spread * i / 99 for i in range(100)]
    return LagResult(params=LagParams(), lag_ms=summarize(lags), append_ms=summarize([2.0, 3.0]),
                     events_appended=10_000, event_rate=500.0, frames=100_000, frames_per_s=5000.0,
                     expected_frames=100_000, streams_open=100, late_sends=0, cpu=CPU)


def _tput(rate: float) -> ThroughputResult:
    return ThroughputResult(params=ThroughputParams(), appended=int(rate * 20), appended_per_s=rate,
                            published=int(rate * 20), published_per_s=rate, publish_lag_ms=summarize([5.0, 9.0]),
                            outbox_log_lag_ms=summarize([5.0]), delivered_lag_ms=summarize([8.0, 12.0]),
                            append_ms=summarize([30.0]), backlog_at_stop=12, drain_s=0.25, cpu=CPU)


def _report(lag: LagResult | None = None, throughput: ThroughputResult | None = None,
            failures: tuple[str, ...] = ()) -> BenchReport:
    return BenchReport(machine=Machine(2, "Test CPU @ 1 GHz", "3.11.7", "Linux 6"), date="2025-01-02 03:04 UTC",
                       command="harness bench --write docs/BENCHMARKS.md", stack="1 API replica", lag=lag,
                       throughput=throughput, failures=list(failures))


def test_targets_are_judged_per_row() -> None:
    report = _report(lag=_lag(p95_spread=4.0), throughput=_tput(800.0))
    verdicts = {r.figure: r.verdict for r in rows(report) if r.target is not None}
    assert verdicts["lag p95 (ts → client parse)"] == "met"
    assert verdicts["events appended / s"] == "MISSED"
    assert verdicts["events published / s"] == "MISSED"
    assert verdicts["publish lag p95 (ts → publishedAt, DB)"] == "met"


def test_markdown_names_machine_command_and_what_was_missed() -> None:
    text = render_markdown(_report(lag=_lag(p95_spread=40.0), throughput=_tput(2500.0)))
    assert "`harness bench --write docs/BENCHMARKS.md`" in text
    assert "2 cores, Test CPU @ 1 GHz; Python 3.11.7" in text
    assert "| **MISSED** |" in text
    assert "- **Missed**: stream lag (100 streams, 500 ev/s): lag p95" in text
    assert "the machine was 95.0 % busy" in text and "saturated" in text
    assert "| api-0 | 80.0 | 80.0 |" in text  # CPU per process, one column per benchmark
    assert "12 events → 0.25 s" in text


def test_every_target_met_says_so_and_a_failure_is_listed() -> None:
    ok = render_markdown(_report(lag=_lag(p95_spread=2.0)))
    assert "- Every target was met." in ok
    failed = render_markdown(_report(failures=("throughput could not run: boom",)))
    assert "- throughput could not run: boom" in failed and "Every target" not in failed


def test_notes_survive_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write(_report(lag=_lag(2.0)), path)
    assert carry_notes(path.read_text()) == ""
    edited = path.read_text().replace(f"{NOTES_START}\n(none yet)\n{NOTES_END}",
                                      f"{NOTES_START}\nPostgreSQL is the limit.\n{NOTES_END}")
    path.write_text(edited)
    write(_report(throughput=_tput(900.0)), path)
    assert carry_notes(path.read_text()) == "PostgreSQL is the limit."
