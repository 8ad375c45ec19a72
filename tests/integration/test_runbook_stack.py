"""Each runbook command against the real stack, under the condition it diagnoses.

Shared session stack (fast intervals), clean database per test, proxies and paused processes healed
between tests. The CLI runs in-process (`harness.cli.main`), so exit codes and output are the user's.
Log-based checks use short windows (`--since`, `--lag-window`) or `--run`, because the session's log
folder keeps the lines of earlier tests.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from harness.nemesis import Latency
from harness.stack import LocalStack
from harness.toolkit import Scenario

from cli_helpers import detached_stack, run_cli

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
WAIT_S = 20.0  # bound of each wait for the stack to reach a condition


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], stack: LocalStack, clean_db: str,
        monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("HARNESS_DSN", stack.info.dsn)
    return lambda *args: run_cli(capsys, *args)


def as_json(out: str) -> Any:
    return json.loads(out)


def published(scenario: Scenario, run_id: str) -> bool:
    """The run succeeded, the outbox passed its last event, and every event has its
    metric.events_published line (logged after the mark commits): what the log-based commands read."""
    row = scenario.db.run(run_id)
    return (row.state == "succeeded" and row.backlog is not None and row.backlog <= 0
            and len(scenario.logs.lines("metric.events_published", run_id=run_id)) >= row.last_seq)


async def test_steady_state(cli: Callable[..., tuple[int, str, str]], scenario: Scenario) -> None:
    started = time.time()
    runs = [await scenario.start_run(steps=5, interval_ms=20) for _ in range(3)]
    await scenario.until(lambda: all(published(scenario, r) for r in runs), WAIT_S, "runs to finish and be published")
    # Windows cover this test only: earlier tests on the shared stack's logs were not steady.
    window = f"{math.ceil(time.time() - started) + 1}s"
    logs = scenario.stack.info.logs_dir
    code, out, _ = cli("diagnose", runs[0], "--json")
    assert code == 0 and as_json(out)["verdict"] == "finished"
    code, out, _ = cli("alerts", "--json", "--logs", logs, "--backlog-for", "2s",
                       "--lag-window", window, "--churn-window", window)
    assert code == 0 and as_json(out)["firing"] == [], out
    code, out, _ = cli("lag", "--logs", logs, "--since", window, "--json")
    assert code == 0 and as_json(out)["overall"]["cls"] == "normal"
    code, out, _ = cli("schema-check")
    assert code == 0 and "schema: ok" in out
    code, out, _ = cli("backlog", "--json")
    assert code == 0 and as_json(out)["rows"] == []


async def test_outbox_paused_is_stuck_and_backlog_fires_then_cancel_and_restart(
        cli: Callable[..., tuple[int, str, str]], scenario: Scenario) -> None:
    with scenario.nemesis.paused("outbox-worker-0"):
        run = await scenario.start_run(steps=200, interval_ms=20)
        await scenario.until(lambda: scenario.db.run(run).last_seq >= 30, WAIT_S, "appends")
        await scenario.hold(1.2)  # the backlog must hold for --backlog-for
        code, out, _ = cli("diagnose", run, "--json")
        result = as_json(out)
        assert code == 1 and result["verdict"] == "outbox_stuck" and result["evidence"]["nextSeq"] == 1
        assert "restart-outbox" in result["action"][0]
        code, out, _ = cli("alerts", "--json", "--backlog-threshold", "5", "--backlog-for", "1s")
        assert code == 1 and "outbox_backlog" in as_json(out)["firing"], out
        code, out, _ = cli("backlog", "--json")
        assert as_json(out)["rows"][0]["runId"] == run and as_json(out)["rows"][0]["backlog"] >= 30
        # the Prometheus rule's gauge: reported by the API while the outbox worker itself is stuck
        await scenario.until(lambda: backlog_gauge(scenario) >= 30, WAIT_S, "outbox_backlog_avg on the API's /metrics")
        # cancel refuses a run that is not confirmed stuck (outbox behind < 30 s), then cancels with a short bound
        code, _, err = cli("recover", "cancel-run", run, "--confirm")
        assert code == 2 and "not confirmed stuck" in err
        code, _, err = cli("recover", "cancel-run", run, "--stuck-after", "0.5s")
        assert code == 2 and "--confirm" in err
        code, out, _ = cli("recover", "cancel-run", run, "--confirm", "--stuck-after", "0.5s", "--json")
        assert code == 0 and as_json(out)["cancelled"]
        cancelled = scenario.db.run(run)
        assert cancelled.state == "cancelled" and cancelled.next_seq is None  # its run_outbox row deleted
        assert cancelled.published_max is None  # publishedAt never set by hand
        # restart the (paused) outbox worker: the backlog of another run drains
        other = await scenario.start_run(steps=3)
        restarted = scenario.runbook.restart_outbox()
    assert restarted.restarted[0]["old_pid"] != restarted.restarted[0]["new_pid"]
    await scenario.until(lambda: published(scenario, other), WAIT_S, "the restarted outbox to publish")


def backlog_gauge(scenario: Scenario) -> float:
    text = httpx.get(f"{scenario.stack.info.api_direct_url}/metrics", timeout=5).text
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("outbox_backlog_avg "))


async def test_queue_worker_stopped_is_never_started(cli: Callable[..., tuple[int, str, str]],
                                                     scenario: Scenario) -> None:
    with scenario.nemesis.paused("queue-worker-0"):
        run = await scenario.start_run()
        code, out, _ = cli("diagnose", run)
        assert code == 1 and "verdict: never_started" in out and "restart the queue worker" in out
        async with scenario.client() as client:
            without_job = await client.start_run(job=False)  # a run whose job was never queued
        code, out, _ = cli("diagnose", without_job, "--json")
        assert code == 1 and as_json(out)["evidence"]["case"] == "no_job", out
        code, _, _ = cli("recover", "cancel-run", run, "--confirm")
        assert code == 2  # queued, not started: the runbook's UPDATE would not touch it


async def test_removed_event_row_is_a_seq_gap(cli: Callable[..., tuple[int, str, str]], scenario: Scenario) -> None:
    with scenario.nemesis.paused("outbox-worker-0"):
        run = await scenario.start_run(steps=3)
        await scenario.until(lambda: scenario.db.run(run).state == "succeeded", WAIT_S, "the run")
        scenario.nemesis.remove_event(run, 1)
    await scenario.until(lambda: scenario.logs.lines("outbox.gap", run_id=run), WAIT_S, "the outbox to stop at the gap")
    code, out, _ = cli("diagnose", run, "--json", "--logs", scenario.stack.info.logs_dir)
    result = as_json(out)
    assert code == 1 and result["verdict"] == "seq_gap", out
    assert result["evidence"]["expectedSeq"] == 1 and result["evidence"]["nextPresentSeq"] == 2
    assert result["action"][0] == "DO NOT manually insert events."


async def test_latency_on_pg_outbox_is_warning_then_critical(cli: Callable[..., tuple[int, str, str]],
                                                             scenario: Scenario) -> None:
    logs = scenario.stack.info.logs_dir
    with scenario.nemesis.toxic("pg_outbox", Latency(latency=25)):
        slow = await scenario.start_run(steps=8, interval_ms=200)
        await scenario.until(lambda: published(scenario, slow), WAIT_S, "the run under 25 ms latency")
    code, out, _ = cli("lag", "--logs", logs, "--since", "1h", "--run", slow, "--json")
    assert code == 1 and as_json(out)["overall"]["cls"] == "warning", out
    with scenario.nemesis.toxic("pg_outbox", Latency(latency=200)):
        slower = await scenario.start_run(steps=8, interval_ms=50)
        await scenario.until(lambda: published(scenario, slower), 40, "the run under 200 ms latency")
    code, out, _ = cli("lag", "--logs", logs, "--since", "1h", "--run", slower)
    assert code == 1 and "class: critical" in out
    code, out, _ = cli("alerts", "--json", "--logs", logs, "--lag-window", "8s", "--lag-p95-ms", "500")
    assert code == 1 and "high_lag" in as_json(out)["firing"], out


async def test_cutting_the_sse_link_repeatedly_fires_churn(cli: Callable[..., tuple[int, str, str]],
                                                          scenario: Scenario) -> None:
    run = await scenario.start_run(steps=300, interval_ms=50)
    consuming = scenario.consume(run, backoff_initial_s=0.02, backoff_max_s=0.05)
    try:
        for cut in range(12):  # each connection gets a frame, then the link goes down under it
            await scenario.until(lambda: len([c for c in scenario.conns(run) if c.frames]) > cut, WAIT_S,
                                 f"connection {cut} to receive a frame")
            with scenario.nemesis.down("sse"):
                pass
        await scenario.until(lambda: len(scenario.logs.lines("stream-run", process="api-*", run_id=run)) >= 12,
                             WAIT_S, "the API to log every connection")
    finally:
        consuming.cancel()
    code, out, _ = cli("alerts", "--json", "--logs", scenario.stack.info.logs_dir, "--churn-window", "30s")
    body = as_json(out)
    assert code == 1 and "sse_churn" in body["firing"], out
    churn = next(a for a in body["alerts"] if a["name"] == "sse_churn")
    assert churn["evidence"]["runs"][run] >= 11


async def test_runbook_check_on_the_runbook_and_on_a_camel_case_schema(
        cli: Callable[..., tuple[int, str, str]], scenario: Scenario, tmp_path: Path) -> None:
    stack = scenario.stack
    run = await scenario.start_run(steps=3)
    await scenario.until(lambda: published(scenario, run), WAIT_S, "a run with log lines")
    code, out, _ = cli("runbook-check", str(RUNBOOK), "--json", "--logs", stack.info.logs_dir)
    blocks = as_json(out)["blocks"]
    sql = [b for b in blocks if b["kind"] == "sql"]
    assert len(sql) == 10 and all(b["status"] == "ok" for b in sql), [b for b in sql if b["status"] != "ok"]
    jq_broken = [b for b in blocks if b["kind"] == "pipeline" and "grep -h" in " ".join(b["details"])]
    assert code == 1 and jq_broken  # grep over several files prefixes names: the runbook's jq pipelines break
    scratch = "runbook_orm_variant"
    with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
        conn.execute(f"CREATE DATABASE {scratch}")
    dsn = stack.info.dsn.rsplit("/", 1)[0] + f"/{scratch}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ORM_SCHEMA)
        code, out, _ = cli("runbook-check", str(RUNBOOK), "--dsn", dsn, "--search-path", "orm", "--json")
        sql = [b for b in as_json(out)["blocks"] if b["kind"] == "sql"]
        broken = [b for b in sql if b["status"] == "error"]
        assert code == 1 and len(broken) >= 7
        assert any('column "startedat" does not exist' in b["message"] for b in broken)
        code, out, _ = cli("schema-check", "--dsn", dsn, "--search-path", "orm")
        assert code == 1 and "MISSING column run_events.runid" in out and 'quoted "runId"' in out
    finally:
        with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


def test_runbook_check_on_a_stack_without_traffic_says_not_exercised_until_exercised(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with detached_stack(tmp_path / "state", "--fast"):  # its own stack: the session's has served runs
        code, out, err = run_cli(capsys, "runbook-check", str(RUNBOOK), "--json")
        pipelines = [b for b in as_json(out)["blocks"] if b["kind"] == "pipeline"]
        assert code == 0, err + out
        unexercised = [b for b in pipelines if b["status"] == "unexercised"]
        assert any("metric.events_published" in b["text"] for b in unexercised), pipelines
        assert not [b for b in pipelines if b["status"] == "error"], pipelines
        code, out, _ = run_cli(capsys, "runbook-check", str(RUNBOOK))
        assert code == 0 and "not exercised" in out and "broken" not in out.replace("0 broken", ""), out
        code, out, err = run_cli(capsys, "runbook-check", str(RUNBOOK), "--exercise", "--json")
        pipelines = [b for b in as_json(out)["blocks"] if b["kind"] == "pipeline"]
        broken = [b for b in pipelines if b["status"] == "error"]
        assert code == 1 and broken, err + out  # the runbook's multi-file grep | jq, on real lines now
        assert all("grep -h" in " ".join(b["details"]) for b in broken), broken
        assert not [b for b in pipelines if b["status"] == "unexercised"], pipelines


ORM_SCHEMA = """
CREATE SCHEMA orm;
CREATE TABLE orm.runs (id text PRIMARY KEY, state text, "createdAt" timestamptz, "startedAt" timestamptz,
                       "finishedAt" timestamptz, "lastSeq" bigint DEFAULT 0);
CREATE TABLE orm.run_events (id bigserial PRIMARY KEY, "runId" text REFERENCES orm.runs, seq bigint, type text,
                             payload jsonb, ts timestamptz, "publishedAt" timestamptz, UNIQUE ("runId", seq));
CREATE INDEX ON orm.run_events ("runId", "publishedAt");
CREATE TABLE orm.run_outbox ("runId" text PRIMARY KEY, "nextSeq" bigint DEFAULT 1, "updatedAt" timestamptz);
"""


def test_bad_input_is_one_line_and_exit_2(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    no_sql = tmp_path / "no-sql.md"
    no_sql.write_text("# Runbook\n\n```bash\necho hi\n```\n")
    cases = [("diagnose", "no-such-run"), ("diagnose", "x", "--dsn", "postgresql://nobody@127.0.0.1:1/x"),
             ("lag", "--logs", str(tmp_path / "missing")), ("runbook-check", str(no_sql)),
             ("lag", "--logs", str(tmp_path), "--since", "soon")]
    for args in cases:
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("harness: error:"), (args, err)
        assert "Traceback" not in err + out
