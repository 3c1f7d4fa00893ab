-- Statements of the ingest stage. Loaded by services/ingest/job.py.

-- name: previous_load
-- A file is known by its content: the same bytes under another name are the same file.
SELECT batch_id, run_id, source_file, records, rows_loaded, rows_rejected
  FROM meta.ingested_files WHERE sha256 = :sha256 ORDER BY batch_id LIMIT 1

-- name: size_seen
-- Content loaded before has the same size: a size never seen proves the content is new.
SELECT 1 FROM meta.ingested_files WHERE size_bytes = :size_bytes LIMIT 1

-- name: new_batch
-- The hash may still be being computed, and whether the load repeats one (forced) is known once
-- it is: close_batch fills both in, before anyone can see the row.
INSERT INTO meta.ingested_files (run_id, source_file, source_path, sha256, size_bytes, records, rows_loaded,
                                 rows_rejected)
VALUES (:run_id, :source_file, :source_path, '', :size_bytes, 0, 0, 0)
RETURNING batch_id

-- name: set_lineage
-- Transaction-local settings read by the lineage column defaults of raw.rejected_lines.
SELECT set_config('pipeline.batch_id', :batch_id, true),
       set_config('pipeline.run_id', :run_id, true),
       set_config('pipeline.source_file', :source_file, true),
       set_config('pipeline.source_sha256', :sha256, true)

-- name: copy_rejects
COPY raw.rejected_lines (line_number, line_count, raw_line, reason) FROM STDIN WITH (FORMAT csv)

-- name: close_batch
UPDATE meta.ingested_files
   SET sha256 = :sha256, forced = :forced, records = :records, rows_loaded = :loaded,
       rows_rejected = :rejected, seconds = :seconds
 WHERE batch_id = :batch_id

