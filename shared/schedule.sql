-- The daily batch's slots (meta.scheduled_runs, migration 0008). Loaded by shared/schedule.py.

-- name: claim_slot
-- The slot's row is its claim: the first transaction to insert it enqueues the run, any other
-- (a second scheduler, a re-delivered cron job) finds it taken and enqueues nothing.
INSERT INTO meta.scheduled_runs (slot, run_id, schedule, landing_dir, files)
VALUES (:slot, :run_id, :schedule, :landing_dir, :files)
ON CONFLICT (slot) DO NOTHING
RETURNING run_id

-- name: recent
-- The last scheduled runs with what they did: files found, loaded (new content) and skipped
-- (content loaded before), and the sales the transform published.
SELECT s.slot, s.run_id, s.schedule, s.files, r.status, r.error, r.finished_at,
       count(st.task) FILTER (WHERE st.stage = 'ingest' AND st.status = 'succeeded'
                                AND coalesce(st.details ->> 'reason', '') <> 'already ingested') AS loaded,
       count(st.task) FILTER (WHERE st.stage = 'ingest'
                                AND st.details ->> 'reason' = 'already ingested') AS skipped,
       sum(st.rows_out) FILTER (WHERE st.stage = 'transform' AND st.task = 'publish') AS sales_published
  FROM meta.scheduled_runs s
  JOIN meta.pipeline_runs r ON r.run_id = s.run_id
  LEFT JOIN meta.stage_runs st ON st.run_id = s.run_id
 GROUP BY s.slot, s.run_id, s.schedule, s.files, r.status, r.error, r.finished_at
 ORDER BY s.slot DESC
 LIMIT :limit
