-- staging.dim_color: the colours (both roles: exterior and interior) of the run's trusted lines, as its chunk jobs found them
-- (work.dimension_rows: a value seen only on quarantined lines has no row there). Idempotent: a
-- row published before, or found by several chunks, is one row.

-- name: insert
INSERT INTO staging.dim_color (color_id, color_name)
SELECT DISTINCT id, name FROM work.dimension_rows WHERE transform_run = :run_id AND dimension = 'dim_color'
ON CONFLICT DO NOTHING

-- name: rows
-- Every published row, id and natural key: the natural-keys check (checks.py) reads them.
SELECT color_id AS id, color_name AS name FROM staging.dim_color
