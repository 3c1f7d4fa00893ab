-- Run ledger statements (meta.pipeline_runs, meta.stage_runs). Loaded by shared/ledger.py.

-- name: insert_run
INSERT INTO meta.pipeline_runs (run_id, kind, status, sources, force)
VALUES (:run_id, :kind, 'queued', CAST(:sources AS jsonb), :force)
ON CONFLICT (run_id) DO NOTHING

-- name: insert_stage
INSERT INTO meta.stage_runs (run_id, stage, task, position, job_id)
VALUES (:run_id, :stage, :task, :position, :job_id)
ON CONFLICT (run_id, stage, task) DO NOTHING

-- name: last_position
SELECT coalesce(max(position), -1) FROM meta.stage_runs WHERE run_id = :run_id

-- name: start_stage
UPDATE meta.stage_runs
   SET status = 'running', attempt = attempt + 1, worker_name = :worker_name, job_id = :job_id,
       started_at = clock_timestamp(), finished_at = NULL, error = NULL, updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task
RETURNING attempt

-- name: start_run
UPDATE meta.pipeline_runs
   SET status = 'running', started_at = coalesce(started_at, now())
 WHERE run_id = :run_id AND status IN ('queued', 'running')
RETURNING status

-- name: run_status
SELECT status FROM meta.pipeline_runs WHERE run_id = :run_id

-- name: stage_state
SELECT status, attempt, job_id FROM meta.stage_runs WHERE run_id = :run_id AND stage = :stage AND task = :task

-- name: lock_run_status
-- Taken by a job's work transaction just before it records success: a cancel either commits first
-- (and the work is rolled back) or waits until the work is committed.
SELECT status FROM meta.pipeline_runs WHERE run_id = :run_id FOR UPDATE

-- name: finish_stage
UPDATE meta.stage_runs
   SET status = 'succeeded', finished_at = clock_timestamp(), rows_in = :rows_in, rows_out = :rows_out,
       rows_rejected = :rows_rejected, details = CAST(:details AS jsonb), error = NULL, updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task

-- name: complete_run_if_done
-- The run succeeds when its last open job succeeds; a failed or cancelled run stays so.
UPDATE meta.pipeline_runs r
   SET status = 'succeeded', finished_at = clock_timestamp()
 WHERE r.run_id = :run_id AND r.status = 'running'
   AND NOT EXISTS (SELECT 1 FROM meta.stage_runs s WHERE s.run_id = r.run_id AND s.status <> 'succeeded')
RETURNING r.status

-- name: retrying_stage
UPDATE meta.stage_runs
   SET status = 'retrying', error = :error, finished_at = clock_timestamp(), updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task AND status IN ('running', 'pending')

-- name: fail_stage
UPDATE meta.stage_runs
   SET status = 'failed', error = :error, finished_at = clock_timestamp(), updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task
   AND status IN ('pending', 'running', 'retrying')
RETURNING position

-- name: mark_later_not_run
-- Jobs that can no longer run because an earlier stage failed are recorded, not left deferred:
-- the later stages' jobs, and the transform's publish, which waits for every one of its chunks
-- (the other jobs of the failed stage are independent of the failed one and go on).
UPDATE meta.stage_runs
   SET status = 'not_run', updated_at = now(),
       error = 'not run: stage ' || :failed_stage || ' failed'
 WHERE run_id = :run_id AND status IN ('pending', 'retrying') AND (stage <> :failed_stage OR task = 'publish')
   AND position > :position
RETURNING job_id

-- name: fail_run
UPDATE meta.pipeline_runs
   SET status = 'failed', finished_at = clock_timestamp(), failed_stage = :stage, error = :error
 WHERE run_id = :run_id AND status IN ('queued', 'running')

-- name: cancel_run
UPDATE meta.pipeline_runs
   SET status = 'cancelled', finished_at = clock_timestamp(), error = 'cancelled by operator'
 WHERE run_id = :run_id AND status IN ('queued', 'running')
RETURNING run_id

-- name: cancel_stage
-- A running job of a cancelled run that rolled its work back.
UPDATE meta.stage_runs
   SET status = 'cancelled', error = :error, finished_at = clock_timestamp(), updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task AND status IN ('pending', 'running', 'retrying')

-- name: cancel_open_stages
UPDATE meta.stage_runs
   SET status = 'cancelled', updated_at = now(), error = 'cancelled by operator'
 WHERE run_id = :run_id AND status IN ('pending', 'retrying')
RETURNING job_id

-- name: requeue_run
UPDATE meta.pipeline_runs
   SET status = 'queued', finished_at = NULL, failed_stage = NULL, error = NULL
 WHERE run_id = :run_id AND status IN ('failed', 'cancelled')
RETURNING run_id

-- name: requeue_stage
UPDATE meta.stage_runs
   SET status = 'pending', job_id = :job_id, error = NULL, finished_at = NULL, updated_at = now()
 WHERE run_id = :run_id AND stage = :stage AND task = :task

-- name: get_run
SELECT run_id, kind, status, sources, force, created_at, started_at, finished_at, failed_stage, error
  FROM meta.pipeline_runs WHERE run_id = :run_id

-- name: get_stages
SELECT stage, task, job_id, status, attempt, worker_name, rows_in, rows_out, rows_rejected,
       started_at, finished_at, error, details
  FROM meta.stage_runs WHERE run_id = :run_id ORDER BY position

-- name: get_quality
SELECT check_name, status, observed, threshold, blocking, details
  FROM meta.quality_results WHERE run_id = :run_id ORDER BY check_name

-- name: list_runs
SELECT r.run_id, r.kind, r.status, r.created_at, r.finished_at, r.failed_stage, r.error,
       jsonb_array_length(r.sources) AS n_sources,
       (SELECT sum(rows_out) FROM meta.stage_runs s WHERE s.run_id = r.run_id AND s.stage = 'ingest') AS rows_ingested,
       (SELECT sum(rows_out) FROM meta.stage_runs s
         WHERE s.run_id = r.run_id AND s.stage = 'transform' AND s.task = 'publish') AS rows_published
  FROM meta.pipeline_runs r
 -- A run with no sources only ran setup (the bootstrap, `pipeline setup`): listed on request only.
 WHERE :with_setup_only OR r.kind <> 'run' OR jsonb_array_length(r.sources) > 0
 ORDER BY r.created_at DESC LIMIT :limit

-- name: open_stages
-- Jobs the ledger still believes in, last touched before the cutoff: the sweeper checks them against RQ.
SELECT s.run_id, s.stage, s.task, s.job_id, s.status, s.worker_name
  FROM meta.stage_runs s JOIN meta.pipeline_runs r USING (run_id)
 WHERE s.status IN ('pending', 'running', 'retrying') AND r.status IN ('queued', 'running')
   AND s.updated_at < now() - make_interval(secs => :older_than)
