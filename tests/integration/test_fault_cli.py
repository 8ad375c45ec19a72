"""`harness fault ...` and `harness recover restart-outbox` on a stack of `harness up --detach`.

One detached stack (fast intervals, nginx on) in a temp state dir is shared by the module; its owner
performs every action. The CLI runs in-process (`harness.cli.main`); each fault is judged through the
service (runs created over HTTP, streams read) and the database (publishedAt), `--for` from the fault
log. The last test is `harness down`, which must end the faults still active and leave nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.control.fault_log import active_faults
from harness.stack.processes import process_alive

from cli_helpers import Cli, detached_stack, ok, query, run_cli, run_harness, stack_info, start_run, until

pytestmark = [pytest.mark.nginx]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with detached_stack(tmp_path_factory.mktemp("fault") / "state", "--fast", "--nginx", "on") as state:
        yield state


@pytest.fixture
def info(state: Path) -> dict[str, Any]:
    return stack_info(state)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, state: Path) -> Cli:
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: run_cli(capsys, *args)


def published(info: dict[str, Any], run_id: str) -> bool:
    """Finished, and every event published."""
    row = query(info, "SELECT r.state, count(e.seq), count(e.publishedAt) FROM runs r JOIN run_events e"
                      " ON e.runId = r.id WHERE r.id = %s GROUP BY r.state", run_id)
    return row is not None and row[0] == "succeeded" and row[1] == row[2]


def unpublished(info: dict[str, Any], run_id: str) -> int:
    return int(query(info, "SELECT count(*) FROM run_events WHERE runId = %s AND publishedAt IS NULL", run_id)[0])


def max_lag_s(info: dict[str, Any], run_id: str) -> float:
    return float(query(info, "SELECT max(extract(epoch FROM publishedAt - ts)) FROM run_events WHERE runId = %s",
                       run_id)[0])


def fault_lines(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "fault_log.jsonl").read_text().splitlines()]


def at(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["at"]).timestamp()


def test_no_stack_says_start_one(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path))
    code, _, err = cli("fault", "list")
    assert code == 1 and err.strip() == "harness: error: no stack is up: start one with `harness up --detach` first"


def pid_of(state: Path, name: str) -> int:
    """The process's pid as the owner last wrote it to stack.json."""
    procs = json.loads((state / "stack.json").read_text())["processes"]
    return int(next(p["pid"] for p in procs if p["name"] == name))


def test_wrong_or_missing_token_is_refused(info: dict[str, Any], state: Path) -> None:
    assert info["control_url"].startswith("http://127.0.0.1:") and info["control_token"]
    api = pid_of(state, "api-0")
    for headers in ({"Authorization": "Bearer not-the-token"}, {}):
        resp = httpx.post(f"{info['control_url']}/kill", json={"process": "api-0"}, headers=headers, timeout=5)
        assert resp.status_code == 401 and "wrong or missing control token" in resp.json()["error"]
    assert process_alive(api) and pid_of(state, "api-0") == api  # nothing was done
    assert (state / "stack.json").stat().st_mode & 0o077 == 0  # the token is the owner's user's only


