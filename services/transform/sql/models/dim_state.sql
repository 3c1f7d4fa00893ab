-- staging.dim_state: the known states (reference/states.csv) of the run's trusted lines, with
-- their names, as its chunk jobs found them (see dim_make.sql).

-- name: insert
INSERT INTO staging.dim_state (state_id, state_code, state_name)
SELECT DISTINCT id, name, detail FROM work.dimension_rows WHERE transform_run = :run_id AND dimension = 'dim_state'
ON CONFLICT DO NOTHING

-- name: rows
SELECT state_id AS id, state_code AS name FROM staging.dim_state
