-- The work schema's catalog lookups. Loaded by services/transform/work.py (the statements that
-- name a run's tables are composed there).

-- name: run_sales_tables
-- The sales tables of a run still in the work schema (not attached to the fact table).
SELECT tablename FROM pg_tables WHERE schemaname = 'work' AND tablename LIKE :prefix

-- name: fact_readers
-- The roles that may read the fact table (its grants, as setup gave them): a partition attached
-- to it gets the same, so staging stays readable table by table.
SELECT DISTINCT grantee FROM information_schema.role_table_grants
 WHERE table_schema = 'staging' AND table_name = 'fact_car_sales' AND privilege_type = 'SELECT'
   AND grantee <> (SELECT tableowner FROM pg_tables WHERE schemaname = 'staging' AND tablename = 'fact_car_sales')
 ORDER BY 1

-- name: fact_partitions
-- The fact table's partitions (one per file content), by name in staging.
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'staging.fact_car_sales'::regclass ORDER BY 1
