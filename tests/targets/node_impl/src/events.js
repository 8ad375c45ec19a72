// The domain's vocabulary and the wire shape of an event, shared by the outbox (bus payloads) and the
// stream (SSE frames).

export const TERMINAL_TYPE = 'RunFinished';
export const OUTCOMES = Object.freeze(['succeeded', 'failed', 'cancelled']);
export const isTerminalState = (state) => OUTCOMES.includes(state);

// The frame's data: {"runId","seq","type","ts","payload"}. `payloadJson` is the row's jsonb as text,
// spliced in as it is: parsing and re-serialising in JS would round 1.0 to 1 and lose digits past 2**53.
export function eventData(runId, row) {
  return `{"runId":${JSON.stringify(runId)},"seq":${row.seq},"type":${JSON.stringify(row.type)},` +
    `"ts":${JSON.stringify(row.ts)},"payload":${row.payload}}`;
}

// jsonb's text form never holds a raw newline, so one `data:` line always suffices; id and event are
// stripped of CR/LF so no value can end a field early and forge a frame.
export function sseFrame(seq, type, data) {
  return `id: ${seq}\nevent: ${String(type).replace(/[\r\n]/g, ' ')}\ndata: ${data}\n\n`;
}

export const HEARTBEAT = ': heartbeat\n\n';

// NOTIFY channels: appends wake the outbox, new jobs wake the queue, the outbox publishes on `live`.
export const CHANNELS = Object.freeze({ live: 'node_run_events', outboxWake: 'node_outbox_wake', jobsWake: 'node_jobs_wake' });
