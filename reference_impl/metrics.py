"""Prometheus metrics of every role (one process-wide registry, exposed on /metrics).

The lag buckets bracket the runbook's classes: normal < 100 ms, warning 100-500 ms, critical > 500 ms,
and the p95 > 1000 ms alert; the low buckets resolve the 10 ms benchmark target.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE", "EVENTS_INSERTED", "EVENTS_PUBLISHED", "HEARTBEATS", "OUTBOX_GAPS", "PUBLISH_LAG",
    "REGISTRY", "STREAM_CONNECTS", "STREAMS_OPEN", "render",
]

REGISTRY = CollectorRegistry()
CONTENT_TYPE = CONTENT_TYPE_LATEST

EVENTS_INSERTED = Counter("events_inserted", "Events appended to run_events", ["type"], registry=REGISTRY)
EVENTS_PUBLISHED = Counter("events_published", "Events published to the bus (re-publishes included)",
                           ["type"], registry=REGISTRY)
PUBLISH_LAG = Histogram(
    "publish_lag_seconds", "Event creation (ts) to publish",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
OUTBOX_GAPS = Counter("outbox_gaps", "Missing seqs found by the outbox (alert)", registry=REGISTRY)
OUTBOX_ERRORS = Counter("outbox_errors", "Outbox cycles that failed (DB errors, timeouts)", registry=REGISTRY)
OUTBOX_BACKLOG_AVG = Gauge("outbox_backlog_avg", "The runbook's AVG(runs.lastSeq - run_outbox.nextSeq) over started runs",
                           registry=REGISTRY)
STREAMS_OPEN = Gauge("sse_streams_open", "Open SSE streams", registry=REGISTRY)
STREAM_CONNECTS = Counter("sse_stream_connects", "SSE stream connects; kind=resume when the cursor > 0",
                          ["kind"], registry=REGISTRY)
STREAM_CLOSES = Counter("sse_stream_closes", "SSE stream closes by reason", ["reason"], registry=REGISTRY)
HEARTBEATS = Counter("sse_heartbeats", "Heartbeat comments sent", registry=REGISTRY)
BUS_RECONNECTS = Counter("bus_reconnects", "Reconnects of the LISTEN connection", ["channel"], registry=REGISTRY)
JOBS = Counter("jobs_finished", "Queue jobs finished", ["status"], registry=REGISTRY)


def render() -> bytes:
    return generate_latest(REGISTRY)


_KNOWN_TYPES = frozenset({"RunStarted", "RunStep", "RunFinished"})


def type_label(event_type: str) -> str:
    """Event types are client-chosen on the append path: bound the label's cardinality."""
    return event_type if event_type in _KNOWN_TYPES else "other"
