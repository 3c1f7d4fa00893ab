-- Medallion schemas and the run ledger.
-- raw: files as they arrived; staging: the clean star schema; meta: ledger, lineage, quality.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS meta;

CREATE TABLE meta.pipeline_runs (
    run_id       uuid PRIMARY KEY,
    kind         text        NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'rebuild')),
    status       text        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    sources      jsonb       NOT NULL DEFAULT '[]',
    force        boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    failed_stage text,
    error        text
);
CREATE INDEX pipeline_runs_created_at ON meta.pipeline_runs (created_at DESC);

-- One row per job of a run: one for setup, one per source file for ingest, one for transform.
CREATE TABLE meta.stage_runs (
    run_id        uuid        NOT NULL REFERENCES meta.pipeline_runs ON DELETE CASCADE,
    stage         text        NOT NULL CHECK (stage IN ('setup', 'ingest', 'transform')),
    task          text        NOT NULL DEFAULT '',   -- the source file of an ingest job; '' otherwise
    position      integer     NOT NULL,              -- order of the job within the run
    job_id        text,
    status        text        NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'retrying', 'succeeded', 'failed', 'not_run', 'cancelled')),
    attempt       integer     NOT NULL DEFAULT 0,
    worker_name   text,
    started_at    timestamptz,
    finished_at   timestamptz,
    rows_in       bigint,
    rows_out      bigint,
    rows_rejected bigint,
    error         text,
    details       jsonb       NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, stage, task)
);
CREATE INDEX stage_runs_open ON meta.stage_runs (status) WHERE status IN ('pending', 'running', 'retrying');
