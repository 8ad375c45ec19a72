"""The runbook's "Run Stuck" checklist, step by step, ending in one verdict with its evidence and action.

Verdicts (and the exit status a command gives them):
- ``finished``      the run is terminal and the outbox has published every event (healthy)
- ``caught_up``     ``nextSeq > lastSeq``: outbox caught up, the run may still be executing (healthy)
- ``outbox_stuck``  the event at ``nextSeq`` exists with ``publishedAt IS NULL``: outbox stuck or slow
- ``seq_gap``       no event at ``nextSeq <= lastSeq``: append bug, alert engineering, never insert by hand
- ``never_started`` the run is still ``queued``: no job, or a job queued but not processed
- ``no_cursor``     a run that is not finished has no ``run_outbox`` row (removed by hand?)

The SQL of steps 1, 2 and 4 is the runbook's, with ``'<runId>'`` / ``<nextSeq>`` as parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import DiagnosisError
from harness.runbook._db import connect, fetch_all, fetch_one
from harness.service_logs import RUNBOOK_LOGS, read_log_lines
from harness.target.profile import LogSpec

__all__ = ["HEALTHY", "Diagnosis", "Step", "diagnose", "ACTIONS"]

STEP1_RUN = """SELECT id, state, startedAt, finishedAt, lastSeq
FROM runs
WHERE id = %(runId)s"""
STEP2_CURSOR = """SELECT runId, nextSeq, updatedAt
FROM run_outbox
WHERE runId = %(runId)s"""
STEP4_EVENT = """SELECT * FROM run_events
WHERE runId = %(runId)s AND seq = %(nextSeq)s"""
LOCKS = """SELECT * FROM pg_locks WHERE relation::regclass::text LIKE '%%run%%'"""
JOBS = """SELECT id, state, attempts, lockedBy, lockedUntil, createdAt, updatedAt
FROM run_jobs WHERE runId = %(runId)s ORDER BY id"""
AFTER_GAP = """SELECT min(seq) AS next_present, max(seq) FILTER (WHERE publishedAt IS NOT NULL) AS last_published,
       count(*) FILTER (WHERE publishedAt IS NULL) AS unpublished
