"""`harness watch` without a stack: the frame's parts on plain data, the view, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli import main
from harness.commands.watch import render
from harness.runbook.diagnose import Diagnosis, Step
from harness.runbook.lag_report import LagGroup
from harness.runbook.watch_frame import (Frame, RunView, Stream, WatchSource, gather_frame, heartbeat_seen,
                                         open_streams, run_view)
from harness.service_logs import LogLine, parse_line

from stack_helpers import isolated_state_dir  # noqa: F401 (autouse)

NOW = 1_700_000_000.0
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def log(msg: str, conn: str, run: str = "r1", t: float = NOW) -> LogLine:
    parsed = parse_line(json.dumps({"msg": msg, "runId": run, "connectionId": conn, "timestamp": t, "fromSeq": 0}))
    assert parsed is not None
    return parsed


def test_open_streams_are_those_without_a_closed_line() -> None:
    lines = [log("stream-run", "a", t=NOW - 5), log("stream-run", "b"), log("stream-run.closed", "a"),
             log("stream-run", "c", run="r2")]
    streams = open_streams(lines)
    assert streams == {"r1": [Stream("b", NOW, 0)], "r2": [Stream("c", NOW, 0)]}


def test_heartbeat_seen_only_when_the_counter_grows() -> None:
    first = Frame(NOW, [], [], heartbeats_sent=3)
    assert heartbeat_seen(None, 3, NOW) is None
    assert heartbeat_seen(first, 3, NOW + 1) is None  # no growth: nothing seen yet
    grown = Frame(NOW + 1, [], [], heartbeats_sent=4, last_heartbeat_at=NOW + 1)
    assert heartbeat_seen(first, 4, NOW + 1) == NOW + 1
    assert heartbeat_seen(grown, 4, NOW + 5) == NOW + 1  # still the last growth
    assert heartbeat_seen(grown, None, NOW + 5) is None  # /metrics unreachable: unknown


def stuck(run: str = "r1") -> Diagnosis:
    steps = [Step("1", "run", "", {"id": run, "state": "started", "lastseq": 40}, ""),
             Step("2", "cursor", "", {"runid": run, "nextseq": 3}, "")]
    return Diagnosis(run, "outbox_stuck", "event seq 3 exists unpublished", ["restart"], {}, steps)


def test_run_view_takes_the_run_and_cursor_from_the_checklist() -> None:
    lag = LagGroup("r1", 5, p95=640.0, cls="critical")
    view = run_view(stuck("r1"), lag, [Stream("b", NOW, 0)])
    assert (view.state, view.last_seq, view.next_seq, view.backlog) == ("started", 40, 3, 38)
    assert (view.lag_p95_ms, view.lag_class, view.verdict, view.healthy) == (640.0, "critical", "outbox_stuck", False)
    no_cursor = Diagnosis("r2", "never_started", "", [], {}, [Step("1", "", "", {"state": "queued", "lastseq": 0}, ""),
                                                                Step("2", "", "", None, "")])
    view = run_view(no_cursor, None, [])
    assert (view.next_seq, view.backlog, view.lag_class) == (None, None, "no data")


def test_render_shows_faults_first_then_runs_and_problems() -> None:
    fault = {"at": "2023-11-14T22:13:20+00:00", "op": "start", "id": "f1", "fault": "pause",
             "target": "outbox-worker-0", "params": {}, "until": "2023-11-14T22:13:50+00:00"}
    view = run_view(stuck(), None, [Stream("b", NOW - 7, 0)])
    frame = Frame(NOW, [fault], [view], heartbeats_sent=12, last_heartbeat_at=NOW - 2, problems=["db slow"])
    console = Console(width=160, record=True)
    console.print(render(frame))
    text = console.export_text()
    assert text.index("faults active now") < text.index("outbox-worker-0") < text.index("runs")
    assert "in 30s" in text  # the fault heals 30 s after the frame
    row = next(line for line in text.splitlines() if "r1" in line)
    assert all(cell in row for cell in ("started", "40", "38", "1 (oldest 7s)", "outbox_stuck")), row
    assert "heartbeats sent (all streams, API /metrics): 12, last one 2s ago" in text
    assert "problem: db slow" in text and "Ctrl-C" in text


def test_a_frame_outlives_an_unreachable_database_and_reads_the_fault_log(tmp_path: Path) -> None:
    faults = tmp_path / "fault_log.jsonl"
    start: dict[str, object] = {"at": "t", "op": "start", "fault": "cut", "target": "sse", "params": {}, "until": None}
    faults.write_text("\n".join(json.dumps(start | {"id": i}) for i in ("f1", "f2")) + "\n"
                      + json.dumps({"op": "end", "id": "f1"}) + "\n{cut short")
    frame = gather_frame(WatchSource(UNREACHABLE, tmp_path / "no-logs", faults))
    assert [f["id"] for f in frame.faults] == ["f2"]
    assert frame.runs == [] and len(frame.problems) == 2
    assert "does not exist" in frame.problems[0] and "cannot connect" in frame.problems[1]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["watch", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_without_a_stack_it_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--once", "--json")
    assert code == 1 and out == ""
    assert err.strip() == "harness: error: no stack is up: start one with `harness up --detach`, then `harness watch`"


def test_json_frame_is_plain_data() -> None:
    frame = Frame(NOW, [], [RunView("r1", "started", 2, 1, 2, None, "no data", "outbox_stuck", "s", False)])
    data = json.loads(json.dumps(frame.to_dict()))
    assert data["runs"][0]["backlog"] == 2
    assert set(data["sources"]) == {"faults", "runs", "lag", "streams", "heartbeats"}
