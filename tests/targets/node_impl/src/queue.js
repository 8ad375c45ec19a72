// `queue-worker`: runs queued jobs, i.e. the scripted events of a run (RunStarted, RunStep x steps,
// RunFinished).
//
// A job is claimed with FOR UPDATE SKIP LOCKED and a lease (lockedBy, lockedUntil) extended while it
// runs. A job whose lease ran out (its worker died or froze) is claimed again and RESUMES from what the
// run's event log says was done. Every append first extends the lease in the same transaction, fenced
// by (lockedBy, attempts): a worker paused or cut off past its lease cannot append beside the one that
// took over, not even when that one is itself on a later attempt. The fence names the run too: job ids
// come back when the table is emptied with RESTART IDENTITY under a running worker, and a copy left
// from before must not extend, or mark done, the new job that took its id and attempt.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { errorText, isOutage, makePool } from './db.js';
import { CHANNELS, TERMINAL_TYPE, isTerminalState } from './events.js';
import { startListener } from './listener.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';
import { AppendRefused, append, appended, parseScript } from './runs.js';
import { alarm, backoff, sleep } from './timing.js';

const RETRY_AFTER_ERROR_MS = 500;
const log = logger('queue');

const CLAIM = `
UPDATE run_jobs SET state = 'running', lockedBy = $1, attempts = attempts + 1,
       lockedUntil = now() + make_interval(secs => $2 / 1000.0), updatedAt = now()
WHERE id IN (
  SELECT id FROM run_jobs
  WHERE state = 'queued' OR (state = 'running' AND lockedUntil < now())
  ORDER BY createdAt LIMIT $3
  FOR UPDATE SKIP LOCKED
)
RETURNING id, runId AS run_id, script, attempts`;
const EXTEND = `
UPDATE run_jobs SET lockedUntil = now() + make_interval(secs => $4 / 1000.0), updatedAt = now()
WHERE id = $1 AND runId = $5 AND lockedBy = $2 AND attempts = $3 AND state = 'running'
RETURNING id`;
const RELEASE = `
UPDATE run_jobs SET state = $4, lockedBy = NULL, lockedUntil = NULL, updatedAt = now()
WHERE id = $1 AND runId = $5 AND lockedBy = $2 AND attempts = $3`;
const PROGRESS = `
SELECT r.state,
       EXISTS (SELECT 1 FROM run_events e WHERE e.runId = r.id AND e.type = 'RunStarted') AS started,
       (SELECT CASE WHEN jsonb_typeof(e.payload -> 'step') = 'number' THEN (e.payload ->> 'step')::numeric END
        FROM run_events e WHERE e.runId = r.id AND e.type = 'RunStep' ORDER BY e.seq DESC LIMIT 1) AS last_step
FROM runs r WHERE r.id = $1`;

class LeaseLost extends Error {}

// {"step", "data"} with `size` characters of deterministic ASCII data.
export function stepPayload(step, size) {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return { step, data: letters.repeat(Math.ceil(size / letters.length)).slice(0, size) };
}

function scriptOf(raw) {
  try {
    return parseScript(raw);
  } catch {
    return parseScript({}); // a hand-edited job row: run the default script rather than stop the loop
  }
}

