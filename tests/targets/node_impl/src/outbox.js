// `outbox-worker`: the transactional-outbox publisher.
//
// One cycle is one transaction on a dedicated connection: lock the runs whose run_outbox.nextSeq is
// behind runs.lastSeq (FOR UPDATE SKIP LOCKED, so several workers share the work), read each one's
// events from nextSeq in seq order, publish them with ONE pg_notify statement on a second, autocommit
// connection, THEN mark publishedAt and advance nextSeq, and commit. A crash between publish and
// commit publishes again (at-least-once; streams de-dupe). A missing seq stops its run there and
// raises the `outbox.seq_gap` alert: a gap is never skipped (runbook "If gap detected").
//
// Wake-ups: an append NOTIFYs the run id, so the hot path locks just the named runs by primary key;
// every OUTBOX_POLL_INTERVAL_MS a cycle scans all runs as the safety net for lost wake-ups.

import { startBacklogGauge } from './backlog.js';
import { connect, destroy, errorText, iso } from './db.js';
import { CHANNELS, eventData } from './events.js';
import { startListener } from './listener.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';
import { alarm, backoff, withTimeout } from './timing.js';

const RUNS_PER_CYCLE = 32;
const GAP_RECHECK_MS = 5000; // a run stopped at a gap is looked at again this often, not every cycle
const MAX_NOTIFY_BYTES = 7000; // PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
const log = logger('outbox');

const claimAndRead = (onlyNamed) => `
WITH claimed AS MATERIALIZED (
  SELECT o.runId AS run_id, o.nextSeq AS next_seq, r.lastSeq AS last_seq
  FROM run_outbox o JOIN runs r ON r.id = o.runId
  WHERE o.nextSeq <= r.lastSeq AND NOT (o.runId = ANY($2::text[])) ${onlyNamed ? 'AND o.runId = ANY($3::text[])' : ''}
  ORDER BY o.updatedAt
  LIMIT ${RUNS_PER_CYCLE}
  FOR UPDATE OF o SKIP LOCKED
)
SELECT c.run_id, c.next_seq, c.last_seq, e.seq, e.type, e.payload, e.ts, e.ts_epoch
FROM claimed c
LEFT JOIN LATERAL (
  SELECT seq, type, payload::text AS payload, ${iso('ts')} AS ts, extract(epoch FROM ts)::text AS ts_epoch
  FROM run_events WHERE runId = c.run_id AND seq >= c.next_seq
  ORDER BY seq LIMIT $1
) e ON true
ORDER BY c.run_id, e.seq`;
const CLAIM_ALL = claimAndRead(false);
const CLAIM_NAMED = claimAndRead(true);

// Notifications of one statement reach listeners in this order when it commits (autocommit). now() is
// the statement's start: ts <= publishedAt <= any subscriber's receipt.
const PUBLISH = `
SELECT ${iso('now()')} AS published_at, extract(epoch FROM now())::text AS published_epoch,
       pg_notify('${CHANNELS.live}', p)
FROM unnest($1::text[]) AS p`;

const MARK = `
WITH batch AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS b(run_id, first_seq, last_seq)),
marked AS (
  UPDATE run_events e SET publishedAt = $4::timestamptz
  FROM batch WHERE e.runId = batch.run_id AND e.seq BETWEEN batch.first_seq AND batch.last_seq
)
UPDATE run_outbox o SET nextSeq = batch.last_seq + 1, updatedAt = now()
FROM batch WHERE o.runId = batch.run_id`;

// Per claimed run, the events that can go now: contiguous from nextSeq. The first missing seq ends
// the run's batch and is reported as a gap (also when fewer rows came back than lastSeq promises).
export function planCycle(rows, limit) {
  const runs = new Map();
  for (const row of rows) {
    const run = runs.get(row.run_id) ?? { runId: row.run_id, nextSeq: row.next_seq, lastSeq: row.last_seq, rows: [] };
    runs.set(row.run_id, run);
    if (row.seq !== null) run.rows.push(row);
  }
  const batches = [];
  const gaps = [];
  for (const run of runs.values()) {
    let expected = run.nextSeq;
    const events = [];
    let gap = null;
    for (const row of run.rows) {
      if (row.seq !== expected) {
        gap = expected;
        break;
      }
      events.push(row);
      expected += 1;
    }
    if (gap === null && expected <= run.lastSeq && run.rows.length < limit) gap = expected;
    if (events.length) batches.push({ runId: run.runId, events, full: run.rows.length >= limit && gap === null });
    if (gap !== null) gaps.push({ runId: run.runId, expectedSeq: gap, lastSeq: run.lastSeq });
  }
  return { batches, gaps, claimed: runs.size };
}

function busPayload(runId, row) {
  const head = { run: runId, seq: row.seq, type: row.type };
  const full = JSON.stringify({ ...head, data: eventData(runId, row) });
  return Buffer.byteLength(full) <= MAX_NOTIFY_BYTES ? full : JSON.stringify(head); // streams read it by seq
}

