// HTTP plumbing on node:http: JSON answers, bounded bodies, and input parsing that answers 4xx.
//
// Every error body is {"error": "<message>"}. Bad input is 400 (never 422: the contract names 400 for
// malformed input), an oversized body 413, an unknown run 404, a conflict 409.

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_SEQ = 2 ** 53; // the largest integer a JavaScript client holds exactly

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

// The body, counted as it arrives (Content-Length may be absent or lie).
export function readBody(req, limit = MAX_BODY_BYTES) {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new HttpError(413, `request body larger than ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume(); // drain what is still coming; the answer is decided
        reject(new HttpError(413, `request body larger than ${limit} bytes`));
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// The body as JSON; an empty body is `empty` when given, else a 400.
export async function readJson(req, { empty } = {}) {
  const text = (await readBody(req)).toString('utf8');
  if (text.trim() === '') {
    if (empty === undefined) throw new HttpError(400, 'request body is required (JSON)');
    return empty;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

// Run ids are UUIDs; anything else is 400 (not 404). Compared lower-cased.
export function parseRunId(raw) {
  if (!UUID.test(raw)) throw new HttpError(400, `malformed run id ${JSON.stringify(raw.slice(0, 80))}: expected a UUID`);
  return raw.toLowerCase();
}

export function parseSeq(raw, what) {
  const text = raw.trim();
  if (!/^\d{1,20}$/.test(text)) throw new HttpError(400, `${what} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  if (BigInt(text) > BigInt(MAX_SEQ)) throw new HttpError(400, `${what} must be at most 2**53, got ${JSON.stringify(raw)}`);
  return Number(text);
}

// Where a stream starts. Last-Event-ID wins over ?fromSeq (a browser re-sends its original URL on every
// reconnect, while the header carries the last id it received); an empty header counts as absent.
export function resolveCursor(fromSeq, lastEventId) {
  if (lastEventId !== undefined && lastEventId.trim() !== '') {
    return { value: parseSeq(lastEventId, 'Last-Event-ID'), fromSeq, lastEventId };
  }
  if (fromSeq !== null) return { value: parseSeq(fromSeq, 'fromSeq'), fromSeq, lastEventId };
  return { value: 0, fromSeq, lastEventId };
}
