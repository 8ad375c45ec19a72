// The run repository: creating runs, appending events with a gapless per-run seq, and the stream's reads.
//
// The seq is `runs.lastSeq + 1`, taken by an UPDATE under the run's row lock in the same statement as
// the INSERT: concurrent appends to one run queue on that lock, and a rolled-back append gives its seq
// back (a sequence object would leave a gap for ever). The same statement refuses appends after the
// terminal state and wakes the outbox (the NOTIFY is delivered when it commits).

import { randomUUID } from 'node:crypto';
import { iso } from './db.js';
import { CHANNELS, OUTCOMES, TERMINAL_TYPE, isTerminalState } from './events.js';
import { HttpError } from './http.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';

const log = logger('event-log');

const SCRIPT_FIELDS = {
  steps: { min: 0, max: 100_000, fallback: 10 },
  interval_ms: { min: 0, max: 600_000, fallback: 100 },
  payload_bytes: { min: 0, max: 1_000_000, fallback: 16 },
};
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,99}$/;

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

// A job's script from the POST body; any bad value is a 400 naming the field.
export function parseScript(raw) {
  if (raw === undefined || raw === null) raw = {};
  if (!isObject(raw)) throw new HttpError(400, 'script must be a JSON object');
  const unknown = Object.keys(raw).filter((key) => !(key in SCRIPT_FIELDS) && key !== 'outcome');
  if (unknown.length) throw new HttpError(400, `unknown script field(s): ${unknown.sort().join(', ')}`);
  const script = {};
  for (const [name, { min, max, fallback }] of Object.entries(SCRIPT_FIELDS)) {
    const value = raw[name] ?? fallback;
    if (!Number.isInteger(value)) throw new HttpError(400, `script.${name} must be an integer, got ${JSON.stringify(value)}`);
    if (value < min || value > max) throw new HttpError(400, `script.${name} must be within ${min}..${max}, got ${value}`);
    script[name] = value;
  }
  script.outcome = raw.outcome ?? 'succeeded';
  if (!OUTCOMES.includes(script.outcome)) {
    throw new HttpError(400, `script.outcome must be one of ${OUTCOMES.join('|')}, got ${JSON.stringify(script.outcome)}`);
  }
  return script;
}

// An appended event's body {"type", "payload"}; payload defaults to {}.
export function parseEvent(body) {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object {"type", "payload"}');
  const { type, payload = {} } = body;
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
    throw new HttpError(400, 'type must be 1-100 characters [A-Za-z0-9_.:-], starting with a letter');
  }
  if (type === TERMINAL_TYPE && !(isObject(payload) && OUTCOMES.includes(payload.status ?? 'succeeded'))) {
    throw new HttpError(400, `a RunFinished payload needs status in ${OUTCOMES.join('|')}`);
  }
  return { type, payload };
}

// The state a RunFinished moves the run to; null for any other event.
function finalState(type, payload) {
  if (type !== TERMINAL_TYPE) return null;
  return OUTCOMES.includes(payload?.status) ? payload.status : 'succeeded';
}

export async function createRun(db, script, withJob) {
  const runId = randomUUID();
  await db.query(
    `WITH new_run AS (INSERT INTO runs (id) VALUES ($1) RETURNING id),
          cursor_row AS (INSERT INTO run_outbox (runId) SELECT id FROM new_run),
          job AS (INSERT INTO run_jobs (runId, script) SELECT id, $2::jsonb FROM new_run WHERE $3 RETURNING runId)
     SELECT pg_notify('${CHANNELS.jobsWake}', runId) FROM job`,
    [runId, JSON.stringify(script), withJob],
  );
  return runId;
}

export async function getRun(db, runId) {
  const { rows } = await db.query(
    `SELECT id, state, lastSeq, ${iso('startedAt')} AS started, ${iso('finishedAt')} AS finished FROM runs WHERE id = $1`,
    [runId],
  );
  return rows[0] ?? null;
}

