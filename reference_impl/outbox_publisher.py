"""`python -m reference_impl outbox-worker`: the transactional-outbox publisher.

Each cycle is one transaction: claim runs whose run_outbox.nextSeq <= runs.lastSeq with
`FOR UPDATE SKIP LOCKED` (so several workers share the work), read their events from nextSeq in
order, publish them with pg_notify on a separate autocommit connection, THEN mark publishedAt and
advance nextSeq and commit. A crash between publish and commit re-publishes (at-least-once).

Wake-ups: a NOTIFY on run_outbox_wake carries the runId, so the hot path claims exactly the
notified runs through the primary key; the OUTBOX_POLL_MS poll scans every run as the safety net.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import psycopg

from . import db, metrics
from .bus import BUS_CHANNEL
from .config import Config
from .events import Event, iso_utc
from .failpoints import failpoint
from .backlog_gauge import sample_backlog
from .listener import Listener
from .logs import Logger
from .outbox_plan import Batch, Claim, Gap, Plan, plan_cycle

__all__ = ["OutboxPublisher", "bus_payload"]

WAKE_CHANNEL = "run_outbox_wake"
MAX_NOTIFY_BYTES = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
RUNS_PER_CYCLE = 32
GAP_RECHECK_S = 5.0  # a run stuck at a gap is re-examined this often, not on every cycle
_log = Logger("outbox-publisher")

# Claim and read in one statement (one round trip): lock up to N runs that have unpublished
# events, skipping runs another worker holds, then read each one's events from its nextSeq.
_CLAIM_READ = """
WITH c AS MATERIALIZED (
    SELECT o.runId, o.nextSeq, r.lastSeq FROM run_outbox o JOIN runs r ON r.id = o.runId
    WHERE o.nextSeq <= r.lastSeq AND NOT (o.runId = ANY(%(skip)s::text[])) {only}
    ORDER BY o.updatedAt LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED
)
SELECT c.runId, c.nextSeq, c.lastSeq, e.seq, e.type, e.payload, e.ts
FROM c LEFT JOIN LATERAL (
    SELECT seq, type, payload, ts FROM run_events e
    WHERE e.runId = c.runId AND e.seq >= c.nextSeq ORDER BY e.seq LIMIT %(batch)s
) e ON true
ORDER BY c.runId, e.seq
"""
_CLAIM_ALL = _CLAIM_READ.format(only="")
_CLAIM_IDS = _CLAIM_READ.format(only="AND o.runId = ANY(%(ids)s::text[])")
# Notifications of one statement are delivered in this order, at its (autocommit) commit; now() is
# the statement's start, so publishedAt is >= every event's ts and <= any subscriber's receipt.
_PUBLISH = "SELECT now(), pg_notify('" + BUS_CHANNEL + "', p) FROM unnest(%s::text[]) AS p"
_MARK = """
WITH c AS (SELECT * FROM unnest(%(runs)s::text[], %(lo)s::bigint[], %(hi)s::bigint[]) AS c(runId, lo, hi)),
marked AS (
    UPDATE run_events e SET publishedAt = %(at)s FROM c
    WHERE e.runId = c.runId AND e.seq BETWEEN c.lo AND c.hi
)
UPDATE run_outbox o SET nextSeq = c.hi + 1, updatedAt = now() FROM c WHERE o.runId = c.runId
"""


def bus_payload(event: Event) -> str:
    """`{"runId","seq","type","ts","event"}`, leaving `event` out when it would not fit a NOTIFY."""
    head = {"runId": event.run_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts)}
    full = json.dumps({**head, "event": event.to_data()}, separators=(",", ":"))
    if len(full.encode()) <= MAX_NOTIFY_BYTES:
        return full
    return json.dumps(head, separators=(",", ":"))


class _Lazy:
    """One dedicated connection, (re)opened on demand and dropped after any error."""

    def __init__(self, config: Config, autocommit: bool, **params: str) -> None:
        self._config, self._autocommit, self._params = config, autocommit, params
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def get(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await db.connect(self._config, autocommit=self._autocommit, **self._params)
        return self._conn

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 1.0)
            except Exception:  # it is broken already; we only want it gone
                pass


class OutboxPublisher:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._wake = asyncio.Event()
        self._hot: set[str] = set()  # runs named by NOTIFY (or just processed) since the last cycle
        self._scan_due = True  # the next cycle scans every run (poll tick, reconnect, startup)
        self._gap_until: dict[str, float] = {}  # run -> monotonic time its gap is re-examined
        self._gaps_logged: set[tuple[str, int]] = set()
        # The server enforces the transaction bound too, so a worker that stalls mid-transaction
        # (SIGSTOP, network partition) cannot hold the run_outbox row locks forever. Set once per
        # connection rather than per transaction: one round trip less on every cycle.
        ms = config.outbox_tx_timeout_ms
        self._tx = _Lazy(config, autocommit=False,
                         options=f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}")
        self._pub = _Lazy(config, autocommit=True)
        self._listener = Listener(config, [WAKE_CHANNEL], self._on_notify, self._on_connect, "outbox-publisher")
        self._backoff = db.Backoff()

    @property
    def listening(self) -> bool:
        """For /healthz: the wake-up LISTEN connection is up (so the database answers)."""
        return self._listener.connected

    def _on_notify(self, channel: str, payload: str) -> None:
        self._hot.add(payload)
        self._wake.set()

    def _on_connect(self) -> None:
        self._scan_due = True  # wake-ups sent while we were not listening are lost
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        helpers = [asyncio.create_task(self._listener.run(), name="outbox-listener"),
                   asyncio.create_task(sample_backlog(self._config, stop), name="outbox-backlog-gauge")]
        try:
            while not stop.is_set():
                await self._drain(stop)
                await self._sleep_until_woken(stop)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._tx.drop()
            await self._pub.drop()

    async def _sleep_until_woken(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        done, pending = await asyncio.wait(waiters, timeout=self._config.outbox_poll_ms / 1000,
                                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        if not done:
            self._scan_due = True  # the poll tick: the safety net for lost or missed wake-ups

    async def _drain(self, stop: asyncio.Event) -> None:
        """Run cycles until one finds nothing to publish (or we are stopping)."""
        while not stop.is_set():
            self._wake.clear()
            scan, ids = self._scan_due, self._hot
            if not scan and not ids:
                return
            self._scan_due, self._hot = False, set()
            published = await self._guarded_cycle(None if scan else sorted(ids))
            if published is None:
                await self._backoff.sleep()
                self._scan_due = True
            elif published == 0 and not self._hot and not self._scan_due:
                return

    async def _guarded_cycle(self, ids: list[str] | None) -> int | None:
        """One cycle under the transaction timeout; None after an error (logged, connections dropped)."""
        try:
            async with asyncio.timeout(self._config.outbox_tx_timeout_ms / 1000):
                published = await self._cycle(ids)
            self._backoff.reset()
            return published
        except (psycopg.Error, OSError, TimeoutError, RuntimeError) as exc:
            reason = "transaction timeout" if isinstance(exc, TimeoutError) else (str(exc) or repr(exc))
            _log.error("outbox.error", error=reason)
            metrics.OUTBOX_ERRORS.inc()
            await self._tx.drop()
            await self._pub.drop()
            return None

    async def _cycle(self, ids: list[str] | None) -> int:
        tx = await self._tx.get()
        # (psycopg's pipeline mode was measured slower here than plain round trips: not used.)
        async with tx.transaction():
            claims, events = await self._claim_and_read(tx, ids)
            if not claims:
                return 0
            plan = plan_cycle(claims, events, self._config.outbox_batch_size)
            self._report_gaps(plan.gaps)
            if not plan.batches:
                return 0
            published_at = await self._publish(plan)
            await self._mark(tx, plan.batches, published_at)
            await failpoint("outbox.before_commit")
        self._after_commit(plan)
        return len(plan.events)

    async def _claim_and_read(self, tx: psycopg.AsyncConnection[Any],
                              ids: list[str] | None) -> tuple[list[Claim], list[Event]]:
        now = time.monotonic()
        skip = [run for run, until in self._gap_until.items() if until > now]
        params = {"skip": skip, "limit": RUNS_PER_CYCLE, "ids": ids, "batch": self._config.outbox_batch_size}
        cur = await tx.execute(_CLAIM_ALL if ids is None else _CLAIM_IDS, params)
        claims: dict[str, Claim] = {}
        events: list[Event] = []
        for run, next_seq, last_seq, seq, kind, payload, ts in await cur.fetchall():
            claims.setdefault(run, Claim(run, next_seq, last_seq))
            if seq is not None:
                events.append(Event(run, seq, kind, payload, ts))
        return list(claims.values()), events

    async def _publish(self, plan: Plan) -> datetime:
        await failpoint("outbox.before_publish")
        pub = await self._pub.get()
        # Binary: a text array would have psycopg escape every quote of every payload (25 % of this worker's CPU).
        cur = await pub.execute(_PUBLISH, ([bus_payload(e) for e in plan.events],), binary=True)
        row = await cur.fetchone()
        if row is None:  # one row per event, and a plan always has events
            raise RuntimeError("the publish statement returned no row: a plan without events")
        published_at: datetime = row[0]
        _report_published(plan, published_at)
        await failpoint("outbox.after_publish")
        return published_at

    async def _mark(self, tx: psycopg.AsyncConnection[Any], batches: list[Batch], at: datetime) -> None:
        params = {"runs": [b.run_id for b in batches], "lo": [b.first_seq for b in batches],
                  "hi": [b.next_seq - 1 for b in batches], "at": at}
        await tx.execute(_MARK, params)

    def _after_commit(self, plan: Plan) -> None:
        # A full batch means more events are waiting: go again at once. Events appended meanwhile
        # need nothing here: their wake-ups reach this worker too (every worker listens), also
        # while this cycle still holds the row locks that made the other workers skip the run.
        full = self._config.outbox_batch_size
        self._hot.update(batch.run_id for batch in plan.batches if len(batch.events) >= full)
        for batch in plan.batches:
            self._gap_until.pop(batch.run_id, None)

    def _report_gaps(self, gaps: list[Gap]) -> None:
        for gap in gaps:
            self._gap_until[gap.run_id] = time.monotonic() + GAP_RECHECK_S
            if (gap.run_id, gap.expected_seq) in self._gaps_logged:
                continue
            self._gaps_logged.add((gap.run_id, gap.expected_seq))
            metrics.OUTBOX_GAPS.inc()
            _log.alert("outbox.gap", gap.run_id, expectedSeq=gap.expected_seq, lastSeq=gap.last_seq)


def _report_published(plan: Plan, published_at: datetime) -> None:
    """Logged as soon as the bus has the events, before the mark: a crash between publish and mark
    then shows as a duplicate `metric.events_published` on restart (the runbook's pattern 2)."""
    stamp = iso_utc(published_at)
    for event in plan.events:
        lag_ms = round((published_at - event.ts).total_seconds() * 1000, 3)
        metrics.EVENTS_PUBLISHED.labels(metrics.type_label(event.type)).inc()
        metrics.PUBLISH_LAG.observe(max(lag_ms, 0) / 1000)
        _log.info("metric.events_published", event.run_id, seq=event.seq, type=event.type,
                  lag_ms=lag_ms, publishedAt=stamp)
