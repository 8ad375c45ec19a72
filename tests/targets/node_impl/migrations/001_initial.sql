-- The runbook's tables, with unquoted identifiers so its SQL (`SELECT id, state, startedAt ... FROM
-- runs`) runs verbatim. Each statement is IF NOT EXISTS: a database another implementation of the same
-- schema migrated already is accepted as it is.

CREATE TABLE IF NOT EXISTS runs (
  id          text PRIMARY KEY,
  state       text NOT NULL DEFAULT 'queued'
              CHECK (state IN ('queued', 'started', 'succeeded', 'failed', 'cancelled')),
  createdAt   timestamptz NOT NULL DEFAULT now(),
  startedAt   timestamptz,
  finishedAt  timestamptz,
  lastSeq     bigint NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS run_events (
  id          bigserial PRIMARY KEY,
  runId       text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq         bigint NOT NULL CHECK (seq >= 1),
  type        text NOT NULL,
  payload     jsonb NOT NULL DEFAULT '{}',
  -- the row's own insert time, not the transaction's start: publish lag is measured from here
  ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
  publishedAt timestamptz
);
-- Runbook "Schema Health Checks": (runId, seq) unique, (runId, publishedAt) for the backfill.
CREATE UNIQUE INDEX IF NOT EXISTS node_run_events_seq_uq ON run_events (runId, seq);
CREATE INDEX IF NOT EXISTS node_run_events_published_ix ON run_events (runId, publishedAt);

CREATE TABLE IF NOT EXISTS run_outbox (
  runId     text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  nextSeq   bigint NOT NULL DEFAULT 1,
  updatedAt timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS run_jobs (
  id          bigserial PRIMARY KEY,
  runId       text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  script      jsonb NOT NULL DEFAULT '{}',
  state       text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
  attempts    int NOT NULL DEFAULT 0,
  lockedBy    text,
  lockedUntil timestamptz,
  createdAt   timestamptz NOT NULL DEFAULT now(),
  updatedAt   timestamptz NOT NULL DEFAULT now()
);
-- The claim scans unfinished jobs only.
CREATE INDEX IF NOT EXISTS node_run_jobs_open_ix ON run_jobs (createdAt) WHERE state <> 'done';
CREATE INDEX IF NOT EXISTS node_run_jobs_run_ix ON run_jobs (runId);
