-- The publish job's statements around the models: the chunks' results, constraints, results.
-- Loaded by services/transform/job.py.

-- name: settings
-- For this transaction only. JIT compiling costs more than it saves on these one-pass queries.
SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)

-- name: run_kind
SELECT kind FROM meta.pipeline_runs WHERE run_id = :run_id

-- name: chunk_results
-- What the run's chunk jobs measured (their ledger details), one row per chunk.
SELECT task, rows_in, details FROM meta.stage_runs
 WHERE run_id = :run_id AND stage = 'transform' AND task LIKE 'chunk %'
 ORDER BY position

-- name: run_batches
SELECT DISTINCT c.batch_id, f.sha256 FROM work.chunks c JOIN meta.ingested_files f USING (batch_id)
 WHERE c.transform_run = :run_id ORDER BY 1

-- name: published_files
-- The run's files that already have sales, with how many: a file's sale ids are one range of the
-- primary key (its SHA-256 prefix, then the line number: from :first_ids to :end_ids, one per
-- file), so each count reads one partition.
SELECT u.sha, count(*) AS sales
  FROM unnest(CAST(:source_sha256s AS text[]), CAST(:first_ids AS uuid[]), CAST(:end_ids AS uuid[]))
       AS u (sha, first_id, end_id)
  JOIN staging.fact_car_sales f ON f.sale_id >= u.first_id AND f.sale_id < u.end_id
 GROUP BY u.sha

-- name: fact_foreign_keys
-- The fact table's foreign keys as the migrations defined them (single-column keys): the check of
-- unresolved keys joins each, so a migration is their only definition.
SELECT c.conname AS name, a.attname AS column_name, c.confrelid::regclass::text AS referenced_table,
       fa.attname AS referenced_column
  FROM pg_constraint c
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
  JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
 WHERE c.conrelid = 'staging.fact_car_sales'::regclass AND c.contype = 'f'
 ORDER BY c.conname

-- name: drop_run_sales
-- The view over the run's sales tables (services/transform/work.py), once the models read it.
DROP VIEW pg_temp.run_sales

-- name: forget_chunks
DELETE FROM work.chunks WHERE transform_run = :run_id

-- name: save_quality
INSERT INTO meta.quality_results (run_id, check_name, status, blocking, observed, threshold, details)
VALUES (:run_id, :check_name, :status, :blocking, :observed, :threshold, :details)
ON CONFLICT (run_id, check_name) DO UPDATE
   SET status = excluded.status, blocking = excluded.blocking, observed = excluded.observed,
       threshold = excluded.threshold, details = excluded.details, checked_at = now()
