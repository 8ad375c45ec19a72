// `migrate`: apply migrations/*.sql in name order, each once, recorded in node_impl_migrations.
//
// All of it runs in one transaction under an advisory lock, so replicas migrating at once wait for each
// other instead of racing on the catalog, and a failed file leaves nothing half applied.

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { connect, isOutage } from './db.js';
import { logger } from './log.js';
import { backoff } from './timing.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const LOCK_KEY = 7_312_004_211; // any constant shared by every migrate of this schema
const CONNECT_DEADLINE_MS = 15000;
const log = logger('migrate');

async function connectWithRetry(config) {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  const pause = backoff(100, 1000);
  for (;;) {
    try {
      return await connect(config);
    } catch (err) {
      if (!isOutage(err) || Date.now() > deadline) throw err;
      await pause.wait();
    }
  }
}

export async function migrate(config) {
  const files = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort();
  const client = await connectWithRetry(config);
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS node_impl_migrations (
      version text PRIMARY KEY, appliedAt timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query('SELECT version FROM node_impl_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const pending = files.filter((name) => !applied.has(name));
    for (const name of pending) {
      await client.query(await readFile(MIGRATIONS_DIR + name, 'utf8'));
      await client.query('INSERT INTO node_impl_migrations (version) VALUES ($1)', [name]);
    }
    await client.query('COMMIT');
    log.info('migrate.done', { applied: pending.join(',') || 'none', known: files.length });
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}
