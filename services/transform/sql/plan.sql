-- The plan job's statements: which batches a run transforms, and its chunks. Loaded by job.py.

-- name: run_batches
-- The run's batches, one per file content (a file listed twice in one run is read once).
SELECT f.batch_id, f.sha256, f.rows_loaded
  FROM meta.ingested_files f
 WHERE f.batch_id IN (SELECT min(batch_id) FROM meta.ingested_files WHERE run_id = :run_id GROUP BY sha256)
 ORDER BY f.batch_id

-- name: all_batches
-- Every file content ever ingested, by its first batch: a forced re-load adds no new lines.
SELECT f.batch_id, f.sha256, f.rows_loaded
  FROM meta.ingested_files f
 WHERE f.batch_id IN (SELECT min(batch_id) FROM meta.ingested_files GROUP BY sha256)
 ORDER BY f.batch_id

-- name: batch_pages
-- The size in pages of the raw partition holding the batch: its chunks are page ranges of it
-- (rows loaded before migration 0005 share one partition; a chunk also filters on the batch).
SELECT pg_relation_size(r.tableoid) / current_setting('block_size')::bigint
  FROM raw.car_prices r WHERE r._batch_id = :batch_id LIMIT 1

-- name: insert_chunk
INSERT INTO work.chunks (transform_run, chunk, batch_id, first_page, end_page)
VALUES (:run_id, :chunk, :batch_id, :first_page, :end_page)
