// A dedicated LISTEN connection that comes back after PostgreSQL restarts and silent network faults.
//
// A connection behind a faulted proxy can look open while delivering nothing, and TCP keepalives only
// reach the proxy, so it is pinged with `SELECT 1` every PING_EVERY_MS and replaced when a ping fails
// or takes longer than PING_TIMEOUT_MS. `onConnect` runs after every (re)connect once LISTEN is in
// place: notifications sent while the connection was down are lost, and the caller re-reads the
// database there.

import { connect, destroy, errorText } from './db.js';
import { backoff, sleep, withTimeout } from './timing.js';
import { logger } from './log.js';

const PING_EVERY_MS = 2000;
const PING_TIMEOUT_MS = 2000;

export function startListener(config, { channels, onNotify, onConnect, component }) {
  const log = logger(component);
  const stop = new AbortController();
  const pause = backoff();
  let connected = false;

  async function session() {
    const client = await connect(config);
    const lost = new AbortController(); // wakes the ping sleep as soon as the connection dies
    client.once('error', () => lost.abort());
    client.once('end', () => lost.abort());
    const stopped = () => lost.abort();
    stop.signal.addEventListener('abort', stopped, { once: true });
    try {
      client.on('notification', (note) => onNotify(note.channel, note.payload));
      for (const channel of channels) await client.query(`LISTEN ${channel}`); // our own constant names
      connected = true;
      pause.reset();
      onConnect();
      while (!stop.signal.aborted) {
        await sleep(PING_EVERY_MS, lost.signal);
        if (stop.signal.aborted) return;
        if (lost.signal.aborted) throw new Error('LISTEN connection lost');
        await withTimeout(client.query('SELECT 1'), PING_TIMEOUT_MS, 'LISTEN ping');
      }
    } finally {
      connected = false;
      stop.signal.removeEventListener('abort', stopped);
      destroy(client);
    }
  }

  const done = (async () => {
    while (!stop.signal.aborted) {
      try {
        await session();
      } catch (err) {
        if (!stop.signal.aborted) log.warn('listen.error', { channels: channels.join(','), error: errorText(err) });
      }
      if (!stop.signal.aborted) await pause.wait(stop.signal);
    }
  })();

  return {
    get connected() {
      return connected;
    },
    async stop() {
      stop.abort();
      await done;
    },
  };
}
