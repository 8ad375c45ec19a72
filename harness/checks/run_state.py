"""A run's stored state agrees with its terminal event (runbook: ``runs.state`` and ``RunFinished``).

For each run of the snapshot:
- a run with a ``RunFinished`` row is in the state its payload's ``status`` names (``succeeded`` when
  the payload has none, as the contract's default);
- a terminal state without a ``RunFinished`` row only as the runbook's last-resort cancel: state
  ``cancelled`` and its ``run_outbox`` row removed;
- every ok ``read`` (``GET /api/agents/runs/{id}``) invoked after the terminal event was certainly
  committed reports the stored state. Committed by then: the row's ``publishedAt`` (on the harness clock,
  plus the offset's uncertainty), a ``RunFinished`` frame received, or an ok append or cancel of it.
No runs in the snapshot: ``unknown``.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import MAX_LISTED, terminal_committed_at
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import TERMINAL_STATES, TERMINAL_TYPE, RunSnapshot, Snapshot
from harness.history import Op, of_kind, pair_ops

NAME = "run_state"
DEFAULT_STATUS = "succeeded"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    if snapshot is None or not snapshot.runs:
        return unknown("no runs in the snapshot")
    pairs = pair_ops(of_kind(history, Op))
    committed_at = terminal_committed_at(history, snapshot)
    problems: list[dict[str, Any]] = []
    reads = 0
    for run in snapshot.runs.values():
        problems += _stored_state(run)
        committed = committed_at.get(run.run_id)
        if committed is None:
            continue
        for invoke, done in pairs:
            value = done.value if done is not None and isinstance(done.value, dict) else {}
            if done is None or done.type != "ok" or invoke.f != "read" or value.get("run_id") != run.run_id:
                continue
            if invoke.wall <= committed:
                continue
            reads += 1
            if value.get("state") != run.state:
                problems.append({"problem": "a read after the terminal event reports another state",
                                 "run_id": run.run_id, "read_state": value.get("state"), "stored_state": run.state,
                                 "read_invoked_at": invoke.wall, "terminal_committed_by": committed})
    evidence = {"runs": len(snapshot.runs), "reads_compared": reads}
    if problems:
        return failed(counterexample=problems[0], failures=problems[:MAX_LISTED], failure_count=len(problems),
                      **evidence)
    return passed(**evidence)


def _stored_state(run: RunSnapshot) -> list[dict[str, Any]]:
    where = {"run_id": run.run_id, "state": run.state}
    if any(e.type == TERMINAL_TYPE for e in run.events):
        status = run.terminal_status or DEFAULT_STATUS
        if run.state != status:
            return [{"problem": "the stored state is not the terminal event's status", **where,
                     "terminal_status": status, "terminal_seq": run.terminal_seq}]
        return []
    if run.state in TERMINAL_STATES and (run.state != "cancelled" or run.outbox_next_seq is not None):
        return [{"problem": "a terminal state without a RunFinished event, other than the runbook's last-resort "
                            "cancel (cancelled, outbox row removed)", **where,
                 "outbox_next_seq": run.outbox_next_seq}]
    return []
