"""Log lines, lag classification over log lines, and the log pipelines' field checks (no stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import LogsError
from harness.runbook.lag_report import lag_report
from harness.service_logs import parse_duration, parse_line, read_log_lines
from harness.runbook.markdown_sql import CodeBlock
from harness.runbook.runbook_check import (check_bash_block, check_pipeline_fields, logical_lines, pipeline_stages,
                                           unmatched_grep)

NOW = 1_700_000_000.0


def line(msg: str, t: float, run: str | None = "r1", **fields: object) -> str:
    head: dict[str, object] = {"time": "2023-11-14 22:13:20.000Z"}
    if run is not None:
        head["runId"] = run
    head |= {"msg": msg, "component": "outbox-publisher", "service": "outbox-worker-0", "level": "info",
             "timestamp": t}
    return json.dumps(head | fields)


def write_logs(folder: Path, lags: list[float], start: float = NOW - 60, type_: str = "RunStep") -> None:
    folder.mkdir(exist_ok=True)
    with open(folder / "outbox-worker-0.log", "a") as f:
        for i, lag in enumerate(lags):
            f.write(line("metric.events_published", start + i, seq=i + 1, type=type_, lag_ms=lag) + "\n")
        f.write("Traceback (most recent call last):\n")  # not JSON: skipped


@pytest.mark.parametrize("text,seconds", [("5m", 300), ("30s", 30), ("1h", 3600), ("250ms", 0.25), ("2", 2)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_a_logs_error() -> None:
    with pytest.raises(LogsError, match="5x"):
        parse_duration("5x")


def test_parse_line_tolerates_grep_prefix_and_garbage() -> None:
    parsed = parse_line('logs/a.log:{"msg": "x", "timestamp": 1}')
    assert parsed is not None and parsed.msg == "x"
    assert parse_line("not json") is None and parse_line("[1, 2]") is None


def test_since_filters_by_timestamp(tmp_path: Path) -> None:
    write_logs(tmp_path, [1.0] * 10, start=NOW - 100)  # t = NOW-100 .. NOW-91
    write_logs(tmp_path, [2.0] * 5, start=NOW - 10)
    assert len(read_log_lines(tmp_path, now=NOW)) == 15
    assert len(read_log_lines(tmp_path, since_s=30, now=NOW)) == 5


def test_missing_folder_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(LogsError, match="does not exist"):
        read_log_lines(tmp_path / "nope")


@pytest.mark.parametrize("lags,cls", [([5.0] * 20, "normal"), ([150.0] * 20, "warning"), ([800.0] * 20, "critical")])
def test_lag_classes_over_log_lines(tmp_path: Path, lags: list[float], cls: str) -> None:
    write_logs(tmp_path, lags)
    report = lag_report(tmp_path, since_s=None)
    assert report.overall.count == 20 and report.overall.cls == cls
    assert report.healthy is (cls == "normal")


def test_increasing_trend_is_critical_and_grouped_by_type(tmp_path: Path) -> None:
    write_logs(tmp_path, [10.0 + 10 * i for i in range(12)])  # 10 .. 120 ms, steadily rising
    write_logs(tmp_path, [3.0] * 4, type_="RunFinished")
    report = lag_report(tmp_path, since_s=None, by="type")
    step = next(g for g in report.groups if g.name == "RunStep")
    assert step.increasing and step.cls == "critical" and step.label == "critical (increasing trend)"
    assert next(g for g in report.groups if g.name == "RunFinished").cls == "normal"
    assert report.to_dict()["groups"][1]["label"] == "critical (increasing trend)"


def test_no_publishes_is_no_data(tmp_path: Path) -> None:
    write_logs(tmp_path, [])
    report = lag_report(tmp_path, since_s=None)
    assert report.overall.count == 0 and report.overall.cls == "no data" and report.healthy


def test_pipeline_stages_and_continuations() -> None:
    script = 'grep "a" logs/*.log | \\\n  jq -r \'[.type, .lag_ms] | @tsv\' | \\\n  awk \'{print $1}\'\n# comment\n'
    [command] = logical_lines(script)
    assert pipeline_stages(command) == [["grep", "a", "logs/*.log"], ["jq", "-r", "[.type, .lag_ms] | @tsv"],
                                        ["awk", "{print $1}"]]


def test_field_references_checked_on_selected_lines() -> None:
    from harness.service_logs import parse_line as p

    parsed = [p(line("metric.events_published", NOW, seq=1, lag_ms=3.0)), p(line("stream-run", NOW, fromSeq=0)),
              p(line("metric.events_published", NOW, seq=2))]
    lines = [ln for ln in parsed if ln is not None]
    stages = pipeline_stages("grep \"metric.events_published\" logs/*.log | jq -r '.lag_ms'")
    assert check_pipeline_fields(stages, lines) == ["jq field .lag_ms is missing in 1 of 2 selected line(s)"]
    cut = pipeline_stages("grep \"stream-run\" logs/*.log | grep \"fromSeq\" | cut -d' ' -f5 | sort | uniq -c")
    assert check_pipeline_fields(cut, lines) == []  # field 5 is the runId thanks to the fixed key order
    wrong = pipeline_stages("grep \"stream-run\" logs/*.log | cut -d' ' -f4")
    assert "does not yield the runId" in check_pipeline_fields(wrong, lines)[0]
    none = pipeline_stages('grep "worker:job:start" logs/*.log')
    assert unmatched_grep(none, lines) == "worker:job:start" and unmatched_grep(stages, lines) is None


LAG_PIPELINE = "grep \"metric.events_published\" logs/*.log | jq -r '.lag_ms'"  # the runbook's, over every file


def test_a_pipeline_no_line_exercises_is_not_exercised_and_one_failing_on_real_lines_is_broken(tmp_path: Path) -> None:
    block = CodeBlock("bash", LAG_PIPELINE, 1)
    fresh = tmp_path / "fresh"  # a stack that has served no run: only start-up lines
    fresh.mkdir()
    (fresh / "api-0.log").write_text(line("api.listening", NOW, run=None) + "\n")
    (fresh / "outbox-worker-0.log").write_text(line("outbox-publisher.started", NOW, run=None) + "\n")
    [result] = check_bash_block(block, read_log_lines(fresh), fresh, {})
    assert result.status == "unexercised" and "metric.events_published" in result.message, result
    served = tmp_path / "served"  # two files with published lines: grep prefixes each with its file name
    write_logs(served, [3.0])
    (served / "outbox-worker-1.log").write_text(line("metric.events_published", NOW, seq=1, lag_ms=4.0) + "\n")
    [result] = check_bash_block(block, read_log_lines(served), served, {})
    assert result.status == "error" and "grep -h" in " ".join(result.details), result


def test_a_targets_logfmt_lines_are_read_with_the_runbooks_names(tmp_path: Path) -> None:
    from harness.service_logs import publishes_from_log_lines
    from harness.target.profile import LogSpec

    spec = LogSpec("logfmt", {"msg": "event", "timestamp": "time", "runId": "run", "lag_ms": "lagMs",
                              "metric.events_published": "outbox_published"})
    (tmp_path / "outbox-worker-0.log").write_text(
        'time=2026-12-02T10:00:01.500Z level=info event=outbox_published run=r1 seq=3 lagMs=12.5'
        ' publishedAt=2026-12-02T10:00:01.490Z\n'
        'time=2026-12-02T10:00:02Z level=info event=listening note="a \\"quoted\\" value"\n'
        'a stray line without pairs\n')
    lines = read_log_lines(tmp_path, spec=spec)
    assert [ln.msg for ln in lines] == ["metric.events_published", "listening"]
    assert lines[0].run_id == "r1" and lines[0].timestamp == 1796205601.5 and lines[1].obj["note"] == 'a "quoted" value'
    (record,) = publishes_from_log_lines(read_log_lines(tmp_path, msg="metric.events_published", spec=spec))
    assert (record.run_id, record.seq, record.lag_ms, record.time) == ("r1", 3, 12.5, 1796205601.49)
    assert read_log_lines(tmp_path, msg="metric.events_published") == []  # read as JSON: nothing