export class AppendRefused extends HttpError {}

const APPEND = `
WITH bumped AS (
  UPDATE runs SET lastSeq = lastSeq + 1,
                  state = coalesce($4::text, CASE WHEN state = 'queued' THEN 'started' ELSE state END),
                  startedAt = coalesce(startedAt, now()),
                  finishedAt = CASE WHEN $4::text IS NULL THEN finishedAt ELSE now() END
  WHERE id = $1 AND state IN ('queued', 'started')
  RETURNING id, lastSeq
)
INSERT INTO run_events (runId, seq, type, payload)
SELECT id, lastSeq, $2, $3::jsonb FROM bumped
RETURNING seq, pg_notify('${CHANNELS.outboxWake}', runId)`;

// Appends one event on `db` (a pool, or a client inside the caller's transaction); returns its seq.
// Throws AppendRefused: 404 for an unknown run, 409 after the terminal event. The metric line is the
// caller's to write once the append is committed (`appended`).
export async function append(db, runId, type, payload) {
  const { rows } = await db.query(APPEND, [runId, type, JSON.stringify(payload), finalState(type, payload)]);
  if (rows.length) return rows[0].seq;
  const found = await db.query('SELECT state, lastSeq FROM runs WHERE id = $1', [runId]);
  if (!found.rows.length) throw new AppendRefused(404, `run ${runId} not found`);
  const { state, lastseq: lastSeq } = found.rows[0];
  throw new AppendRefused(409, `Non-monotonic seq append: run ${runId} is already ${state} (lastSeq ${lastSeq})`);
}

export function appended(runId, seq, type) {
  metrics.inc('events_inserted_total', { type: metrics.typeLabel(type) });
  log.info('metric.events_inserted', { run_id: runId, seq, event_type: type });
}

// -- the stream's reads --------------------------------------------------------------------------------

const EVENT_COLUMNS = `seq, type, payload::text AS payload, ${iso('ts')} AS ts`;

// Whether anything more will ever be sent after `cursor` (answer 204 / end the stream), and whether
// published events wait after it.
export async function streamStatus(db, runId, cursor) {
  const { rows } = await db.query(
    `SELECT r.state, r.lastSeq, o.nextSeq,
            EXISTS (SELECT 1 FROM run_events e
                    WHERE e.runId = r.id AND e.seq > $2 AND e.publishedAt IS NOT NULL) AS published_after
     FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id WHERE r.id = $1`,
    [runId, cursor],
  );
  if (!rows.length) return null;
  const { state, lastseq: lastSeq, nextseq: nextSeq, published_after: publishedAfter } = rows[0];
  // Terminal, and either the cursor is at the end, or nothing published is left after it while the
  // outbox cannot publish more (its row deleted or caught up): the runbook's hand cancellation ends a
  // run without a RunFinished event.
  const outboxDone = nextSeq === null || nextSeq > lastSeq;
  const finished = isTerminalState(state) && (cursor >= lastSeq || (outboxDone && !publishedAfter));
  return { state, lastSeq, publishedAfter, finished };
}

// Backfill: published events after `after`, in seq order. Never an unpublished one: it would reach the
// client before the bus has it (time travel), unless the `backfill_unpublished` defect is switched on.
export async function readPublished(db, runId, after, limit, { includeUnpublished = false } = {}) {
  const filter = includeUnpublished ? '' : 'AND publishedAt IS NOT NULL';
  const { rows } = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM run_events WHERE runId = $1 AND seq > $2 ${filter} ORDER BY seq LIMIT $3`,
    [runId, after, limit],
  );
  return rows;
}

// Fill: after < seq <= upto, published or not. Only called for seqs the bus has carried: the outbox
// publishes a run's events in seq order, so everything below a published seq is published too.
export async function readRange(db, runId, after, upto) {
  const { rows } = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM run_events WHERE runId = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`,
    [runId, after, upto],
  );
  return rows;
}
