"""The runbook's view of a stack at the moment a runbook scenario failed, kept beside its report:
`diagnose.json` (the "Run Stuck" checklist of each run the test left open or finished, as `harness
diagnose --json` gives it) and `alerts.json` (`harness alerts --json`, the runbook's thresholds).

Taken in the pytest child at the failing test's teardown, against the stack it ran on, before its faults
are healed by the next test or its stack is stopped. What cannot be read (the test killed the database)
is written as `{"error": ...}`: the post-mortem never turns a failure into an error."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import HarnessError
from harness.history import History
from harness.runbook._db import connect, fetch_all
from harness.runbook.alerts import alerts_json
from harness.stack import LocalStack
from harness.toolkit.sources import Runbook

__all__ = ["FILES", "take_postmortem"]

FILES = ("diagnose.json", "alerts.json")
MAX_RUNS = 10  # each diagnosis reads the whole log folder, as `harness diagnose` does
# the runs still open, and those that ended while the test ran (the newest first)
RUNS_SQL = """SELECT id FROM runs WHERE finishedAt IS NULL OR finishedAt >= to_timestamp(%(since)s)
ORDER BY finishedAt DESC NULLS FIRST, id LIMIT %(limit)s"""


def take_postmortem(stack: LocalStack, since: float, folder: Path) -> None:
    """`folder/diagnose.json` and `folder/alerts.json` for `stack` now; `since`: the test's start (epoch s)."""
    folder.mkdir(parents=True, exist_ok=True)
    runbook = Runbook(stack, History())  # the runbook bound to this stack and its target's log format
    diagnose: dict[str, Any]
    alerts: dict[str, Any]
    try:
        with connect(stack.info.dsn) as conn:
            run_ids = [row["id"] for row in fetch_all(conn, RUNS_SQL, {"since": since, "limit": MAX_RUNS})]
        diagnose = {"runs": [runbook.diagnose(run_id).to_dict() for run_id in run_ids]}
    except (HarnessError, psycopg.Error) as exc:
        diagnose = {"error": str(exc)}
    try:
        alerts = alerts_json(runbook.alerts())
    except (HarnessError, psycopg.Error) as exc:
        alerts = {"error": str(exc)}
    for name, data in zip(FILES, (diagnose, alerts)):
        (folder / name).write_text(json.dumps(data, indent=2, default=str))
