#!/usr/bin/env node
// `node src/main.js ROLE`: migrate | api | outbox-worker | queue-worker | all (every role in one process).
//
// A bad role or configuration value is one line on stderr and exit status 2. SIGTERM/SIGINT stop the
// process after its in-flight work, exit 0, bounded by STOP_DEADLINE_MS.

import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { runApi } from './api.js';
import { ConfigError, loadConfig } from './config.js';
import { errorText } from './db.js';
import { sendJson } from './http.js';
import { logger, setService } from './log.js';
import { metrics } from './metrics.js';
import { migrate } from './migrate.js';
import { startOutbox } from './outbox.js';
import { startQueue } from './queue.js';

const ROLES = ['migrate', 'api', 'outbox-worker', 'queue-worker', 'all'];
const STOP_DEADLINE_MS = 6000;
const log = logger('main');

// A worker's ops listener on PORT (when set): /healthz (its LISTEN connection is up) and /metrics.
async function serveOps(config, workers) {
  if (config.port === null) return null;
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    if (path === '/healthz') {
      const ok = workers.every((worker) => worker.healthy);
      sendJson(res, ok ? 200 : 503, { ok });
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metrics.render());
    } else {
      sendJson(res, 404, { error: 'not found' });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  return server;
}

async function runWorkers(config, signal, starters) {
  const workers = starters.map((start) => start(config, signal));
  const ops = await serveOps(config, workers);
  await Promise.all(workers.map((worker) => worker.done));
  ops?.close();
  ops?.closeAllConnections();
}

const RUNNERS = {
  api: (config, signal) => runApi(config, signal),
  'outbox-worker': (config, signal) => runWorkers(config, signal, [startOutbox]),
  'queue-worker': (config, signal) => runWorkers(config, signal, [startQueue]),
  all: async (config, signal) => {
    await migrate(config);
    const workers = [startOutbox(config, signal), startQueue(config, signal)];
    await Promise.all([runApi(config, signal), ...workers.map((worker) => worker.done)]);
  },
};

async function main(argv) {
  const role = argv[0];
  if (argv.length !== 1 || !ROLES.includes(role)) {
    process.stderr.write(`error: unknown role ${JSON.stringify(argv.join(' ') || '(none)')}; usage: node src/main.js {${ROLES.join('|')}}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env, role);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  setService(config.instance);
  if (config.defect) log.warn('defect.enabled', { defect: config.defect });
  process.on('unhandledRejection', (err) => log.error('process.unhandled_rejection', { error: errorText(err) }));
  try {
    if (role === 'migrate') {
      await migrate(config);
      return 0;
    }
    const stop = new AbortController();
    setMaxListeners(0, stop.signal); // every running job and loop listens for the stop
    const onSignal = () => {
      stop.abort();
      setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    await RUNNERS[role](config, stop.signal);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${role} failed: ${errorText(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
if (process.exitCode !== 0) process.exit(process.exitCode); // a failed start must not linger on open handles
