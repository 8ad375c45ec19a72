// PostgreSQL access: pools, dedicated clients, and what counts as "the database is unreachable".
//
// Chaos tests restart PostgreSQL, terminate sessions and cut links under the service, so connects are
// bounded, TCP keepalives are on, every client has an 'error' listener (an idle client killed by the
// server must not crash the process) and outage errors are told apart from bugs: the API answers
// them with 503 and the workers retry.

import pg from 'pg';

// bigint (seq, lastSeq, ids) as a JS number: seqs stay far below 2**53.
pg.types.setTypeParser(pg.types.builtins.INT8, (text) => Number(text));

const CONNECT_TIMEOUT_MS = 3000;

function clientConfig(config, extra = {}) {
  return {
    connectionString: config.databaseUrl,
    application_name: config.instance,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10000,
    ...extra,
  };
}

export function makePool(config, { max = config.pgPoolSize, queryTimeoutMs } = {}) {
  const pool = new pg.Pool({ ...clientConfig(config), max, idleTimeoutMillis: 60000, query_timeout: queryTimeoutMs });
  pool.on('error', () => {}); // an idle client died (server restart, terminated session): the pool drops it
  // A checked-out client has no pool listener: a FATAL arriving between two of its queries (the server
  // going down) would be an unhandled 'error' event. Its next query fails instead, as an outage.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

// A dedicated connection (LISTEN, the outbox's transaction and publish connections).
export async function connect(config, extra = {}) {
  const client = new pg.Client(clientConfig(config, extra));
  client.on('error', () => {
    client.broken = true;
  });
  try {
    await client.connect();
  } catch (err) {
    destroy(client);
    throw err;
  }
  return client;
}

// Close without waiting for the server: the connection may be behind a link that swallows everything.
export function destroy(client) {
  if (!client) return;
  client.broken = true;
  try {
    client.connection?.stream?.destroy();
  } catch {
    // already gone
  }
  client.end().catch(() => {});
}

const OUTAGE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  '57P01', '57P02', '57P03', // admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now
  '53300', // too_many_connections
]);
const OUTAGE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Client was closed|not queryable|Connection is closed/i;

export function isOutage(err) {
  if (!err) return false;
  const code = String(err.code ?? '');
  return code.startsWith('08') || OUTAGE_CODES.has(code) || OUTAGE_MESSAGES.test(String(err.message ?? ''));
}

export function errorText(err) {
  return String(err?.message || err?.code || err);
}

// ISO 8601 UTC with microseconds, as SQL: JS dates keep milliseconds only, and frames must carry the row's ts.
export const iso = (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
