"""What a scenario reads besides the history, bound to its stack: the database (the observer's reads),
the service's log lines (the one log reader), and the runbook's diagnostics and actions as code."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PostgresError
from harness.history import History
from harness.observer import JobRow, RunRow, job_of, run_of
from harness.runbook import (
    AlertResult,
    AlertThresholds,
    BacklogRow,
    Diagnosis,
    backlog,
    cancel_run,
    diagnose,
    evaluate_alerts,
    restart_outbox_in_stack,
)
from harness.runbook.recovery import CancelResult, RestartResult
from harness.service_logs import RUNBOOK_LOGS, LogLine, read_log_lines
from harness.stack import LocalStack
from harness.target.profile import LogSpec

__all__ = ["Database", "Runbook", "ServiceLogs"]


@dataclass(frozen=True)
class Database:
    """The run and job rows as they are now (direct connection, never through a proxy)."""

    dsn: str

    def run(self, run_id: str) -> RunRow:
        row = run_of(self.dsn, run_id)
        if row is None:
            raise PostgresError(f"no run {run_id} in the database")
        return row

    def job(self, run_id: str) -> JobRow | None:
        return job_of(self.dsn, run_id)


@dataclass(frozen=True)
class ServiceLogs:
    """The service's JSON log lines (`LOGS_DIR/<process>.log`)."""

    folder: Path
    spec: LogSpec = RUNBOOK_LOGS  # the target's format and names (its profile's [logs])
    real_name: Callable[[str], str] = lambda name: name  # a role's name -> the process logging for it (`all-0`)

    def lines(self, msg: str | None = None, *, process: str = "*", run_id: str | None = None,
              since: float | None = None) -> list[LogLine]:
        """Lines of `msg` (all when None) logged by `process` (a name like `api-0`, or a glob like
        `outbox-worker-*`), of `run_id` only, and logged at or after `since` (epoch seconds) only, when
        given (a shared stack's logs hold earlier tests' lines), in time order."""
        lines = read_log_lines(self.folder, msg=msg, files=f"{self.real_name(process)}.log", run_id=run_id,
                               spec=self.spec)
        return lines if since is None else [ln for ln in lines if (ln.timestamp or 0.0) >= since]


@dataclass(frozen=True)
class Runbook:
    """The runbook's checklist and actions, as an operator would run them against this stack."""

    stack: LocalStack
    history: History

    @property
    def log_spec(self) -> LogSpec:
        """How this stack's target logs (its profile's [logs]): the runbook's log steps read it so."""
        return self.stack.profile.logs

    def diagnose(self, run_id: str) -> Diagnosis:
        """The "Run Stuck" checklist for one run: its verdict, evidence and action."""
        return diagnose(self.stack.info.dsn, run_id, Path(self.stack.info.logs_dir), self.log_spec)

    def backlog(self) -> list[BacklogRow]:
        """"Check outbox state without changes": the started runs with the largest backlog."""
        return backlog(self.stack.info.dsn)

    def cancel_run(self, run_id: str, *, stuck_after_s: float = 30.0, stalled_after_s: float = 600.0) -> CancelResult:
        """The last resort, run only for a run the checklist confirms stuck (else `RecoveryError`)."""
        return cancel_run(self.stack.info.dsn, run_id, confirm=True, stuck_after_s=stuck_after_s,
                          stalled_after_s=stalled_after_s)

    def alerts(self, thresholds: AlertThresholds | None = None) -> list[AlertResult]:
        """The runbook's alert rules evaluated on this stack's database and logs now."""
        return evaluate_alerts(self.stack.info.dsn, Path(self.stack.info.logs_dir), thresholds or AlertThresholds(),
                               self.log_spec)

    def restart_outbox(self) -> RestartResult:
        """"Restart the outbox worker": each outbox worker stopped and started again, then ready; the
        restart is an outage of the publish path, so its window goes into the history."""
        with self.history.fault("restart", "outbox-worker"):
            return restart_outbox_in_stack(self.stack)
