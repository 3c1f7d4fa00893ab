-- Reconciliation of each mart with the facts, inside the publishing transaction, over the whole
-- tables (not only what the run recomputed: a row left stale anywhere fails it). Each query gives
-- what the facts hold and what the mart holds; services/transform/marts.py makes them checks.

-- name: daily_sales
SELECT count(*) AS fact_groups, coalesce(sum(sales), 0) AS fact_sales,
       (SELECT count(*) FROM marts.daily_sales) AS mart_rows,
       (SELECT coalesce(sum(sales), 0) FROM marts.daily_sales) AS mart_sales
  FROM (SELECT count(*) AS sales FROM staging.fact_car_sales WHERE sale_date IS NOT NULL
         GROUP BY CAST(sale_date AT TIME ZONE 'UTC' AS date), state_id, make_id) g

-- name: price_guide
SELECT count(*) AS fact_groups, coalesce(sum(sales), 0) AS fact_sales,
       (SELECT count(*) FROM marts.price_guide) AS mart_rows,
       (SELECT coalesce(sum(sales), 0) FROM marts.price_guide) AS mart_sales
  FROM (SELECT count(*) AS sales FROM staging.fact_car_sales
         WHERE make_id IS NOT NULL AND model IS NOT NULL
         GROUP BY make_id, model, model_year HAVING count(*) >= :min_sales) g

-- name: seller_scorecard
SELECT count(*) AS fact_groups, coalesce(sum(sales), 0) AS fact_sales,
       (SELECT count(*) FROM marts.seller_scorecard) AS mart_rows,
       (SELECT coalesce(sum(sales), 0) FROM marts.seller_scorecard) AS mart_sales
  FROM (SELECT count(*) AS sales FROM staging.fact_car_sales GROUP BY seller_id) g
