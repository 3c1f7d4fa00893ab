-- What the web UI reads. Loaded by services/ui/data.py; every value arrives as a parameter.
--
-- A run's counts come from its ledger rows (meta.stage_runs), whatever jobs its stages had:
-- the ingest jobs add up the lines read, loaded into raw and rejected; the run's LAST transform
-- job (the publish, which depends on all chunks) reports the sales published and the lines
-- quarantined.

-- name: health
SELECT 1 FROM meta.pipeline_runs LIMIT 1

-- name: runs
SELECT r.run_id, r.kind, r.status, r.created_at, r.started_at, r.finished_at, r.failed_stage, r.error,
       jsonb_array_length(r.sources) AS files,
       i.lines, i.raw_rows, i.rejected, p.rows_out AS facts, p.rows_rejected AS quarantined,
       extract(epoch FROM coalesce(r.finished_at, clock_timestamp()) - coalesce(r.started_at, r.created_at))
           AS seconds
  FROM meta.pipeline_runs r
  LEFT JOIN LATERAL (SELECT sum(s.rows_in) AS lines, sum(s.rows_out) AS raw_rows, sum(s.rows_rejected) AS rejected
                       FROM meta.stage_runs s
                      WHERE s.run_id = r.run_id AND s.stage = 'ingest') i ON true
  LEFT JOIN LATERAL (SELECT s.rows_out, s.rows_rejected
                       FROM meta.stage_runs s
                      WHERE s.run_id = r.run_id AND s.stage = 'transform'
                      ORDER BY s.position DESC, s.task DESC LIMIT 1) p ON true
 WHERE (CAST(:status AS text) IS NULL OR r.status = CAST(:status AS text))
   AND (CAST(:run_id AS uuid) IS NULL OR r.run_id = CAST(:run_id AS uuid))
 ORDER BY r.created_at DESC
 LIMIT :limit

-- name: status_counts
SELECT status, count(*) AS runs FROM meta.pipeline_runs GROUP BY status

-- name: jobs
-- Every ledger row of the run, whatever its stage and task: new kinds of job show up by themselves.
SELECT stage, task, position, job_id, status, attempt, worker_name, rows_in, rows_out, rows_rejected,
       started_at, finished_at, error, details,
       extract(epoch FROM coalesce(finished_at, CASE WHEN status = 'running' THEN clock_timestamp() END)
                          - started_at) AS seconds
  FROM meta.stage_runs
 WHERE run_id = :run_id
 ORDER BY position, started_at NULLS LAST, task

-- name: quality
SELECT check_name, status, blocking, observed, threshold, details
  FROM meta.quality_results
 WHERE run_id = :run_id
 ORDER BY CASE status WHEN 'fail' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END, check_name

-- name: files
SELECT batch_id, source_file, sha256, size_bytes, records, rows_loaded, rows_rejected, forced, seconds
  FROM meta.ingested_files
 WHERE run_id = :run_id
 ORDER BY batch_id

-- name: reject_reasons
-- The reason's text before its first colon is its kind; the rest names the line's own detail.
SELECT split_part(reason, ':', 1) AS reason, count(*) AS lines
  FROM raw.rejected_lines
 WHERE run_id = :run_id
 GROUP BY 1
 ORDER BY 2 DESC, 1

-- name: quarantine_reasons
SELECT reason, count(*) AS lines
  FROM staging.quarantined_sales q, unnest(q.reasons) AS reason
 WHERE q.run_id = :run_id
 GROUP BY 1
 ORDER BY 2 DESC, 1

-- name: reject_sample
SELECT source_file, line_number, line_count, raw_line, reason
  FROM raw.rejected_lines
 WHERE run_id = :run_id AND split_part(reason, ':', 1) = :reason
 ORDER BY batch_id, line_number
 LIMIT :limit

-- name: quarantine_sample
SELECT source_file, line_number, reasons, repaired, year, make, model, "trim", body, transmission, vin,
       state, condition, odometer, color, interior, seller, mmr, sellingprice, saledate
  FROM staging.quarantined_sales
 WHERE run_id = :run_id AND CAST(:reason AS text) = ANY (reasons)
 ORDER BY batch_id, line_number
 LIMIT :limit

-- name: sales_per_day
SELECT CAST(sale_date AT TIME ZONE 'UTC' AS date) AS day, count(*) AS sales
  FROM staging.fact_car_sales
 WHERE sale_date IS NOT NULL
 GROUP BY 1
 ORDER BY 1

-- name: price_distribution
-- Buckets of `width` dollars; the bucket numbered `last` holds every price above the others.
SELECT CAST(least(floor(selling_price / :width), :last) AS integer) AS bucket, count(*) AS sales
  FROM staging.fact_car_sales
 GROUP BY 1
 ORDER BY 1

-- name: price_to_mmr_by_make
-- The makes with the most sales: what they sold for against the Manheim Market Report estimate.
SELECT m.make_name, count(*) AS sales, avg(f.selling_price / f.mmr) AS ratio
  FROM staging.fact_car_sales f
  JOIN staging.dim_make m ON m.make_id = f.make_id
 WHERE f.mmr > 0
 GROUP BY m.make_name
 ORDER BY count(*) DESC, m.make_name
 LIMIT :limit

-- name: published_totals
SELECT (SELECT count(*) FROM staging.fact_car_sales) AS facts,
       (SELECT count(*) FROM staging.quarantined_sales) AS quarantined
