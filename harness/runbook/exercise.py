"""`runbook-check --exercise`: one short run through the running stack, so the runbook's log pipelines have
lines to be tried on (a run started by the queue worker, its events published, its stream read from
`fromSeq=0` to the end: `worker:job:start`, `metric.events_published`, `stream-run` with `fromSeq`)."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.errors import RunbookError, WaitTimeout
from harness.model import TERMINAL_TYPE
from harness.service_logs import read_log_lines
from harness.stack.waiting import wait_until
from harness.workload.tls import tls_context

__all__ = ["exercise"]

RUNS_PATH = "/api/agents/runs"  # the service contract's (harness/workload/runs_client.py)


def exercise(api_url: str, logs_dir: Path, timeout_s: float = 30.0) -> str:
    """Create a run of three quick steps, read its stream to the end, wait for its published lines; its id."""
    try:
        with httpx.Client(base_url=api_url, timeout=timeout_s, verify=tls_context()) as client:
            resp = client.post(RUNS_PATH, json={"script": {"steps": 3, "interval_ms": 20}})
            if resp.status_code != 201:
                raise RunbookError(f"--exercise: creating a run at {api_url} answered {resp.status_code}")
            run_id = str(resp.json().get("runId"))
            with client.stream("GET", f"{RUNS_PATH}/{run_id}/stream", params={"fromSeq": "0"}) as stream:
                for text in stream.iter_lines():
                    if TERMINAL_TYPE in text:
                        break
    except httpx.HTTPError as exc:
        raise RunbookError(f"--exercise: the stack's API at {api_url} failed: {exc}") from exc
    try:
        wait_until(lambda: any(ln.run_id == run_id and ln.msg == "metric.events_published"
                               for ln in read_log_lines(logs_dir)), timeout_s, f"log lines of run {run_id}")
    except WaitTimeout as exc:
        raise RunbookError(f"--exercise: {exc}") from exc
    return run_id
