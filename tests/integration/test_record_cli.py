"""`harness record start` / `stop` on a stack of `harness up --detach`, judged by `harness check`.

One detached stack (fast intervals) in a temp state dir is shared by the module. An incident is worked by
hand with `harness fault` and plain HTTP/SQL, as a user would; the recorder's folder must then be judged by
the same checkers as a scenario: a healed pause passes with its fault window in the history, a deleted
event row (the runbook's seq gap) does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.history import FaultWindow, Frame, History, of_kind

from cli_helpers import Cli, detached_stack, ok, query, run_cli, stack_info, start_run, until


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with detached_stack(tmp_path_factory.mktemp("record") / "state", "--fast") as state:
        yield state


@pytest.fixture
def info(state: Path) -> dict[str, Any]:
    return stack_info(state)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: run_cli(capsys, *args)


def one_line_error(cli: Cli, code: int, *args: str) -> str:
    got, out, err = cli(*args)
    assert got == code and len(err.strip().splitlines()) == 1 and err.startswith("harness: error:"), (args, err)
    assert "Traceback" not in out + err
    return err


def run_state(info: dict[str, Any], run_id: str) -> str:
    return str(query(info, "SELECT state FROM runs WHERE id = %s", run_id)[0])


def test_no_stack_is_a_one_line_error(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path))
    assert "no stack is up" in one_line_error(cli, 1, "record", "start")


def test_stop_without_start_is_a_one_line_error(cli: Cli, state: Path) -> None:
    assert "no recording is running" in one_line_error(cli, 2, "record", "stop")


def test_a_healed_pause_recorded_by_hand_passes_harness_check(cli: Cli, info: dict[str, Any],
                                                               tmp_path: Path) -> None:
    assert "recording since" in ok(cli, "record", "start")
    assert "already running" in one_line_error(cli, 2, "record", "start")
    run = start_run(info, steps=80, interval_ms=50)  # long enough for steady-state frames after the pause
    assert "paused outbox-worker-0" in ok(cli, "fault", "pause", "outbox-worker-0", "--for", "1s")
    until(lambda: run_state(info, run) == "succeeded", "the run to finish")
    out = ok(cli, "record", "stop", "--out", str(tmp_path / "rec"))
    assert "1 run(s), 1 fault window(s)" in out and "verdict: pass" in out, out

    code, out, err = cli("check", str(tmp_path / "rec"))
    assert code == 0 and "verdict: pass" in out, out + err
    history = History.load(tmp_path / "rec" / "history.jsonl")
    [pause] = of_kind(history, FaultWindow)
    assert (pause.name, pause.target) == ("pause", "outbox-worker-0") and pause.end is not None
    assert 0.9 <= pause.end - pause.start <= 2.5, pause
    frames = [f for f in of_kind(history, Frame) if f.run_id == run]
    assert [f.seq for f in frames] == list(range(1, 83)), frames  # RunStarted, 80 steps, RunFinished
    # the pause is inside the recording: frames arrived on both sides of it
    assert frames[0].mono < pause.end < frames[-1].mono


def test_a_deleted_event_row_recorded_by_hand_fails_harness_check(cli: Cli, info: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    ok(cli, "record", "start")
    ok(cli, "fault", "pause", "outbox-worker-0")
    run = start_run(info, steps=8, interval_ms=0)
    until(lambda: run_state(info, run) == "succeeded", "the run to finish")
    with psycopg.connect(info["dsn"], autocommit=True) as conn:  # the runbook's seq gap, made by hand
        assert conn.execute("DELETE FROM run_events WHERE runId = %s AND seq = 5", (run,)).rowcount == 1
    ok(cli, "fault", "resume", "outbox-worker-0")
    out = ok(cli, "record", "stop", "--out", str(tmp_path / "gap"), "--wait", "2s")
    assert f"not ended when the recording stopped (judged as they stood): {run}" in out and "verdict: FAIL" in out

    code, out, err = cli("check", str(tmp_path / "gap"), "--json")
    assert code == 1, out + err
    [scenario] = json.loads(out)["scenarios"]
    assert scenario["checks"]["gapless"]["valid"] is False and scenario["checks"]["outbox_converged"]["valid"] is False
    seqs = sorted({f.seq or 0 for f in of_kind(History.load(tmp_path / "gap" / "history.jsonl"), Frame) if f.run_id == run})
    assert seqs == [1, 2, 3, 4], seqs  # the observer got everything before the gap, nothing past it
