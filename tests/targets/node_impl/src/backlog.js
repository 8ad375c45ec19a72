// Samples the runbook's outbox backlog into the `outbox_backlog_avg` gauge every BACKLOG_GAUGE_INTERVAL_MS,
// on a connection of its own so a sample never waits behind a request or a publishing transaction.
// The API samples it too: a stuck or dead outbox worker cannot report its own backlog.

import { connect, destroy } from './db.js';
import { sleep, withTimeout } from './timing.js';
import { metrics } from './metrics.js';

const AVG_BACKLOG = `
SELECT coalesce(avg(r.lastSeq - o.nextSeq), 0)::float8 AS backlog
FROM run_outbox o JOIN runs r ON r.id = o.runId
WHERE r.state = 'started'`;

export function startBacklogGauge(config, signal) {
  return (async () => {
    let client = null;
    while (!signal.aborted) {
      try {
        if (!client || client.broken) client = await connect(config);
        const { rows } = await withTimeout(client.query(AVG_BACKLOG), 3000, 'backlog sample');
        metrics.set('outbox_backlog_avg', rows[0].backlog);
      } catch {
        destroy(client); // the database is away: keep the last sample, try again next tick
        client = null;
      }
      await sleep(config.backlogGaugeMs, signal);
    }
    if (client) await client.end().catch(() => {});
  })();
}
