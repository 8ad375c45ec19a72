"""One frame of `harness watch`: what a running stack looks like now, as plain data.

Where each part comes from (also in the frame's `sources`, so the view can say it):
- faults: the owner's fault log (`<state>/fault_log.jsonl`);
- state, lastSeq, nextSeq, backlog and the verdict: the "Run stuck" checklist (`diagnose`), i.e. the database;
- publish lag and its class: `metric.events_published` lines of the last minute (the service's logs);
- open streams: `stream-run` lines without a `stream-run.closed` line of the same connectionId (the
  service's logs; a stream of an API process that was killed never logs its close);
- heartbeats: the service logs none per stream, so the frame carries the API's `sse_heartbeats_total`
  counter (/metrics, all streams together) and the watcher notes when it last grew.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.control.fault_log import active_faults
from harness.errors import DatabaseUnreachable, LogsError
from harness.observer.snapshot import scrape_metric
from harness.runbook._db import connect, fetch_all
from harness.runbook.diagnose import Diagnosis, diagnose
from harness.runbook.lag_report import LagGroup, summarise_publishes
from harness.service_logs import PUBLISHED, RUNBOOK_LOGS, LogLine, publishes_from_log_lines, read_log_lines
from harness.target.profile import LogSpec

__all__ = ["Frame", "RunView", "Stream", "WatchSource", "gather_frame", "heartbeat_seen", "open_streams",
           "run_view"]

# Runs worth watching: not finished yet, or finished with events the outbox has not passed.
ACTIVE_RUNS = """SELECT r.id
FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id
WHERE r.state IN ('queued', 'started') OR o.nextSeq <= r.lastSeq
ORDER BY r.createdAt DESC
LIMIT %(limit)s"""
MAX_RUNS = 10
LAG_WINDOW_S = 60.0
STREAM_OPEN, STREAM_CLOSED = "stream-run", "stream-run.closed"
HEARTBEATS = "sse_heartbeats_total"
SOURCES = {
    "faults": "the stack owner's fault log",
    "runs": "the database (the diagnose checklist's queries)",
    "lag": f"metric.events_published log lines of the last {LAG_WINDOW_S:g}s",
    "streams": "stream-run / stream-run.closed log lines",
    "heartbeats": f"{HEARTBEATS} on the API's /metrics (all streams; the service logs no heartbeat per stream)",
}


@dataclass(frozen=True)
class WatchSource:
    """Where a frame is read from: the running stack's stack.json and state folder."""

    dsn: str
    logs_dir: Path
    fault_log: Path
    metrics_urls: tuple[str, ...] = ()
    spec: LogSpec = RUNBOOK_LOGS


@dataclass(frozen=True)
class Stream:
    connection_id: str
    opened_at: float | None  # epoch seconds of its stream-run line
    from_seq: Any = None


@dataclass
class RunView:
    run_id: str
    state: str
    last_seq: int
    next_seq: int | None
    backlog: int | None  # lastSeq - nextSeq + 1: events appended and not yet published
    lag_p95_ms: float | None
    lag_class: str
    verdict: str
    summary: str
    healthy: bool
    streams: list[Stream] = field(default_factory=list)


@dataclass
class Frame:
    at: float
    faults: list[dict[str, Any]]
    runs: list[RunView]
    heartbeats_sent: float | None = None
    last_heartbeat_at: float | None = None  # when the watcher last saw the counter grow
    problems: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=lambda: dict(SOURCES))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gather_frame(source: WatchSource, run_id: str | None = None, previous: Frame | None = None) -> Frame:
    """The stack now; an unreachable database or log folder is a problem in the frame, not an error, since a
    watch outlives the faults it shows. An unknown `run_id` raises `DiagnosisError`."""
    now = time.time()
    frame = Frame(now, active_faults(source.fault_log), [])
    try:
        lines = read_log_lines(source.logs_dir, msg=(PUBLISHED, STREAM_OPEN, STREAM_CLOSED), spec=source.spec)
    except LogsError as exc:
        frame.problems.append(str(exc))
        lines = []
    try:
        ids = [run_id] if run_id is not None else _active_run_ids(source.dsn)
        lags, streams = _lag_by_run(lines, now), open_streams(lines)
        frame.runs = [run_view(diagnose(source.dsn, rid), lags.get(rid), streams.get(rid, [])) for rid in ids]
    except DatabaseUnreachable as exc:
        frame.problems.append(str(exc))
    sent = _heartbeats_sent(source.metrics_urls)
    frame.heartbeats_sent = sent
    frame.last_heartbeat_at = heartbeat_seen(previous, sent, now)
    return frame


def _active_run_ids(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        return [str(r["id"]) for r in fetch_all(conn, ACTIVE_RUNS, {"limit": MAX_RUNS})]


def run_view(d: Diagnosis, lag: LagGroup | None, streams: list[Stream]) -> RunView:
    """One run's row from its diagnosis (steps 1 and 2 hold the run and its outbox cursor)."""
    run, cursor = d.steps[0].result or {}, d.steps[1].result or {}
    last_seq = int(run.get("lastseq") or 0)
    next_seq = None if cursor.get("nextseq") is None else int(cursor["nextseq"])
    return RunView(d.run_id, str(run.get("state")), last_seq, next_seq,
                   None if next_seq is None else last_seq - next_seq + 1,
                   None if lag is None else lag.p95, "no data" if lag is None else lag.label,
                   d.verdict, d.summary, d.healthy, streams)


def _lag_by_run(lines: Iterable[LogLine], now: float) -> dict[str, LagGroup]:
    recent = [p for p in publishes_from_log_lines(lines) if p.time >= now - LAG_WINDOW_S]
    return {g.name: g for g in summarise_publishes(recent, by="run").groups}


def open_streams(lines: Sequence[LogLine]) -> dict[str, list[Stream]]:
    """Per run, its connections with a stream-run line and no stream-run.closed line (by connectionId)."""
    closed = {ln.obj.get("connectionId") for ln in lines if ln.msg == STREAM_CLOSED}
    out: dict[str, list[Stream]] = defaultdict(list)
    for ln in lines:
        conn = ln.obj.get("connectionId")
        if ln.msg == STREAM_OPEN and ln.run_id and conn is not None and conn not in closed:
            out[ln.run_id].append(Stream(str(conn), ln.timestamp, ln.obj.get("fromSeq")))
    return dict(out)


def _heartbeats_sent(urls: Sequence[str]) -> float | None:
    values = [v for v in (scrape_metric(url, HEARTBEATS) for url in urls) if v is not None]
    return sum(values) if values else None


def heartbeat_seen(previous: Frame | None, sent: float | None, now: float) -> float | None:
    """When the heartbeat counter last grew, as far as this watcher has seen (None: not yet)."""
    if previous is None or sent is None or previous.heartbeats_sent is None:
        return None
    return now if sent > previous.heartbeats_sent else previous.last_heartbeat_at
