"""What each invariant means, in one sentence: the report's glossary and docs/CONTRACTS.md's "invariant"
column (tests/unit/test_report_page.py keeps that table equal to this). `code` spans in backticks."""
from __future__ import annotations

GLOSSARY: dict[str, str] = {
    "exactly_once": "every published event reaches each subscriber exactly once across reconnects, up to the terminal event",
    "ordering": "per connection seq strictly increases; the first event after connecting is `cursor + 1` when published",
    "time_travel": "nothing is received before its `publishedAt`",
    "terminal": "the terminal event is last; the server closes the stream on it; a reconnect after it gets 204",
    "gapless": "seq is exactly 1..lastSeq for every run",
    "outbox_converged": "`nextSeq = lastSeq + 1` and every event published once faults heal, within a bound",
    "no_append_after_terminal": "no append is accepted after the terminal event",
    "lag": "publish lag (`publishedAt - ts`) stays in the runbook's classes in steady state",
    "delivered_lag": "delivered lag (`ts` to receipt) has its median in the normal class (< 100 ms) and its p95 not"
                     " critical, outside delivery-path faults",
    "heartbeat": "an idle stream is never silent longer than the interval plus a tolerance",
    "no_duplicate_delivery": "duplicate publishes are counted, duplicate deliveries are not allowed",
    "content": "every frame's `id:`, data `seq`, `runId`, `type`, `ts` and payload digest match the row",
    "run_state": "`runs.state` and every read of the run agree with the terminal event's status",
    "metrics_agree": "one `metric.events_inserted` line per row, one `metric.events_published` line per published row"
                     " (more only where a publish-path fault explains it), `lag_ms` within max(25 ms, 10 %) of the"
                     " rows', the `outbox_backlog_avg` gauge equal to the runbook's query",
    "steps_once": "each scripted step is appended exactly once (workers resume a job from the log, a fenced lease"
                  " stops a stale copy)",
}
