-- Statements around the marts models (sql/marts/*.sql): which run this is and what it touched.
-- Loaded by services/transform/marts.py.

-- name: run
-- A rebuild or a forced re-load may have replaced facts (their old days, sellers and vehicles are
-- unknown now): those refresh every mart from scratch. So does the first publish of a database whose
-- marts were never built (every sale has a seller, so facts without a scorecard row mean that).
SELECT r.kind = 'rebuild' OR r.force
       OR NOT EXISTS (SELECT 1 FROM marts.seller_scorecard) AS full_refresh
  FROM meta.pipeline_runs r
 WHERE r.run_id = :run_id

-- name: scope
-- The keys of the run's sales: every sale of the files the run transformed (their lines are the
-- only facts a run adds). The models recompute these keys' rows over all of staging; a full refresh
-- leaves the table empty (it recomputes everything). The models join the facts to its distinct keys
-- (a hash join, linear however many keys a big run touches: an `OR ... IN (SELECT ...)` test
-- became a nested loop once the keys outgrew work_mem) and drop the join when :full is true.
CREATE TEMP TABLE marts_scope ON COMMIT DROP AS
SELECT DISTINCT CAST(f.sale_date AT TIME ZONE 'UTC' AS date) AS sale_day, f.state_id,
       coalesce(f.make_id, CAST(:no_make AS uuid)) AS make_key, f.make_id, f.model, f.model_year,
       f.seller_id
  FROM staging.fact_car_sales f
 WHERE NOT :full
   AND f.source_sha256 IN (SELECT sha256 FROM meta.ingested_files WHERE run_id = :run_id)

-- name: scope_size
SELECT count(DISTINCT (sale_day, state_id, make_key)) FILTER (WHERE sale_day IS NOT NULL) AS days,
       count(DISTINCT seller_id) AS sellers,
       count(DISTINCT (make_id, model, model_year)) FILTER (WHERE make_id IS NOT NULL AND model IS NOT NULL)
           AS vehicles
  FROM pg_temp.marts_scope

-- name: drop_scope
DROP TABLE pg_temp.marts_scope
