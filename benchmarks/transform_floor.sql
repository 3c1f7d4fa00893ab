-- What any transform of a 1x run pays at the least, whatever it computes: one parallel read of the
-- run's raw lines as logical records, and writing the facts. Measured on scratch tables (created and
-- dropped here) of a database holding a published run; see docs/performance.md ("The whole
-- pipeline"). Every variant reads from memory (a warming read comes first).
--
-- 1. read: CREATE UNLOGGED TABLE AS SELECT every raw line (parallel): what the transform's chunk
--    jobs read between them (each its page range), without sending it to a client;
-- 2. write: the published facts written again into copies of staging.fact_car_sales (same columns,
--    same CHECK constraints, no keys) by INSERT ... SELECT into a logged table (what the transform
--    does) and into an unlogged one (no WAL), and by binary COPY through the client into a logged
--    one (COPY's bulk path: multi-row inserts, one WAL record per page).
--
-- For instance, in the user's database after:
--   .venv/bin/pipeline sample --rows 558837 --out data/car_prices_1x.csv
--   .venv/bin/pipeline run --source data/car_prices_1x.csv --wait   (with the three workers running)
--   psql -h 127.0.0.1 -U postgres -d carsales -f benchmarks/transform_floor.sql
\set ON_ERROR_STOP on
SET jit = off;
DROP TABLE IF EXISTS public.floor_lines, public.fact_floor_logged, public.fact_floor_unlogged;
CREATE TABLE public.fact_floor_logged (LIKE staging.fact_car_sales INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE UNLOGGED TABLE public.fact_floor_unlogged (LIKE staging.fact_car_sales INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
SELECT (SELECT count(*) FROM raw.car_prices) AS raw_lines, count(*) AS facts,
       pg_size_pretty(pg_relation_size('staging.fact_car_sales')) AS fact_heap
  FROM staging.fact_car_sales;
\timing on
CHECKPOINT;
\echo '--- read: the raw lines as logical records, one parallel pass'
CREATE UNLOGGED TABLE public.floor_lines AS SELECT * FROM raw.car_prices;
CHECKPOINT;
\echo '--- write: INSERT ... SELECT into a logged table (what the transform does)'
INSERT INTO public.fact_floor_logged SELECT * FROM staging.fact_car_sales;
CHECKPOINT;
\echo '--- write: INSERT ... SELECT into an unlogged table (no WAL)'
INSERT INTO public.fact_floor_unlogged SELECT * FROM staging.fact_car_sales;
\echo '--- write: binary COPY out to a client file, then COPY in to a logged table'
\copy public.fact_floor_logged TO '/tmp/carsales_transform_floor.bin' (FORMAT binary)
TRUNCATE public.fact_floor_logged;
CHECKPOINT;
\copy public.fact_floor_logged FROM '/tmp/carsales_transform_floor.bin' (FORMAT binary)
\timing off
\! rm -f /tmp/carsales_transform_floor.bin
DROP TABLE public.floor_lines, public.fact_floor_logged, public.fact_floor_unlogged;