def test_bad_names_are_one_line_errors_listing_the_valid_ones(cli: Cli) -> None:
    cases = {("fault", "cut", "sse2"): "links: sse, pg_api, pg_outbox, pg_queue",
             ("fault", "kill", "outbox-0"): "processes: postgres, nginx, api-0, outbox-worker-0, queue-worker-0",
             ("fault", "restart", "api-9"): "processes: postgres, nginx, api-0",
             ("fault", "add", "sse", "latncy"): "known: bandwidth, latency, limit_data",
             ("fault", "add", "sse", "latency", "delay=5"): "known: ['jitter', 'latency']",
             ("fault", "add", "sse", "latency", "latency=soon"): "attributes are integers",
             ("fault", "remove", "sse", "latency_downstream"): "its toxics: none",
             ("fault", "db", "lock-outbox", "no-such-run"): "no run_outbox row"}
    for args, listing in cases.items():
        code, out, err = cli(*args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("harness: error:"), (args, err)
        assert listing in err and "Traceback" not in out + err, (args, err)


def test_latency_on_pg_outbox_shows_in_publish_lag_and_heals_on_time(cli: Cli, info: dict[str, Any],
                                                                      state: Path) -> None:
    out = ok(cli, "fault", "add", "pg_outbox", "latency", "latency=400", "--for", "2s")
    assert "added latency_downstream on pg_outbox" in out
    assert "latency_downstream latency=400" in ok(cli, "fault", "list")
    slow = start_run(info)
    until(lambda: published(info, slow), "the run to be published through the slow link")
    assert max_lag_s(info, slow) >= 0.4
    until(lambda: not active_faults(state / "fault_log.jsonl"), "the owner to heal the latency", 5)
    start, end = [line for line in fault_lines(state) if line["fault"] == "toxic"][-2:]
    assert start["op"] == "start" and end["op"] == "end" and 1.9 <= at(end) - at(start) <= 3.0
    fast = start_run(info)
    until(lambda: published(info, fast), "the run to be published after the heal")
    assert max_lag_s(info, fast) < 0.4
    assert json.loads(ok(cli, "fault", "list", "--json"))["links"][2] == {"name": "pg_outbox", "enabled": True,
                                                                         "toxics": []}


def test_cut_sse_drops_a_stream_and_restore_brings_it_back(cli: Cli, info: dict[str, Any]) -> None:
    run = start_run(info, steps=40, interval_ms=100)
    stream = f"{info['api_url']}/api/agents/runs/{run}/stream"
    with httpx.stream("GET", stream, timeout=httpx.Timeout(5.0)) as resp:
        lines = resp.iter_lines()
        assert next(lines) is not None
        assert "cut sse" in ok(cli, "fault", "cut", "sse")
        with pytest.raises(httpx.HTTPError):  # the open stream is closed (or stalls: a read timeout)
            for _ in lines:
                pass
    with pytest.raises(httpx.ConnectError):
        httpx.get(stream, timeout=2)
    assert "restored sse" in ok(cli, "fault", "restore", "sse")
    with httpx.stream("GET", stream, timeout=5) as resp:
        assert resp.status_code == 200 and next(resp.iter_lines()) is not None


def test_killed_outbox_worker_stops_publishing_and_restart_resumes_it(cli: Cli, info: dict[str, Any],
                                                                      state: Path) -> None:
    assert "killed outbox-worker-0" in ok(cli, "fault", "kill", "outbox-worker-0")
    assert "outbox-worker-0  dead" in ok(cli, "fault", "list")
    run = start_run(info)
    until(lambda: query(info, "SELECT state FROM runs WHERE id = %s", run)[0] == "succeeded", "the run to finish")
    time.sleep(0.5)
    assert unpublished(info, run) > 0
    assert "outbox-worker-0 started again" in ok(cli, "fault", "restart", "outbox-worker-0")
    until(lambda: published(info, run), "the restarted worker to publish")

    # the runbook's action, asked of the owner: a new pid, in stack.json too (the owner's bookkeeping)
    old = pid_of(state, "outbox-worker-0")
    code, out, err = cli("recover", "restart-outbox", "--json")
    assert code == 0, out + err
    [entry] = json.loads(out)["restarted"]
    assert entry["name"] == "outbox-worker-0" and entry["old_pid"] == old != entry["new_pid"]
    assert pid_of(state, "outbox-worker-0") == entry["new_pid"]
    again = start_run(info)
    until(lambda: published(info, again), "the worker restarted by `recover restart-outbox` to publish")


def test_armed_failpoint_fires(cli: Cli, info: dict[str, Any]) -> None:
    assert "armed outbox.before_publish=1*crash in outbox-worker-0" in ok(
        cli, "fault", "failpoint", "arm", "outbox-worker-0", "outbox.before_publish", "1*crash")
    run = start_run(info)
    until(lambda: "outbox-worker-0  dead" in ok(cli, "fault", "list"), "the failpoint to crash the worker")
    assert "restarted outbox-worker-0" in ok(cli, "fault", "restart", "outbox-worker-0")
    until(lambda: published(info, run), "the restarted worker to publish")
    assert "disarmed outbox.before_publish" in ok(cli, "fault", "failpoint", "disarm", "outbox-worker-0",
                                                  "outbox.before_publish")


def test_lock_on_run_outbox_stalls_that_run_only(cli: Cli, info: dict[str, Any], state: Path) -> None:
    locked = start_run(info, steps=20, interval_ms=100)
    assert f"locked the run_outbox row of {locked}" in ok(cli, "fault", "db", "lock-outbox", locked, "--for", "4s")
    other = start_run(info)
    until(lambda: published(info, other), "the other run to be published during the lock")
    waiting = "SELECT count(*) >= 3 AND min(ts) < now() - interval '1 second' FROM run_events" \
              " WHERE runId = %s AND publishedAt IS NULL"
    until(lambda: bool(query(info, waiting, locked)[0]), "events of the locked run to wait over a second")
    assert active_faults(state / "fault_log.jsonl")  # still locked: the lock made them wait
    until(lambda: published(info, locked), "the locked run to be published once the lock ends")


def test_pause_resume_and_terminate_sessions(cli: Cli, info: dict[str, Any]) -> None:
    assert "paused queue-worker-0" in ok(cli, "fault", "pause", "queue-worker-0")
    run = start_run(info)
    time.sleep(0.5)
    assert query(info, "SELECT state FROM runs WHERE id = %s", run)[0] == "queued"
    assert "resumed queue-worker-0" in ok(cli, "fault", "resume", "queue-worker-0")
    until(lambda: published(info, run), "the resumed queue worker's run")
    out = ok(cli, "fault", "db", "terminate-sessions", "--role", "outbox")
    assert "terminated" in out and "pids []" not in out
    again = start_run(info)
    until(lambda: published(info, again), "the outbox worker to reconnect and publish")


def test_a_second_outbox_worker_publishes_while_the_first_is_down(cli: Cli, info: dict[str, Any], state: Path) -> None:
    assert "started outbox-worker-1" in ok(cli, "fault", "start-replica", "outbox-worker")
    assert "outbox-worker-1  running" in ok(cli, "fault", "list")
    assert "outbox-worker-1" in {p["name"] for p in json.loads((state / "stack.json").read_text())["processes"]}
    ok(cli, "fault", "kill", "outbox-worker-0")
    run = start_run(info)
    until(lambda: published(info, run), "outbox-worker-1 to publish while outbox-worker-0 is dead")
    ok(cli, "fault", "restart", "outbox-worker-0")
    code, _, err = cli("fault", "start-replica", "api")
    assert code == 2 and err.strip() == ("harness: error: cannot start another 'api'; roles that can:"
                                         " outbox-worker, queue-worker"), err


def test_buffering_switches_nginx_live(cli: Cli, info: dict[str, Any]) -> None:
    assert "nginx buffering on" in ok(cli, "fault", "buffering", "on")
    assert json.loads(ok(cli, "fault", "list", "--json"))["nginx_buffering"] is True
    run = start_run(info)  # the service still answers through the reloaded nginx
    until(lambda: published(info, run), "a run through the reloaded nginx")
    assert "ended buffering nginx" in ok(cli, "fault", "buffering", "off")
    assert json.loads(ok(cli, "fault", "list", "--json"))["nginx_buffering"] is False


def test_down_ends_active_faults_and_leaves_nothing(cli: Cli, info: dict[str, Any], state: Path) -> None:
    ok(cli, "fault", "add", "pg_queue", "latency", "latency=100", "--direction", "up")
    ok(cli, "fault", "pause", "api-0")
    assert len(active_faults(state / "fault_log.jsonl")) == 2
    pids = [info["owner_pid"], *(p["pid"] for p in json.loads((state / "stack.json").read_text())["processes"])]
    down = run_harness(state, "down")
    assert down.returncode == 0, down.stderr
    assert active_faults(state / "fault_log.jsonl") == []
    assert not any(process_alive(pid) for pid in pids)
    assert not (state / "stack.json").exists() and not list((state / "procs").glob("*.json"))
