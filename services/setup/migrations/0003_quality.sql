-- Results of the transform's data-quality checks, one row per check and run.
CREATE TABLE meta.quality_results (
    run_id      uuid        NOT NULL REFERENCES meta.pipeline_runs ON DELETE CASCADE,
    check_name  text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pass', 'warn', 'fail')),
    blocking    boolean     NOT NULL,     -- a failing blocking check stops the publish
    observed    numeric,
    threshold   numeric,
    details     text,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, check_name)
);
