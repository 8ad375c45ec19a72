-- Schema of the run / outbox layer. Identifiers are unquoted on purpose: PostgreSQL folds them to
-- lower case, so the runbook's SQL (`SELECT id, state, startedAt ... FROM runs`) runs verbatim.
-- Idempotent: every statement is IF NOT EXISTS; migrate.py serialises runs with an advisory lock.

CREATE TABLE IF NOT EXISTS runs (
    id          text        PRIMARY KEY,
    state       text        NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'started', 'succeeded', 'failed', 'cancelled')),
    createdAt   timestamptz NOT NULL DEFAULT now(),
    startedAt   timestamptz,
    finishedAt  timestamptz,
    lastSeq     bigint      NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS run_events (
    id          bigserial   PRIMARY KEY,
    runId       text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         bigint      NOT NULL CHECK (seq > 0),
    type        text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- clock_timestamp(), not now(): lag_ms is measured from here, and now() would be the start of
    -- the appending transaction.
    ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    publishedAt timestamptz
);
-- Required by the runbook: gapless per-run seq (UNIQUE) and the backfill index.
CREATE UNIQUE INDEX IF NOT EXISTS run_events_runid_seq_key ON run_events (runId, seq);
CREATE INDEX IF NOT EXISTS run_events_runid_publishedat_idx ON run_events (runId, publishedAt);

CREATE TABLE IF NOT EXISTS run_outbox (
    runId       text        PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    nextSeq     bigint      NOT NULL DEFAULT 1,
    updatedAt   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS run_jobs (
    id          bigserial   PRIMARY KEY,
    runId       text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    script      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state       text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
    attempts    int         NOT NULL DEFAULT 0,
    lockedBy    text,
    lockedUntil timestamptz,
    createdAt   timestamptz NOT NULL DEFAULT now(),
    updatedAt   timestamptz NOT NULL DEFAULT now()
);
-- Claiming scans only unfinished jobs.
CREATE INDEX IF NOT EXISTS run_jobs_pending_idx ON run_jobs (createdAt) WHERE state <> 'done';
CREATE INDEX IF NOT EXISTS run_jobs_runid_idx ON run_jobs (runId);
