// Configuration from the environment: one frozen object per process. Every interval is configurable so
// chaos tests run in seconds; defaults are the runbook's values (poll 200 ms, transaction timeout
// 5000 ms, heartbeat 15 s).

export class ConfigError extends Error {}

export const DEFECTS = Object.freeze(['backfill_unpublished', 'no_dedupe', '200_after_terminal']);

// [variable, key, default, min, max]: bounds keep a typo such as OUTBOX_POLL_INTERVAL_MS=0 from spinning a CPU.
const INTEGERS = [
  ['PORT', 'port', null, 0, 65535],
  ['HEARTBEAT_INTERVAL_MS', 'heartbeatMs', 15000, 10, 3_600_000],
  ['SSE_CLIENT_RETRY_MS', 'sseRetryMs', null, 0, 3_600_000],
  ['STREAM_BUFFER_LIMIT', 'streamBufferLimit', 10000, 1, 10_000_000],
  ['OUTBOX_POLL_INTERVAL_MS', 'outboxPollMs', 200, 1, 3_600_000],
  ['OUTBOX_BATCH_LIMIT', 'outboxBatchLimit', 100, 1, 10_000],
  ['OUTBOX_TRANSACTION_TIMEOUT_MS', 'outboxTxTimeoutMs', 5000, 10, 3_600_000],
  ['QUEUE_POLL_INTERVAL_MS', 'queuePollMs', 200, 1, 3_600_000],
  ['QUEUE_MAX_JOBS', 'queueMaxJobs', 8, 1, 1000],
  ['JOB_LEASE_DURATION_MS', 'jobLeaseMs', 30000, 100, 86_400_000],
  ['BACKLOG_GAUGE_INTERVAL_MS', 'backlogGaugeMs', 5000, 100, 3_600_000],
  ['PG_POOL_SIZE', 'pgPoolSize', 10, 1, 1000],
];

function parseInteger(env, name, fallback, min, max) {
  const raw = (env[name] ?? '').trim();
  if (raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name}=${value} is out of range [${min}, ${max}]`);
  return value;
}

function parseDefect(env) {
  const raw = (env.NODE_IMPL_DEFECT ?? '').trim();
  if (raw === '' || raw === 'none') return null;
  if (!DEFECTS.includes(raw)) {
    throw new ConfigError(`NODE_IMPL_DEFECT=${JSON.stringify(raw)} is not one of ${DEFECTS.join('|')}`);
  }
  return raw;
}

export function loadConfig(env, role) {
  const databaseUrl = (env.DATABASE_URL ?? '').trim();
  if (!databaseUrl) {
    throw new ConfigError('DATABASE_URL is required (a postgres URL, e.g. postgresql://user@127.0.0.1:5432/db)');
  }
  const config = {
    role,
    databaseUrl,
    host: (env.HOST ?? '').trim() || '127.0.0.1',
    instance: (env.INSTANCE_NAME ?? '').trim() || role,
    defect: parseDefect(env),
  };
  for (const [name, key, fallback, min, max] of INTEGERS) {
    config[key] = parseInteger(env, name, fallback, min, max);
  }
  if ((role === 'api' || role === 'all') && config.port === null) config.port = 3000;
  return Object.freeze(config);
}