FROM run_events WHERE runId = %(runId)s"""
EVENT_AGE = "SELECT extract(epoch FROM now() - %(ts)s::timestamptz) AS age_s"

TERMINAL_STATES = ("succeeded", "failed", "cancelled")
HEALTHY = frozenset({"finished", "caught_up"})

ACTIONS: dict[str, list[str]] = {
    "finished": ["Nothing to do: the run finished and every event is published."],
    "caught_up": ["Nothing to do yet: the run may still be executing.",
                  "If no RunFinished arrives within 10 minutes, it is a run stall: alert on-call (`harness alerts`)."],
    "outbox_stuck": ["Restart the outbox worker: `harness recover restart-outbox`.",
                     "Monitor `metric.events_published` logs for progress (`harness lag --since 1m`).",
                     "If still stuck after 30s, check DB locks: SELECT * FROM pg_locks WHERE relation::regclass::text"
                     " LIKE '%run%';"],
    "seq_gap": ["DO NOT manually insert events.",
                "Alert engineering team immediately.",
                "Document: runId, expected seq, last successful seq (in the evidence above).",
                "Investigate worker logs for append failures."],
    "never_started:no_job": ["Job not queued: check the `start-run` API logs (grep '\"start-run\"' logs/api-*.log)."],
    "never_started:queued": ["Job queued but not processed: restart the queue worker."],
    "no_cursor": ["The run has no run_outbox row although it is not finished: the outbox will never publish it.",
                  "If it is abandoned, cancel it: `harness recover cancel-run RUN_ID --confirm`."],
}


@dataclass
class Step:
    number: str
    title: str
    query: str
    result: Any
    finding: str


@dataclass
class Diagnosis:
    run_id: str
    verdict: str
    summary: str
    action: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.verdict in HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def _plain(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def diagnose(dsn: str, run_id: str, logs_dir: Path | None = None, spec: LogSpec = RUNBOOK_LOGS) -> Diagnosis:
    with connect(dsn) as conn:
        params: dict[str, Any] = {"runId": run_id}
        run = fetch_one(conn, STEP1_RUN, params)
        if run is None:
            raise DiagnosisError(f"unknown run id {run_id!r}: no row in runs (step 1 of the checklist)")
        steps = [Step("1", "Check run state in DB", STEP1_RUN, _plain(run),
                      f"state={run['state']} lastSeq={run['lastseq']}")]
        cursor = fetch_one(conn, STEP2_CURSOR, params)
        steps.append(Step("2", "Check outbox cursor", STEP2_CURSOR, _plain(cursor),
                          f"nextSeq={cursor['nextseq']}" if cursor else "no run_outbox row"))
        diagnosis = _decide(conn, run, cursor, steps)
    if logs_dir is not None:
        diagnosis.steps.append(_log_step(logs_dir, run_id, spec))
    return diagnosis


def _decide(conn: Any, run: dict[str, Any], cursor: dict[str, Any] | None, steps: list[Step]) -> Diagnosis:
    run_id, state, last_seq = run["id"], run["state"], int(run["lastseq"])
    if state == "queued":
        return _never_started(conn, run_id, steps)
    if cursor is None:
        verdict = "finished" if state in TERMINAL_STATES else "no_cursor"
        return _verdict(run_id, verdict, f"run is {state} and has no run_outbox row", steps,
                        state=state, lastSeq=last_seq)
    next_seq = int(cursor["nextseq"])
    if next_seq > last_seq:
        steps.append(Step("3", "Compare nextSeq vs lastSeq", "", None,
                          f"nextSeq {next_seq} > lastSeq {last_seq}: outbox is caught up"))
        verdict = "finished" if state in TERMINAL_STATES else "caught_up"
        summary = (f"run {state}, every event published" if verdict == "finished"
                   else "outbox is caught up; the run may still be executing")
        return _verdict(run_id, verdict, summary, steps, state=state, lastSeq=last_seq, nextSeq=next_seq)
    steps.append(Step("3", "Compare nextSeq vs lastSeq", "", None,
                      f"nextSeq {next_seq} <= lastSeq {last_seq}: events exist but have not been published"))
    return _check_gap(conn, run_id, state, last_seq, next_seq, steps)


def _check_gap(conn: Any, run_id: str, state: str, last_seq: int, next_seq: int, steps: list[Step]) -> Diagnosis:
    params = {"runId": run_id, "nextSeq": next_seq}
    event = fetch_one(conn, STEP4_EVENT, params)
    evidence: dict[str, Any] = {"state": state, "lastSeq": last_seq, "nextSeq": next_seq,
                                "backlog": last_seq - next_seq + 1}
    if event is None or event["publishedat"] is not None:
        others = fetch_one(conn, AFTER_GAP + " AND seq > %(nextSeq)s", params) or {}
        published = fetch_one(conn, "SELECT max(seq) AS s FROM run_events WHERE runId = %(runId)s"
                                    " AND publishedAt IS NOT NULL", params) or {}
        evidence |= {"expectedSeq": next_seq, "lastSuccessfulSeq": published.get("s"),
                     "nextPresentSeq": others.get("next_present")}
        finding = "no row" if event is None else "row exists but is already published (cursor behind?)"
        steps.append(Step("4", "Check for gap", STEP4_EVENT, _plain(event), finding))
        return _verdict(run_id, "seq_gap", f"no event at seq {next_seq} (lastSeq {last_seq}): append bug (seq gap)",
                        steps, **evidence)
    age = fetch_one(conn, EVENT_AGE, {"ts": event["ts"]}) or {}
    locks = fetch_all(conn, LOCKS)
    evidence |= {"eventType": event["type"], "eventAgeSeconds": round(float(age.get("age_s") or 0), 3),
                 "runLocks": len(locks)}
    steps.append(Step("4", "Check for gap", STEP4_EVENT, _plain(event),
                      f"row exists with publishedAt IS NULL, waiting {evidence['eventAgeSeconds']}s"))
    return _verdict(run_id, "outbox_stuck",
                    f"event seq {next_seq} ({event['type']}) exists unpublished: outbox worker is stuck or slow",
                    steps, **evidence)


def _never_started(conn: Any, run_id: str, steps: list[Step]) -> Diagnosis:
    jobs = [_plain(j) for j in fetch_all(conn, JOBS, {"runId": run_id})]
    steps.append(Step("never-started 1", "Check queue for pending job", JOBS, jobs,
                      f"{len(jobs)} job(s): {', '.join(str(j['state']) for j in jobs if j) or 'none'}"))
    if not jobs:
        return _verdict(run_id, "never_started", "run is queued and no job exists: the job was never queued",
                        steps, state="queued", jobs=0, case="no_job")
    pending = [j for j in jobs if j and j["state"] != "done"]
    return _verdict(run_id, "never_started", "run is queued and its job is queued but not processed", steps,
                    state="queued", jobs=len(jobs), case="queued", job=pending[0] if pending else jobs[-1])


def _verdict(run_id: str, verdict: str, summary: str, steps: list[Step], **evidence: Any) -> Diagnosis:
    key = f"{verdict}:{evidence['case']}" if verdict == "never_started" else verdict
    return Diagnosis(run_id, verdict, summary, list(ACTIONS[key]), dict(evidence), steps)


def _log_step(logs_dir: Path, run_id: str, spec: LogSpec) -> Step:
    lines = read_log_lines(logs_dir, spec=spec)
    mine = [ln for ln in lines if ln.run_id == run_id]
    published = [ln for ln in mine if ln.msg == "metric.events_published"]
    started = [ln for ln in mine if ln.msg == "worker:job:start"]
    outbox = [ln for ln in lines if ln.obj.get("component") == "outbox-publisher"][-50:]
    problems = [ln.obj for ln in outbox if ln.msg in ("outbox.error", "outbox.gap")]
    result = {"events_published_lines": len(published),
              "last_published_seq": max((int(ln.obj.get("seq", 0)) for ln in published), default=None),
              "job_start_lines": len(started), "outbox_errors_in_last_50": problems[-5:]}
    finding = (f"{len(published)} metric.events_published line(s) for the run, {len(started)} worker:job:start,"
               f" {len(problems)} outbox error/gap line(s) in the publisher's last 50")
    query = ('grep "metric.events_published" logs/*.log | grep "<runId>"; '
             'grep "outbox-publisher" logs/*.log | tail -50')
    return Step("5", "Check logs", query, result, finding)
