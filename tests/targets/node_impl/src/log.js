// logfmt lines on stdout, one write per line so `tail -f` and grep see each line as it happens.
//
// Key order is fixed: ts, level, logger, msg, then run_id when the line is about a run, then svc and
// the line's own fields. With run_id fifth, `cut -d' ' -f5` over `stream-run` lines picks the run.
// A null or undefined field is written as an empty value (`from_seq=`) so every line of a message
// has the same keys.

let service = 'node-impl';

export function setService(name) {
  service = name;
}

function quote(value) {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (text !== '' && !/[\s="\\]/.test(text)) return text;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

export function formatLine(time, level, component, msg, fields) {
  const { run_id: runId, ...rest } = fields;
  const parts = [`ts=${time.toISOString()}`, `level=${level}`, `logger=${component}`, `msg=${quote(msg)}`];
  if (runId !== undefined) parts.push(`run_id=${quote(runId)}`);
  parts.push(`svc=${quote(service)}`);
  for (const [key, value] of Object.entries(rest)) parts.push(`${key}=${quote(value)}`);
  return parts.join(' ');
}

export function logger(component) {
  const write = (level) => (msg, fields = {}) => {
    try {
      process.stdout.write(formatLine(new Date(), level, component, msg, fields) + '\n');
    } catch {
      // a closed stdout must never take the service down
    }
  };
  return { info: write('info'), warn: write('warn'), error: write('error'), alert: write('alert') };
}
