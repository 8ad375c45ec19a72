"""The runbook's safe manual actions: restart the outbox worker; cancel a run confirmed stuck.

Nothing here ever sets ``publishedAt``: the runbook forbids it. ``cancel_run`` runs the runbook's
"Clear stuck run (LAST RESORT)" statements verbatim, in one transaction, and only for a run that the
checklist confirms stuck: started, and its outbox stuck for ``stuck_after_s``, a seq gap, or no event
for ``stalled_after_s``.

Restarting the outbox worker:
- ``restart_outbox_in_stack(stack)``: through a `LocalStack` object (tests, scenarios): each
  ``outbox-worker-*`` process (``all-*`` on a target doing every role in one process) is stopped
  (SIGTERM, bounded) and started again with the same spec.
- ``restart_outbox_from_state(files)``: from another process (the CLI) on a stack run by `harness up`.
  The owner keeps no restart channel, so this re-executes each worker the way it was started: its
  argv, environment and working directory read from ``/proc/<pid>``, its log appended to, in its own
  process group, recorded in a pid file under ``<state>/procs`` in the owner's name so `harness down`
  reaps it, and its new pid written back to ``stack.json``. Needs the same user as the stack (or root).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.errors import RecoveryError
from harness.runbook._db import connect, fetch_one
from harness.runbook.diagnose import Diagnosis, diagnose
from harness.stack.waiting import wait_until

__all__ = ["CANCEL_SQL", "CancelResult", "RestartResult", "cancel_run", "is_stuck", "restart_outbox_from_state",
           "restart_outbox_in_stack"]

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


def restart_outbox_from_state(state_dir: Path, timeout: float = 30.0) -> RestartResult:
    stack_json = state_dir / "stack.json"
    try:
        info = json.loads(stack_json.read_text())
    except (OSError, ValueError) as exc:
        raise RecoveryError(f"no running stack: {stack_json} is missing; start one with `harness up`") from exc
    workers = [p for p in info.get("processes", []) if p.get("role") in (OUTBOX_ROLE, "all")]
    if not workers:
        raise RecoveryError(f"the stack in {stack_json} runs no outbox worker")
    done = [_respawn(p, state_dir, info.get("owner_pid"), timeout) for p in workers]
    pids = {d["name"]: d["new_pid"] for d in done}
    for proc in info["processes"]:
        proc["pid"] = pids.get(proc["name"], proc["pid"])
    tmp = stack_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(stack_json)
    return RestartResult(done, "re-executed from /proc (argv, environment, cwd); log appended")


def _respawn(proc: dict[str, Any], state_dir: Path, owner_pid: int | None, timeout: float) -> dict[str, Any]:
    pid, name = int(proc["pid"]), proc["name"]
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        env_items = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError as exc:
        raise RecoveryError(f"{name} (pid {pid}) is not running or not readable ({exc.strerror});"
                            " restart the stack (`harness down && harness up`)") from exc
    env = dict(item.decode(errors="surrogateescape").partition("=")[::2] for item in env_items if b"=" in item)
    _stop_group(pid, name, timeout)
    with open(proc["log"], "ab") as log:
        child = subprocess.Popen([a.decode(errors="surrogateescape") for a in argv], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    _record(state_dir, owner_pid, name, child.pid)
    if proc.get("url"):
        _wait_healthy(f"{proc['url']}/healthz", child, name, timeout)
    return {"name": name, "old_pid": pid, "new_pid": child.pid}


def _stop_group(pid: int, name: str, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGCONT)  # a paused worker acts on SIGTERM only once continued
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise RecoveryError(f"not allowed to signal {name} (pid {pid}): run as the stack's user") from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.05)
    if _group_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    from harness.stack.processes import group_alive

    return group_alive(pgid)


def _record(state_dir: Path, owner_pid: int | None, name: str, pid: int) -> None:
    """A pid file in the janitor's format, owned by the stack's owner: `harness down` reaps it."""
    from harness.stack.processes import start_ticks

    owner = owner_pid or os.getpid()
    data = {"owner": {"name": "harness", "pgid": owner, "start_ticks": start_ticks(owner)},
            "groups": [{"name": name, "pgid": pid, "start_ticks": start_ticks(pid)}]}
    procs = state_dir / "procs"
    procs.mkdir(parents=True, exist_ok=True)
    (procs / f"{owner}-recover-{name}.json").write_text(json.dumps(data))


def _wait_healthy(url: str, child: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    def healthy() -> bool:
        if child.poll() is not None:  # a HarnessError: wait_until stops at once
            raise RecoveryError(f"the restarted {name} exited with {child.returncode}; see its log")
        return httpx.get(url, timeout=1.0).status_code == 200

    wait_until(healthy, timeout, f"the restarted {name} to answer {url}", interval=0.1)