export function startQueue(config, signal) {
  const me = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const pool = makePool(config, { max: config.queueMaxJobs + 2 });
  const active = new Set(); // the promises of the job copies this worker runs now (a retaken job: two)
  const pause = backoff();
  const wakeUp = alarm();
  const listener = startListener(config, {
    channels: [CHANNELS.jobsWake], component: 'queue', onNotify: () => wakeUp.wake(), onConnect: () => wakeUp.wake(),
  });

  const extend = async (db, job) => {
    const { rows } = await db.query(EXTEND, [job.id, me, job.attempts, config.jobLeaseMs, job.run_id]);
    if (!rows.length) throw new LeaseLost(`job ${job.id} attempt ${job.attempts} is no longer leased by ${me}`);
  };

  async function appendFenced(job, type, payload) {
    const client = await pool.connect();
    let failure;
    try {
      await client.query('BEGIN');
      await extend(client, job);
      const seq = await append(client, job.run_id, type, payload);
      await client.query('COMMIT');
      appended(job.run_id, seq, type);
    } catch (err) {
      failure = err;
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release(failure && isOutage(failure) ? failure : undefined); // a broken connection is not reused
    }
  }

  async function progress(runId) {
    const { rows } = await pool.query(PROGRESS, [runId]);
    if (!rows.length) return { state: 'cancelled' }; // the run is gone: nothing left to do
    const { state, started, last_step: lastStep } = rows[0];
    return { state, started, nextStep: lastStep === null ? 0 : Number(lastStep) + 1 };
  }

  // Appends what the log does not have yet; returns the run's end state.
  async function advance(job, stop) {
    const { state, started, nextStep } = await progress(job.run_id);
    if (isTerminalState(state)) return state;
    const { steps, interval_ms: intervalMs, payload_bytes: payloadBytes, outcome } = job.script;
    let first = true;
    const next = async (type, payload) => {
      if (!first && intervalMs) await sleep(intervalMs, stop);
      if (stop.aborted) throw stop.reason;
      first = false;
      await appendFenced(job, type, payload);
    };
    try {
      if (!started) await next('RunStarted', {});
      for (let step = nextStep; step < steps; step += 1) await next('RunStep', stepPayload(step, payloadBytes));
      await next(TERMINAL_TYPE, { status: outcome });
    } catch (err) {
      if (err instanceof AppendRefused && err.status === 409) return (await progress(job.run_id)).state; // cancelled meanwhile
      throw err;
    }
    return outcome;
  }

  async function runJob(job) {
    const controller = new AbortController();
    const stop = controller.signal;
    const onShutdown = () => controller.abort(new Error('shutting down'));
    signal.addEventListener('abort', onShutdown, { once: true });
    log.info('worker:job:start', { run_id: job.run_id, job_id: job.id, attempt: job.attempts });
    const keeper = setInterval(() => {
      extend(pool, job).catch((err) => {
        if (err instanceof LeaseLost) controller.abort(err); // another worker owns it: stop appending now
        else log.warn('job.lease_error', { run_id: job.run_id, job_id: job.id, error: errorText(err) });
      });
    }, config.jobLeaseMs / 3);
    try {
      for (;;) {
        try {
          const status = await advance(job, stop);
          await pool.query(RELEASE, [job.id, me, job.attempts, 'done', job.run_id]);
          metrics.inc('jobs_finished_total', { status });
          log.info('job.done', { run_id: job.run_id, job_id: job.id, status });
          return;
        } catch (err) {
          if (stop.aborted || !isOutage(err)) throw err;
          log.error('job.error', { run_id: job.run_id, job_id: job.id, error: errorText(err) });
          await sleep(RETRY_AFTER_ERROR_MS, stop);
        }
      }
    } catch (err) {
      const why = stop.aborted ? stop.reason : err;
      if (why instanceof LeaseLost) {
        log.warn('job.lease_lost', { run_id: job.run_id, job_id: job.id });
      } else if (signal.aborted) {
        // shutting down: hand the job back now so another worker resumes it without waiting for the lease
        await pool.query(RELEASE, [job.id, me, job.attempts, 'queued', job.run_id]).catch(() => {});
      } else {
        log.error('job.failed', { run_id: job.run_id, job_id: job.id, error: errorText(err) }); // retried when the lease runs out
      }
    } finally {
      clearInterval(keeper);
      signal.removeEventListener('abort', onShutdown);
    }
  }

  function start(job) {
    const done = runJob(job).finally(() => {
      active.delete(done);
      wakeUp.wake();
    });
    active.add(done);
  }

  async function claimSome() {
    const free = config.queueMaxJobs - active.size;
    if (free <= 0) return 0;
    try {
      const { rows } = await pool.query(CLAIM, [me, config.jobLeaseMs, free]);
      pause.reset();
      for (const row of rows) start({ ...row, script: scriptOf(row.script) });
      return rows.length;
    } catch (err) {
      log.error('job.claim_failed', { error: errorText(err) });
      await pause.wait(signal);
      return 0;
    }
  }

  const done = (async () => {
    while (!signal.aborted) {
      const claimed = await claimSome();
      if (!signal.aborted && (claimed === 0 || active.size >= config.queueMaxJobs)) await wakeUp.sleep(config.queuePollMs, signal);
    }
    await Promise.all(active);
    await listener.stop();
    await pool.end().catch(() => {});
  })();

  return { done, get healthy() { return listener.connected; } };
}
