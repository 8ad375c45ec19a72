"""Running the `harness` CLI in-process, as a user would see it, or as its own process (shared by the
integration tests)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from harness.cli import main
from harness.mutants import MUTANTS_DIR, apply_mutant, parse_mutant
from harness.stack.waiting import wait_until

Cli = Callable[..., tuple[int, str, str]]  # `harness ARGS` in-process: (exit code, stdout, stderr)
# A quick, sure failure: cursor_off_by_one's scenario, one parameter (the stream resends the event at the cursor)
MUTANT = "cursor_off_by_one"
MUTANT_SCENARIO = "test_reconnect_from_a_cursor_starts_at_the_next_seq[asyncio-harness-from_seq]"
MUTANT_NODEID = f"scenarios/test_conformance.py::{MUTANT_SCENARIO}"


def mutant_service(dest: Path) -> Path:
    """The MUTANT's service in `dest`: the --service-dir (HARNESS_SERVICE_DIR) that fails MUTANT_SCENARIO."""
    return apply_mutant(parse_mutant(MUTANTS_DIR / f"{MUTANT}.patch"), dest)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS`: its exit code, stdout and stderr."""
    capsys.readouterr()
    try:
        main([*args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def run_harness(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`harness ARGS` as a separate process on the stack state in `state` (`up --detach`, `down`)."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HARNESS_STATE_DIR": str(state), "COLUMNS": "200"})


@contextlib.contextmanager
def detached_stack(state: Path, *up_args: str) -> Iterator[Path]:
    """A stack of `harness up --detach UP_ARGS` on the state in `state`, with HARNESS_STATE_DIR pointing
    at it meanwhile; `harness down` after (a test may already have done it)."""
    up = run_harness(state, "up", "--detach", *up_args)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HARNESS_STATE_DIR", str(state))
            yield state
    finally:
        run_harness(state, "down")


def stack_info(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "stack.json").read_text())
    return data


def ok(cli: Cli, *args: str) -> str:
    """`harness ARGS`, which must exit 0; its stdout."""
    code, out, err = cli(*args)
    assert code == 0, (args, out, err)
    return out


def start_run(info: dict[str, Any], steps: int = 3, interval_ms: int = 20) -> str:
    """A run with a job for the queue worker, created over HTTP through the sse proxy."""
    resp = httpx.post(f"{info['api_url']}/api/agents/runs", json={"script": {"steps": steps, "interval_ms": interval_ms}},
                      timeout=10)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["runId"])


def query(info: dict[str, Any], sql: str, *params: Any) -> Any:
    with psycopg.connect(info["dsn"], autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()


def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 0.1 s until it holds; an exception it raises ends the wait at once."""
    wait_until(condition, timeout, what, interval=0.1, max_interval=0.1, fatal=(Exception,))
