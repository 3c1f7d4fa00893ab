-- staging.dim_seller: the canonical sellers of the run's trusted lines, as its chunk jobs found them
-- (work.dimension_rows: a value seen only on quarantined lines has no row there). Idempotent: a
-- row published before, or found by several chunks, is one row.

-- name: insert
INSERT INTO staging.dim_seller (seller_id, seller_name)
SELECT DISTINCT id, name FROM work.dimension_rows WHERE transform_run = :run_id AND dimension = 'dim_seller'
ON CONFLICT DO NOTHING

-- name: rows
-- Every published row, id and natural key: the natural-keys check (checks.py) reads them.
SELECT seller_id AS id, seller_name AS name FROM staging.dim_seller
