-- The transform floor: what any transform of a run pays at the least, whatever it computes. Measured
-- on scratch tables (created and dropped here; nothing else changes) of a database holding a
-- published run.
--
-- 1. read: CREATE UNLOGGED TABLE AS SELECT every raw line (parallel): what the transform's chunk
--    jobs read between them (each its page range), without sending it to a client;
-- 2. write: the published facts written again by INSERT ... SELECT into a logged copy of
--    staging.fact_car_sales (same columns, same CHECK constraints, no keys): the facts made
--    durable, WAL included, and nothing else.
-- The floor is read + write. Every step reads from memory (the warming read comes first) and starts
-- after a CHECKPOINT, so it does not pay for the previous step's dirty pages.
--
-- bench.py (harness.time_transform_floor) runs the named blocks one at a time: prepare, warm, then
-- before_read and read (timed) the bench's number of times, the same with before_write and write,
-- then cleanup. psql runs every block once, in file order (the two lines above the first block are
-- for psql alone); for instance, in the user's database after:
--   .venv/bin/pipeline sample --rows 558837 --out data/car_prices_1x.csv
--   .venv/bin/pipeline run --source data/car_prices_1x.csv --wait   (with the three workers running)
--   psql -X -e -h 127.0.0.1 -U postgres -d carsales -f benchmarks/transform_floor.sql
\set ON_ERROR_STOP on
\timing on

-- name: prepare
SET jit = off;
SET client_min_messages = warning;  -- DROP TABLE IF EXISTS would tell of every table it skips
DROP TABLE IF EXISTS public.floor_lines, public.fact_floor_logged;

-- name: warm
-- The fact table's size whether or not it is partitioned: pg_partition_tree lists nothing for a
-- table that is not, and a partitioned table's own size is 0.
SELECT (SELECT count(*) FROM raw.car_prices) AS raw_lines,
       count(*) AS facts,
       coalesce((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('staging.fact_car_sales')),
                pg_relation_size('staging.fact_car_sales')) AS fact_bytes
  FROM staging.fact_car_sales;

-- name: before_read
DROP TABLE IF EXISTS public.floor_lines;
CHECKPOINT;

-- name: read
CREATE UNLOGGED TABLE public.floor_lines AS SELECT * FROM raw.car_prices;

-- name: before_write
-- The read's table goes first: the write should not share the disk with its pages.
DROP TABLE IF EXISTS public.floor_lines, public.fact_floor_logged;
CREATE TABLE public.fact_floor_logged (LIKE staging.fact_car_sales INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CHECKPOINT;

-- name: write
INSERT INTO public.fact_floor_logged SELECT * FROM staging.fact_car_sales;

-- name: cleanup
DROP TABLE IF EXISTS public.floor_lines, public.fact_floor_logged;
