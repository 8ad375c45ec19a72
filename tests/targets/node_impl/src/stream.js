// GET /api/agents/runs/{runId}/stream once the API decided to open it: backfill, then follow the bus.
//
// Order matters (runbook "Rebuild Stream"): subscribe to the bus FIRST, then backfill the published
// events after the cursor, then follow. A live event with seq <= lastSentSeq is dropped (the backfill
// or an earlier publish sent it); one that skips ahead, or came without its data (too big for a
// NOTIFY), is filled from the database by seq range. After a bus reconnect (RESYNC) the stream
// re-backfills from lastSentSeq. An idle stream sends a heartbeat comment every HEARTBEAT_INTERVAL_MS
// and then re-checks the database, which also ends the streams of a run cancelled by hand (terminal
// state without a RunFinished event). The stream ends right after it sent RunFinished.

import { randomBytes } from 'node:crypto';
import { errorText, isOutage } from './db.js';
import { HEARTBEAT, TERMINAL_TYPE, eventData, sseFrame } from './events.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';
import { readPublished, readRange, streamStatus } from './runs.js';
import { RESYNC } from './bus.js';

export const SSE_HEADERS = Object.freeze({
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no', // tells nginx not to buffer this response
  connection: 'keep-alive',
});

const PAGE = 500; // a long run is backfilled page by page, never loaded whole
// After a backfill, look again shortly: an event published before we subscribed but marked only after
// the backfill read it is otherwise found at the next heartbeat.
const RECHECKS_MS = [200, 1000];
const MAX_UNSENT_BYTES = 16 * 1024 * 1024; // written but not taken by the client: a consumer this slow is cut
const log = logger('stream');

class StreamEnd extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

export async function serveStream({ config, pool, bus, shutdown }, req, res, runId, cursor) {
  const sub = bus.subscribe(runId); // before the backfill reads anything
  const connId = randomBytes(8).toString('hex');
  const gone = new AbortController(); // the client left, or the process is stopping
  const dedupe = config.defect !== 'no_dedupe';
  let lastSent = cursor.value;
  let lastWrite = Date.now();
  let rechecks = [];
  let terminalSent = false;
  let reason = 'error';

  log.info('stream-run', {
    run_id: runId, from_seq: cursor.fromSeq, last_event_id: cursor.lastEventId, cursor: cursor.value, conn_id: connId,
  });
  metrics.inc('sse_streams_open');
  const stopStream = () => {
    gone.abort();
    sub.wake?.();
  };
  res.on('close', stopStream);
  shutdown.addEventListener('abort', stopStream, { once: true });
  if (shutdown.aborted) gone.abort(); // opened while the process stops: end at once
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  req.socket.setNoDelay(true);

  function write(text) {
    res.write(text);
    lastWrite = Date.now();
    if (res.writableLength > MAX_UNSENT_BYTES) throw new StreamEnd('slow-consumer');
  }

  function emit(seq, type, data) {
    lastSent = seq;
    if (type === TERMINAL_TYPE) terminalSent = true;
    write(sseFrame(seq, type, data));
  }

  async function query(read, ...args) {
    try {
      return await read(pool, runId, ...args);
    } catch (err) {
      if (isOutage(err)) throw new StreamEnd('db-unavailable'); // the client resumes from its last id
      throw err;
    }
  }

  function drained() {
    if (!res.writableNeedDrain || gone.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        res.off('drain', done);
        gone.signal.removeEventListener('abort', done);
        resolve();
      };
      res.once('drain', done);
      gone.signal.addEventListener('abort', done, { once: true });
    });
  }

  async function backfill() {
    const includeUnpublished = config.defect === 'backfill_unpublished';
    for (;;) {
      const rows = await query(readPublished, lastSent, PAGE, { includeUnpublished });
      for (const row of rows) if (!terminalSent) emit(row.seq, row.type, eventData(runId, row));
      if (rows.length < PAGE || terminalSent || gone.signal.aborted) break;
      await drained();
    }
    const now = Date.now();
    rechecks = RECHECKS_MS.map((delay) => now + delay);
  }

  async function fill(upto) {
    for (const row of await query(readRange, lastSent, upto)) if (!terminalSent) emit(row.seq, row.type, eventData(runId, row));
  }

  async function onItem(item) {
    if (item === RESYNC) return backfill();
    if (dedupe && item.seq <= lastSent) return undefined; // already sent by the backfill or an earlier publish
    if (item.data === undefined || item.seq > lastSent + 1) return fill(item.seq);
    return emit(item.seq, item.type, item.data);
  }

  // The next bus item, or null when a heartbeat or a recheck is due (or the stream must stop).
  function next() {
    if (sub.items.length) return Promise.resolve(sub.items.shift());
    const due = Math.min(lastWrite + config.heartbeatMs, rechecks[0] ?? Infinity);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        sub.wake = null;
        resolve(null);
      }, Math.max(0, due - Date.now()));
      sub.wake = () => {
        clearTimeout(timer);
        sub.wake = null;
        resolve(sub.items.shift() ?? null);
      };
    });
  }

  // Heartbeat when due, then the safety net: published events the bus did not bring, and the end of a
  // run that finished without a RunFinished to send.
  async function idle() {
    const now = Date.now();
    rechecks = rechecks.filter((at) => at > now);
    if (now >= lastWrite + config.heartbeatMs) {
      write(HEARTBEAT);
      metrics.inc('sse_heartbeats_total');
    }
    let status;
    try {
      status = await streamStatus(pool, runId, lastSent);
    } catch (err) {
      if (isOutage(err)) return; // keep the stream (heartbeats) and look again later
      throw err;
    }
    if (status === null) throw new StreamEnd('run-deleted');
    if (status.publishedAfter) await backfill();
    else if (status.finished) throw new StreamEnd('run-terminal');
  }

  try {
    if (config.sseRetryMs !== null) write(`retry: ${config.sseRetryMs}\n\n`);
    await backfill();
    while (!terminalSent && !gone.signal.aborted) {
      const item = await next();
      if (gone.signal.aborted) break;
      if (sub.overflowed) throw new StreamEnd('slow-consumer');
      if (item === null) {
        await idle();
        continue;
      }
      res.cork(); // what is queued goes out as one write
      try {
        for (let it = item; it !== undefined && !terminalSent; it = sub.items.shift()) await onItem(it);
      } finally {
        res.uncork();
      }
    }
    reason = terminalSent ? 'terminal' : shutdown.aborted ? 'shutdown' : 'client-disconnect';
  } catch (err) {
    if (err instanceof StreamEnd) {
      reason = err.reason;
    } else {
      log.error('stream.failed', { run_id: runId, conn_id: connId, error: errorText(err) });
    }
  } finally {
    sub.close();
    shutdown.removeEventListener('abort', stopStream);
    metrics.inc('sse_streams_open', {}, -1);
    log.info('stream.closed', { run_id: runId, conn_id: connId, last_sent_seq: lastSent, reason });
    res.end();
  }
}
