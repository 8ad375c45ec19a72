// End-to-end self-test against the PostgreSQL at DATABASE_URL (skipped without it): migrate, the three
// roles as processes, streams read over HTTP, an outbox worker SIGKILLed mid-run, a job id reused under
// a stale job copy, a seq gap, and each defect of NODE_IMPL_DEFECT shown against the correct API.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres node --test test/

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStream, postJson, range, seqsOf, sql, startRole, stop, waitFor } from './helpers.js';

const skip = process.env.DATABASE_URL ? false : 'DATABASE_URL is not set';

describe('node_impl end to end', { skip }, () => {
  const procs = {};

  before(async () => {
    const migrate = await startRole('migrate');
    assert.equal(await migrate.exit, 0, migrate.stderr);
    procs.api = await startRole('api');
    procs.outbox = await startRole('outbox-worker');
    procs.queue = await startRole('queue-worker');
  });

  after(async () => {
    await Promise.all(Object.values(procs).map((proc) => stop(proc)));
  });

  const runs = (path = '') => `${procs.api.url}/api/agents/runs${path}`;
  const newRun = async (body) => (await postJson(runs(), body)).body.runId;
  const appendEvent = (runId, type, payload = {}) => postJson(runs(`/${runId}/events`), { type, payload });

  test('a stream heartbeats while idle, delivers live in order, ends on RunFinished, resumes by Last-Event-ID, then 204', async () => {
    const runId = await newRun({ job: false });
    const live = await openStream(runs(`/${runId}/stream`));
    assert.equal(live.status, 200);
    await waitFor(() => live.heartbeats >= 1, 3000, 'a heartbeat on the idle stream');
    for (const type of ['One', 'Two', 'Three']) assert.equal((await appendEvent(runId, type)).status, 201);
    assert.deepEqual(await postJson(runs(`/${runId}/cancel`), {}), { status: 200, body: { runId, seq: 4 } });
    assert.equal(await live.ended, 'server-closed');
    assert.deepEqual(seqsOf(live), [1, 2, 3, 4]);
    assert.deepEqual(live.frames.map((f) => f.event), ['One', 'Two', 'Three', 'RunFinished']);
    assert.deepEqual(live.frames[3].data.payload, { status: 'cancelled' });

    const resumed = await openStream(runs(`/${runId}/stream?fromSeq=0`), { 'Last-Event-ID': '2' });
    assert.equal(await resumed.ended, 'server-closed');
    assert.deepEqual(seqsOf(resumed), [3, 4]);
    assert.equal((await openStream(runs(`/${runId}/stream`), { 'Last-Event-ID': '4' })).status, 204);
    assert.equal((await appendEvent(runId, 'Late')).status, 409);
  });

  test('an outbox worker SIGKILLed mid-run and restarted loses and duplicates nothing', async () => {
    const steps = 40;
    const runId = await newRun({ script: { steps, interval_ms: 25 } });
    const fromStart = await openStream(runs(`/${runId}/stream`));
    const resumed = await openStream(runs(`/${runId}/stream`), { 'Last-Event-ID': '5' });
    await waitFor(() => fromStart.frames.length >= 10, 5000, 'ten frames');
    await stop(procs.outbox, 'SIGKILL');
    const [{ lastseq: appendedWhileDown }] = await waitFor(async () => {
      const rows = await sql('SELECT lastSeq::int FROM runs WHERE id = $1', [runId]);
      return rows[0].lastseq > fromStart.frames.length + 3 && rows;
    }, 5000, 'appends while the outbox is down');
    assert.ok(fromStart.frames.length < appendedWhileDown, 'nothing is streamed before it is published');
    procs.outbox = await startRole('outbox-worker');
    assert.equal(await fromStart.ended, 'server-closed');
    assert.equal(await resumed.ended, 'server-closed');
    assert.deepEqual(seqsOf(fromStart), range(1, steps + 2));
    assert.deepEqual(seqsOf(resumed), range(6, steps + 2));
    const [row] = await sql(
      `SELECT r.lastSeq::int, o.nextSeq::int, count(*) FILTER (WHERE e.publishedAt IS NULL)::int AS unpublished
       FROM runs r JOIN run_outbox o ON o.runId = r.id JOIN run_events e ON e.runId = r.id
       WHERE r.id = $1 GROUP BY r.lastSeq, o.nextSeq`, [runId]);
    assert.deepEqual(row, { lastseq: steps + 2, nextseq: steps + 3, unpublished: 0 });
  });

  test('every session of every role terminated mid-run: the processes reconnect, nothing lost or duplicated', async () => {
    const steps = 40;
    const runId = await newRun({ script: { steps, interval_ms: 25 } });
    const consumer = await openStream(runs(`/${runId}/stream`));
    await waitFor(() => consumer.frames.length >= 10, 5000, 'ten frames');
    for (let round = 0; round < 2; round += 1) {
      const killed = await sql(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
                                WHERE application_name IN ('api', 'outbox-worker', 'queue-worker')`);
      assert.ok(killed[0].n >= 3, `terminated ${killed[0].n} sessions`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(await consumer.ended, 'server-closed');
    const resumed = await openStream(runs(`/${runId}/stream`), { 'Last-Event-ID': String(seqsOf(consumer).at(-1)) });
    assert.ok([204, 200].includes(resumed.status));
    await resumed.ended;
    const seqs = [...seqsOf(consumer), ...seqsOf(resumed)];
    assert.deepEqual(seqs, range(1, steps + 2));
    for (const proc of Object.values(procs)) assert.equal(proc.child.exitCode, null, proc.stderr);
  });

  test('a job copy whose job id came back for another run loses its lease at once', async () => {
    // The harness empties the tables with RESTART IDENTITY under a running worker: a new run's job can
    // get the id, attempt and lockedBy of a copy still sleeping between steps. Here the stale copy's row
    // is handed to another run as it stands; the copy must see it is no longer its job rather than keep
    // its lease alive, and the job must be retaken once that lease runs out.
    const started = (runId) => procs.queue.lines.find((l) => l.includes('msg=worker:job:start') && l.includes(runId));
    const stale = await newRun({ script: { steps: 2, interval_ms: 5000 } });
    await waitFor(() => started(stale), 3000, 'the stale job to start');
    const fresh = await newRun({ job: false });
    await sql(`UPDATE run_jobs SET runId = $2, script = '{"steps": 5, "interval_ms": 50}' WHERE runId = $1`, [stale, fresh]);
    await waitFor(() => procs.queue.lines.find((l) => l.includes('msg=job.lease_lost') && l.includes(stale)), 2500,
      'the stale copy to lose its lease');
    await waitFor(async () => (await sql('SELECT state FROM runs WHERE id = $1', [fresh]))[0].state === 'succeeded', 8000,
      'the job, retaken, to finish the new run');
    const [{ lastseq }] = await sql('SELECT lastSeq::int FROM runs WHERE id = $1', [stale]);
    assert.equal(lastseq, 1, 'the stale copy appended to its old run');
    await postJson(runs(`/${stale}/cancel`), {});
  });

  test('the outbox stops at a seq gap and raises the alert', async () => {
    const runId = await newRun({ job: false });
    await appendEvent(runId, 'Before');
    await sql(`WITH r AS (UPDATE runs SET lastSeq = 3 WHERE id = $1 RETURNING id)
               INSERT INTO run_events (runId, seq, type) SELECT id, 3, 'After' FROM r`, [runId]);
    const alert = await waitFor(() => procs.outbox.lines.find((l) => l.includes('msg=outbox.seq_gap') && l.includes(runId)), 3000, 'the gap alert');
    assert.match(alert, /level=alert .* expected_seq=2 last_seq=3/);
    const [{ nextseq }] = await sql('SELECT nextSeq::int FROM run_outbox WHERE runId = $1', [runId]);
    assert.equal(nextseq, 2);
  });

  describe('defects switched on by NODE_IMPL_DEFECT', () => {
    const defective = (defect) => startRole('api', { NODE_IMPL_DEFECT: defect });
    const streamUrl = (api, runId, query = '') => `${api.url}/api/agents/runs/${runId}/stream${query}`;

    test('200_after_terminal answers an empty 200 where the correct API answers 204', async () => {
      const api = await defective('200_after_terminal');
      try {
        const runId = await newRun({ job: false });
        await postJson(runs(`/${runId}/cancel`), {});
        assert.equal((await openStream(streamUrl(procs.api, runId, '?fromSeq=1'))).status, 204);
        const wrong = await openStream(streamUrl(api, runId, '?fromSeq=1'));
        assert.equal(wrong.status, 200);
        assert.equal(await wrong.ended, 'server-closed');
      } finally {
        await stop(api);
      }
    });

    test('backfill_unpublished backfills events the outbox has not published', async () => {
      const api = await defective('backfill_unpublished');
      procs.outbox.child.kill('SIGSTOP');
      try {
        const runId = await newRun({ job: false });
        await appendEvent(runId, 'NotYetPublished');
        const right = await openStream(streamUrl(procs.api, runId));
        const wrong = await openStream(streamUrl(api, runId));
        await waitFor(() => wrong.frames.length === 1, 3000, 'the unpublished event from the defective API');
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(seqsOf(right), []);
        right.close();
        wrong.close();
      } finally {
        procs.outbox.child.kill('SIGCONT');
        await stop(api);
      }
    });

    test('no_dedupe sends a re-published event again', async () => {
      const api = await defective('no_dedupe');
      try {
        const runId = await newRun({ job: false });
        await appendEvent(runId, 'Once');
        const right = await openStream(streamUrl(procs.api, runId));
        const wrong = await openStream(streamUrl(api, runId));
        await waitFor(() => right.frames.length === 1 && wrong.frames.length === 1, 3000, 'seq 1 on both streams');
        // What a crash between publish and mark does: the outbox publishes seq 1 a second time.
        const data = JSON.stringify(right.frames[0].data);
        await sql("SELECT pg_notify('node_run_events', $1)", [JSON.stringify({ run: runId, seq: 1, type: 'Once', data })]);
        await waitFor(() => wrong.frames.length === 2, 3000, 'the duplicate from the defective API');
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(seqsOf(wrong), [1, 1]);
        assert.deepEqual(seqsOf(right), [1]);
        right.close();
        wrong.close();
      } finally {
        await stop(api);
      }
    });
  });
});
