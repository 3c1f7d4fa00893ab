-- Statements around the models: which batches to read, reference data, locks, constraints, results.
-- Loaded by services/transform/job.py.

-- name: settings
-- For this transaction only. JIT compiling costs more than it saves on these one-pass queries; the
-- maps and the GROUPING SETS need memory to be hashed; and hash joins beat the merge joins PostgreSQL
-- otherwise picks for the multi-column vehicle key.
SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true),
       set_config('enable_mergejoin', 'off', true)

-- name: run_batches
-- The run's batches, one per file content (a file listed twice in one run is read once).
SELECT min(batch_id) AS batch_id, sha256 FROM meta.ingested_files WHERE run_id = :run_id
 GROUP BY sha256 ORDER BY 1

-- name: all_batches
-- Every file content ever ingested, by its first batch: a forced re-load adds no new lines.
SELECT min(batch_id) AS batch_id, sha256 FROM meta.ingested_files GROUP BY sha256 ORDER BY 1

-- name: clear_references
DELETE FROM meta.ref_state;
DELETE FROM meta.ref_make_alias;
DELETE FROM meta.ref_body_style

-- name: copy_states
COPY meta.ref_state (state_code, state_name) FROM STDIN WITH (FORMAT csv, HEADER true)

-- name: copy_make_aliases
COPY meta.ref_make_alias (alias, make_name) FROM STDIN WITH (FORMAT csv, HEADER true)

-- name: copy_body_styles
COPY meta.ref_body_style (variant, body) FROM STDIN WITH (FORMAT csv, HEADER true)

-- name: truncate_staging
TRUNCATE staging.fact_car_sales, staging.quarantined_sales, staging.dim_make, staging.dim_transmission,
         staging.dim_state, staging.dim_color, staging.dim_seller

-- name: published_files
-- The run's files that already have sales, with how many: a file's sale ids are one range of the
-- primary key (its SHA-256 prefix, then the line number; 281474976710655 = 2^48 - 1, the last line).
SELECT u.sha, count(*) AS sales
  FROM unnest(CAST(:source_sha256s AS text[])) AS u (sha)
  JOIN staging.fact_car_sales f
    ON f.sale_id BETWEEN rules.sale_uuid(u.sha, 0) AND rules.sale_uuid(u.sha, 281474976710655)
 GROUP BY u.sha

-- name: fact_rows
-- The table's size, estimated (counting it would read it all): enough to choose. The statistics
-- counter follows every commit; reltuples only the last ANALYZE.
SELECT greatest(c.reltuples, s.n_live_tup, 0)::bigint
  FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.oid = 'staging.fact_car_sales'::regclass

-- name: drop_foreign_keys
-- A big publish checks its foreign keys once per constraint, set-based (re-adding a constraint
-- validates it with one join), instead of one trigger call per row and key. Readers never see the
-- table without them: the ALTERs hold an exclusive lock until the transaction commits.
ALTER TABLE staging.fact_car_sales
    DROP CONSTRAINT fact_car_sales_make_fk,
    DROP CONSTRAINT fact_car_sales_transmission_fk,
    DROP CONSTRAINT fact_car_sales_state_fk,
    DROP CONSTRAINT fact_car_sales_exterior_color_fk,
    DROP CONSTRAINT fact_car_sales_interior_color_fk,
    DROP CONSTRAINT fact_car_sales_seller_fk

-- name: add_foreign_keys
ALTER TABLE staging.fact_car_sales
    ADD CONSTRAINT fact_car_sales_make_fk FOREIGN KEY (make_id) REFERENCES staging.dim_make,
    ADD CONSTRAINT fact_car_sales_transmission_fk FOREIGN KEY (transmission_id) REFERENCES staging.dim_transmission,
    ADD CONSTRAINT fact_car_sales_state_fk FOREIGN KEY (state_id) REFERENCES staging.dim_state,
    ADD CONSTRAINT fact_car_sales_exterior_color_fk FOREIGN KEY (exterior_color_id) REFERENCES staging.dim_color,
    ADD CONSTRAINT fact_car_sales_interior_color_fk FOREIGN KEY (interior_color_id) REFERENCES staging.dim_color,
    ADD CONSTRAINT fact_car_sales_seller_fk FOREIGN KEY (seller_id) REFERENCES staging.dim_seller

-- name: drop_primary_key
-- A publish that writes most of the table (the first one, a rebuild) builds the primary key once,
-- sorted, after the insert instead of descending it once per row: 0.78 s + 0.23 s instead of 1.42 s
-- for 558,826 sales, 11.6 s + 3.2 s instead of 19.7 s at 10x. Re-adding it checks uniqueness;
-- readers wait on the ALTER's lock until commit, as for the foreign keys.
ALTER TABLE staging.fact_car_sales DROP CONSTRAINT fact_car_sales_pkey

-- name: add_primary_key
ALTER TABLE staging.fact_car_sales ADD CONSTRAINT fact_car_sales_pkey PRIMARY KEY (sale_id)

-- name: analyze_staging
-- After a big publish, once it is committed: statistics for the queries readers run on staging
-- (0.4 s at 558,826 sales, 0.6 s at 10x). Autovacuum would get there, minutes later.
ANALYZE staging.fact_car_sales, staging.quarantined_sales, staging.dim_make, staging.dim_transmission,
        staging.dim_state, staging.dim_color, staging.dim_seller

-- name: quarantine_reasons
SELECT reason, count(*) AS lines
  FROM meta.transform_quarantine, unnest(string_to_array(reasons, ' ')) AS reason
 GROUP BY reason ORDER BY reason

-- name: drop_work
DROP TABLE meta.transform_values, meta.transform_map_vehicle, meta.transform_map_colors,
           meta.transform_map_state, meta.transform_map_condition, meta.transform_map_seller,
           meta.transform_map_sale_date, meta.transform_map_money, meta.transform_sales,
           meta.transform_quarantine

-- name: save_quality
INSERT INTO meta.quality_results (run_id, check_name, status, blocking, observed, threshold, details)
VALUES (:run_id, :check_name, :status, :blocking, :observed, :threshold, :details)
ON CONFLICT (run_id, check_name) DO UPDATE
   SET status = excluded.status, blocking = excluded.blocking, observed = excluded.observed,
       threshold = excluded.threshold, details = excluded.details, checked_at = now()