export function startOutbox(config, signal) {
  const txOptions = { statement_timeout: config.outboxTxTimeoutMs, idle_in_transaction_session_timeout: config.outboxTxTimeoutMs };
  const hot = new Set(); // runs named by a wake-up since the last cycle
  const gapUntil = new Map(); // runId -> time its gap is looked at again
  const gapsReported = new Set();
  const pause = backoff();
  let scanDue = true; // the next cycle scans every run (start, poll tick, listener reconnect)
  const wakeUp = alarm();
  let tx = null;
  let pub = null;

  const listener = startListener(config, {
    channels: [CHANNELS.outboxWake],
    component: 'outbox',
    onNotify: (channel, runId) => {
      hot.add(runId);
      wakeUp.wake();
    },
    onConnect: () => {
      scanDue = true; // wake-ups sent while nobody listened are lost
      wakeUp.wake();
    },
  });

  function dropConnections() {
    destroy(tx);
    destroy(pub);
    tx = pub = null;
  }

  // `abandoned` is set when the cycle ran past its timeout: its connections are gone by then, and it
  // must not open a new one and publish without the row locks.
  async function cycle(named, abandoned) {
    if (!tx || tx.broken) tx = await connect(config, txOptions);
    if (abandoned.aborted) throw new Error('outbox cycle abandoned');
    const client = tx;
    const now = Date.now();
    const skip = [...gapUntil].filter(([, until]) => until > now).map(([runId]) => runId);
    await client.query('BEGIN');
    try {
      const params = named ? [config.outboxBatchLimit, skip, named] : [config.outboxBatchLimit, skip];
      const { rows } = await client.query(named ? CLAIM_NAMED : CLAIM_ALL, params);
      const plan = planCycle(rows, config.outboxBatchLimit);
      reportGaps(plan.gaps);
      if (plan.batches.length) {
        const publishedAt = await publish(plan.batches, abandoned);
        await client.query(MARK, [
          plan.batches.map((b) => b.runId),
          plan.batches.map((b) => b.events[0].seq),
          plan.batches.map((b) => b.events.at(-1).seq),
          publishedAt,
        ]);
      }
      await client.query('COMMIT');
      for (const batch of plan.batches) {
        gapUntil.delete(batch.runId);
        if (batch.full) hot.add(batch.runId); // more are waiting: go again at once
      }
      if (!named && plan.claimed >= RUNS_PER_CYCLE) scanDue = true;
      return plan.batches.reduce((n, b) => n + b.events.length, 0);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async function publish(batches, abandoned) {
    if (!pub || pub.broken) pub = await connect(config);
    if (abandoned.aborted) throw new Error('outbox cycle abandoned');
    const payloads = batches.flatMap((b) => b.events.map((row) => busPayload(b.runId, row)));
    const { rows } = await pub.query(PUBLISH, [payloads]);
    const { published_at: publishedAt, published_epoch: publishedEpoch } = rows[0];
    // Logged once the bus has the events and before the mark: a crash in between shows as a second
    // line for the same seq when the event is published again (runbook pattern 2).
    for (const batch of batches) {
      for (const row of batch.events) {
        const lagMs = Math.round((Number(publishedEpoch) - Number(row.ts_epoch)) * 1e6) / 1e3;
        metrics.inc('events_published_total', { type: metrics.typeLabel(row.type) });
        log.info('metric.events_published', {
          run_id: batch.runId, seq: row.seq, event_type: row.type, lag_ms: lagMs, published_at: publishedAt,
        });
      }
    }
    return publishedAt;
  }

  function reportGaps(gaps) {
    for (const gap of gaps) {
      gapUntil.set(gap.runId, Date.now() + GAP_RECHECK_MS);
      const key = `${gap.runId}:${gap.expectedSeq}`;
      if (gapsReported.has(key)) continue;
      gapsReported.add(key);
      metrics.inc('outbox_gaps_total');
      log.alert('outbox.seq_gap', { run_id: gap.runId, expected_seq: gap.expectedSeq, last_seq: gap.lastSeq });
    }
  }

  // One cycle under the transaction timeout; null after a failure (logged, connections dropped).
  async function guardedCycle(named) {
    const abandoned = new AbortController();
    try {
      const published = await withTimeout(cycle(named, abandoned.signal), config.outboxTxTimeoutMs, 'outbox transaction');
      pause.reset();
      return published;
    } catch (err) {
      abandoned.abort();
      log.error('outbox.cycle_failed', { error: errorText(err) });
      metrics.inc('outbox_cycle_errors_total');
      dropConnections();
      return null;
    }
  }

  // Cycles until there is nothing named and no scan due.
  async function drain() {
    while (!signal.aborted && (scanDue || hot.size)) {
      const named = scanDue ? null : [...hot];
      scanDue = false;
      hot.clear();
      if ((await guardedCycle(named)) === null) {
        scanDue = true;
        await pause.wait(signal);
      }
    }
  }

  const gauge = startBacklogGauge(config, signal); // for the runbook's backlog alert on the worker's own /metrics
  const done = (async () => {
    while (!signal.aborted) {
      await drain();
      if (signal.aborted || scanDue || hot.size) continue;
      if ((await wakeUp.sleep(config.outboxPollMs, signal)) === 'timeout') scanDue = true; // the poll tick
    }
    await Promise.all([listener.stop(), gauge]);
    dropConnections();
  })();

  return { done, get healthy() { return listener.connected; } };
}
