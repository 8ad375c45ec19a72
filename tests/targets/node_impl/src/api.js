// The HTTP API on node:http: runs, appends, cancel, the SSE stream, /healthz and /metrics.

import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { startBacklogGauge } from './backlog.js';
import { startBus } from './bus.js';
import { errorText, isOutage, makePool } from './db.js';
import { TERMINAL_TYPE } from './events.js';
import { HttpError, parseRunId, readJson, resolveCursor, sendJson } from './http.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';
import { append, appended, createRun, getRun, parseEvent, parseScript, streamStatus } from './runs.js';
import { SSE_HEADERS, serveStream } from './stream.js';
import { withTimeout } from './timing.js';

const log = logger('api');
const startLog = logger('start-run');
const RUN_PATH = /^\/api\/agents\/runs\/([^/]+)(\/events|\/cancel|\/stream)?$/;
const QUERY_TIMEOUT_MS = 3000; // a request answers 503 within about 3 s while the database is unreachable

async function postRun(ctx, req, res) {
  const body = await readJson(req, { empty: {} });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
  const script = parseScript(body.script);
  const withJob = body.job ?? true;
  if (typeof withJob !== 'boolean') throw new HttpError(400, 'job must be true or false');
  const runId = await createRun(ctx.pool, script, withJob);
  startLog.info('start-run', { run_id: runId, script, job: withJob });
  sendJson(res, 201, { runId, state: 'queued' });
}

async function readRun(ctx, req, res, runId) {
  const run = await getRun(ctx.pool, runId);
  if (!run) throw new HttpError(404, `run ${runId} not found`);
  sendJson(res, 200, { id: run.id, state: run.state, startedAt: run.started, finishedAt: run.finished, lastSeq: run.lastseq });
}

async function appendAndAnswer(ctx, res, runId, type, payload, status) {
  const seq = await append(ctx.pool, runId, type, payload);
  appended(runId, seq, type);
  sendJson(res, status, { runId, seq });
}

async function postEvent(ctx, req, res, runId) {
  const { type, payload } = parseEvent(await readJson(req));
  await appendAndAnswer(ctx, res, runId, type, payload, 201);
}

async function cancelRun(ctx, req, res, runId) {
  await appendAndAnswer(ctx, res, runId, TERMINAL_TYPE, { status: 'cancelled' }, 200);
}

async function openStream(ctx, req, res, runId, url) {
  const cursor = resolveCursor(url.searchParams.get('fromSeq'), req.headers['last-event-id']);
  const status = await streamStatus(ctx.pool, runId, cursor.value);
  if (!status) throw new HttpError(404, `run ${runId} not found`);
  if (status.finished) {
    if (ctx.config.defect === '200_after_terminal') {
      res.writeHead(200, SSE_HEADERS); // defect: an empty 200 stream, which an EventSource reconnects to for ever
      res.end();
      return;
    }
    res.writeHead(204); // nothing more will come: a browser's EventSource stops reconnecting on 204
    res.end();
    return;
  }
  await serveStream(ctx, req, res, runId, cursor);
}

async function healthz(ctx, req, res) {
  try {
    await withTimeout(ctx.pool.query('SELECT 1'), 2000, 'health query');
  } catch (err) {
    sendJson(res, 503, { ok: false, error: errorText(err) });
    return;
  }
  sendJson(res, 200, { ok: true, bus: ctx.bus.connected });
}

function serveMetrics(ctx, req, res) {
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
  res.end(metrics.render());
}

// [method, handler] for a path; a known path with another method is 405.
function route(path) {
  if (path === '/api/agents/runs') return { POST: postRun };
  if (path === '/healthz') return { GET: healthz };
  if (path === '/metrics') return { GET: serveMetrics };
  const match = RUN_PATH.exec(path);
  if (!match) return null;
  const handlers = { '': { GET: readRun }, '/events': { POST: postEvent }, '/cancel': { POST: cancelRun }, '/stream': { GET: openStream } };
  return { ...handlers[match[2] ?? ''], rawRunId: match[1] };
}

function answerError(res, err, path) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    // An oversized body is left unread: close the connection rather than read the rest.
    sendJson(res, err.status, { error: err.message }, err.status === 413 ? { connection: 'close' } : {});
  } else if (isOutage(err)) {
    sendJson(res, 503, { error: `database unavailable: ${errorText(err)}` });
  } else {
    log.error('api.unhandled', { path, error: errorText(err) });
    sendJson(res, 500, { error: 'internal error' });
  }
}

function handler(ctx) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      const methods = route(url.pathname);
      if (!methods) throw new HttpError(404, 'not found');
      const handle = methods[req.method];
      if (!handle) throw new HttpError(405, `method ${req.method} not allowed`);
      const runId = methods.rawRunId === undefined ? undefined : parseRunId(methods.rawRunId);
      await handle(ctx, req, res, runId, url);
    } catch (err) {
      answerError(res, err, url.pathname);
    }
  };
}

// Serves until `signal` aborts; resolves once the server, the streams and the pool are closed.
export async function runApi(config, signal) {
  const pool = makePool(config, { queryTimeoutMs: QUERY_TIMEOUT_MS });
  const bus = startBus(config);
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal); // every open stream listens for the shutdown
  const gauge = startBacklogGauge(config, shutdown.signal);
  const server = http.createServer(handler({ config, pool, bus, shutdown: shutdown.signal }));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  log.info('api.listening', { host: config.host, port: server.address().port });
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  const closed = new Promise((resolve) => server.close(resolve));
  shutdown.abort(); // ends open streams now instead of waiting for their clients
  // A connection goes idle once its stream or request is answered; close each as soon as it does.
  const reaper = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  await withTimeout(closed, 5000, 'closing the api').catch(() => server.closeAllConnections());
  clearInterval(reaper);
  await Promise.all([gauge, bus.stop(), pool.end().catch(() => {})]);
}
