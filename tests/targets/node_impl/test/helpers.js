// Helpers of the end-to-end self-test: the service's roles as child processes, an SSE reader, SQL.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const FAST = { HEARTBEAT_INTERVAL_MS: '500', QUEUE_POLL_INTERVAL_MS: '100', BACKLOG_GAUGE_INTERVAL_MS: '200', JOB_LEASE_DURATION_MS: '3000' };

export async function waitFor(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// One role as a child process; its stdout lines are kept in `lines`. `url` is set for the api.
export async function startRole(role, env = {}) {
  const child = spawn(process.execPath, [MAIN, role], {
    env: { ...process.env, ...FAST, INSTANCE_NAME: role, PORT: role === 'api' ? '0' : '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = { child, lines: [], stderr: '', exit: new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig))) };
  let partial = '';
  child.stdout.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    proc.lines.push(...parts);
  });
  child.stderr.on('data', (chunk) => {
    proc.stderr += chunk;
  });
  if (role === 'migrate') return proc;
  if (role === 'api') {
    const line = await waitFor(() => proc.lines.find((l) => l.includes('msg=api.listening')) || child.exitCode !== null, 10000, 'the api to listen');
    if (line === true) throw new Error(`api exited: ${proc.stderr}`);
    proc.url = `http://127.0.0.1:${/ port=(\d+)/.exec(line)[1]}`;
  }
  return proc;
}

export async function stop(proc, signal = 'SIGTERM') {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  return proc.exit;
}

// Reads an SSE response: frames ({id, event, data}), heartbeat comments, the status and the end.
export async function openStream(url, headers = {}) {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const stream = { status: res.status, frames: [], heartbeats: 0, retry: null, close: () => abort.abort() };
  stream.ended = (async () => {
    if (!res.body) return 'no-body';
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          readBlock(stream, buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
      return 'server-closed';
    } catch {
      return 'client-closed';
    }
  })();
  return stream;
}

function readBlock(stream, block) {
  const frame = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) stream.heartbeats += 1;
    const [, name, value] = /^([a-z]+): ?(.*)$/.exec(line) ?? [];
    if (name === 'retry') stream.retry = Number(value);
    else if (name) frame[name] = value;
  }
  if (frame.data !== undefined) stream.frames.push({ ...frame, data: JSON.parse(frame.data) });
}

export const seqsOf = (stream) => stream.frames.map((f) => Number(f.id));
export const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export async function postJson(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

export async function sql(text, params = []) {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}
