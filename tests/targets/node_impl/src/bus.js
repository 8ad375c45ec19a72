// The live bus of one API process: ONE LISTEN connection for every stream, fanned out in memory by run.
//
// One connection per process, not per stream, keeps PostgreSQL's connection count flat. Each
// notification is parsed once and shared by every subscriber of its run. After a (re)connect every
// subscriber gets RESYNC: what was published while the connection was down never arrives, so streams
// re-read the database from the last seq they sent.

import { CHANNELS } from './events.js';
import { startListener } from './listener.js';
import { logger } from './log.js';

export const RESYNC = Symbol('resync');
const log = logger('bus');

export function startBus(config) {
  const subscribers = new Map(); // runId -> Set(subscription)

  function deliver(sub, item) {
    if (sub.overflowed) return;
    if (sub.items.length >= config.streamBufferLimit) {
      sub.overflowed = true; // the stream ends; its client reconnects and backfills from the database
    } else {
      sub.items.push(item);
    }
    sub.wake?.();
  }

  function onNotify(channel, payload) {
    let event;
    try {
      event = JSON.parse(payload);
    } catch (err) {
      log.warn('bus.bad_payload', { error: err.message, payload: payload.slice(0, 200) });
      return;
    }
    for (const sub of subscribers.get(event.run) ?? []) deliver(sub, event);
  }

  function onConnect() {
    for (const subs of subscribers.values()) for (const sub of subs) deliver(sub, RESYNC);
  }

  const listener = startListener(config, { channels: [CHANNELS.live], onNotify, onConnect, component: 'bus' });

  return {
    get connected() {
      return listener.connected;
    },
    // A subscription is a queue of bus items ({run, seq, type, data?} or RESYNC) with `wake` called on
    // each delivery; `close()` unsubscribes.
    subscribe(runId) {
      const sub = { runId, items: [], overflowed: false, wake: null };
      const subs = subscribers.get(runId) ?? new Set();
      subscribers.set(runId, subs);
      subs.add(sub);
      sub.close = () => {
        subs.delete(sub);
        if (!subs.size && subscribers.get(runId) === subs) subscribers.delete(runId);
      };
      return sub;
    },
    stop: () => listener.stop(),
  };
}
