// Process-wide counters and gauges in the Prometheus text format, served on /metrics.
//
// `outbox_backlog_avg` is the runbook's AVG(runs.lastSeq - run_outbox.nextSeq) over started runs,
// sampled from the database (backlog.js); the rest count what this process did.

const HELP = {
  events_inserted_total: ['counter', 'Events appended to run_events'],
  events_published_total: ['counter', 'Events published to the bus (re-publishes included)'],
  outbox_gaps_total: ['counter', 'Missing seqs found by the outbox (alert)'],
  outbox_cycle_errors_total: ['counter', 'Outbox cycles that failed'],
  sse_streams_open: ['gauge', 'Open SSE streams'],
  sse_heartbeats_total: ['counter', 'Heartbeat comments sent'],
  jobs_finished_total: ['counter', 'Queue jobs finished'],
  outbox_backlog_avg: ['gauge', "The runbook's average outbox backlog over started runs"],
};
const KNOWN_TYPES = new Set(['RunStarted', 'RunStep', 'RunFinished']);

const values = new Map(); // name -> Map(labelText -> number)

function key(labels) {
  const pairs = Object.entries(labels);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${v}"`).join(',')}}` : '';
}

function add(name, labels, delta) {
  const series = values.get(name) ?? new Map();
  values.set(name, series);
  const k = key(labels);
  series.set(k, (series.get(k) ?? 0) + delta);
}

export const metrics = {
  inc(name, labels = {}, delta = 1) {
    add(name, labels, delta);
  },
  set(name, value, labels = {}) {
    const series = values.get(name) ?? new Map();
    values.set(name, series);
    series.set(key(labels), value);
  },
  // Event types are chosen by clients on the append path: bound the label's cardinality.
  typeLabel: (type) => (KNOWN_TYPES.has(type) ? type : 'other'),
  render() {
    const lines = [];
    for (const [name, [kind, help]] of Object.entries(HELP)) {
      const series = values.get(name);
      if (!series) continue;
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
    }
    return lines.join('\n') + '\n';
  },
};
