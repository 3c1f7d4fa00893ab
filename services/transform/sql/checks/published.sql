-- Measures taken after the run's rows were written, inside the publishing transaction: if a
-- blocking check fails here, the transaction is rolled back and readers never see the run.
-- (The dimension keys' checks are composed from the catalog's foreign keys in job.py; the natural
-- keys are checked with the rules themselves, in checks.py, on each model's `rows`.)

-- name: raw_lines
-- The run's lines as they are in raw (counted there, not in the work tables), and how many of them
-- had 17 fields (a split trim, its 17th field in _extra_field): one raw row and one line each.
SELECT count(*) AS lines, count(_extra_field) AS split_trim_lines
  FROM raw.car_prices WHERE _batch_id = ANY (:batch_ids)

-- name: quarantined_lines
-- Lines of the run's files now in the quarantine.
SELECT count(*) FROM staging.quarantined_sales WHERE source_sha256 = ANY (:source_sha256s)
