"""The runbook's safe manual actions: restart the outbox worker; cancel a run confirmed stuck.

Nothing here ever sets ``publishedAt``: the runbook forbids it. ``cancel_run`` runs the runbook's
"Clear stuck run (LAST RESORT)" statements verbatim, in one transaction, and only for a run that the
checklist confirms stuck: started, and its outbox stuck for ``stuck_after_s``, a seq gap, or no event
for ``stalled_after_s``.

Restarting the outbox worker, ``restart_outbox_in_stack(stack)``, runs where the `LocalStack` object
lives: in tests and scenarios, and in the owner of a stack of `harness up`, which the CLI asks through
its control channel (harness/control). Each ``outbox-worker-*`` process (``all-*`` on a target doing
every role in one process) is stopped (SIGTERM, bounded) and started again with the same spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import RecoveryError
from harness.runbook._db import connect, fetch_one
from harness.runbook.diagnose import Diagnosis, diagnose

__all__ = ["CANCEL_SQL", "CancelResult", "RestartResult", "cancel_run", "is_stuck", "restart_outbox_in_stack"]

CANCEL_SQL = ("UPDATE runs SET state = 'cancelled', finishedAt = NOW()\nWHERE id = %(runId)s AND state = 'started'",
              "DELETE FROM run_outbox WHERE runId = %(runId)s")
LAST_EVENT_SQL = """SELECT extract(epoch FROM now() - coalesce(max(e.ts), r.startedAt)) AS idle_s
FROM runs r LEFT JOIN run_events e ON e.runId = r.id WHERE r.id = %(runId)s GROUP BY r.startedAt"""
OUTBOX_ROLE = "outbox-worker"


@dataclass
class CancelResult:
    run_id: str
    cancelled: bool
    reason: str
    diagnosis: dict[str, Any]
    statements: list[str] = field(default_factory=lambda: list(CANCEL_SQL))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RestartResult:
    restarted: list[dict[str, Any]]  # name, old_pid, new_pid
    how: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_stuck(diag: Diagnosis, idle_s: float, *, stuck_after_s: float, stalled_after_s: float) -> str | None:
    """Why the run counts as confirmed stuck, or None (pure)."""
    if diag.verdict == "seq_gap":
        return f"seq gap at {diag.evidence.get('expectedSeq')}"
    if diag.verdict == "outbox_stuck" and diag.evidence.get("eventAgeSeconds", 0) >= stuck_after_s:
        return f"outbox stuck: seq {diag.evidence['nextSeq']} unpublished for {diag.evidence['eventAgeSeconds']}s"
    if idle_s >= stalled_after_s:
        return f"stalled: no event for {idle_s:.1f}s"
    return None


def cancel_run(dsn: str, run_id: str, *, confirm: bool, stuck_after_s: float = 30.0,
               stalled_after_s: float = 600.0) -> CancelResult:
    if not confirm:
        raise RecoveryError(f"cancel-run is the runbook's last resort: pass --confirm to cancel {run_id}")
    diag = diagnose(dsn, run_id)
    state = diag.evidence.get("state")
    if state != "started":
        raise RecoveryError(f"refusing to cancel {run_id}: it is {state}, and the runbook only cancels a started run"
                            f" (diagnosis: {diag.verdict}; {diag.action[0]})")
    with connect(dsn, autocommit=False) as conn:
        idle = float((fetch_one(conn, LAST_EVENT_SQL, {"runId": run_id}) or {}).get("idle_s") or 0.0)
        why = is_stuck(diag, idle, stuck_after_s=stuck_after_s, stalled_after_s=stalled_after_s)
        if why is None:
            raise RecoveryError(f"refusing to cancel {run_id}: it is not confirmed stuck ({diag.verdict}, last event"
                                f" {idle:.1f}s ago; stuck needs the outbox behind for {stuck_after_s:g}s, a seq gap,"
                                f" or no event for {stalled_after_s:g}s)")
        with conn.transaction():
            updated = conn.execute(CANCEL_SQL[0], {"runId": run_id}).rowcount
            if updated != 1:
                raise RecoveryError(f"refusing to cancel {run_id}: it is no longer started")
            conn.execute(CANCEL_SQL[1], {"runId": run_id})
        conn.commit()
    return CancelResult(run_id, True, why, diag.to_dict())


# ---- restart the outbox worker ---------------------------------------------------------------------

def restart_outbox_in_stack(stack: Any, timeout: float = 30.0) -> RestartResult:
    """Restart every outbox worker of a `LocalStack` (on an `all` target: each `all` process, which does
    the outbox's work) and wait until each answers /healthz."""
    procs = stack.service.carrying(OUTBOX_ROLE) if stack.service else []
    if not procs:
        raise RecoveryError("this stack runs no outbox worker")
    done = []
    for proc in procs:
        old = proc.process.pid
        proc.process.restart()
        done.append({"name": proc.name, "old_pid": old, "new_pid": proc.process.pid})
    stack.service.wait_ready(procs, timeout)
    return RestartResult(done, "LocalStack.process restart (SIGTERM, then start with the same spec)")
