-- Reconciliation of each mart with the facts, inside the publishing transaction, over the whole
-- tables (not only what the run recomputed: a row left stale anywhere fails it): per mart, the
-- groups and sales the facts hold and the rows and sales the mart holds. The facts are grouped
-- three ways in one pass (GROUPING SETS); services/transform/marts.py makes each mart a check.

-- name: reconcile
WITH fact_groups AS (
    SELECT CASE WHEN GROUPING(sale_day) = 0 THEN 'daily_sales'
                WHEN GROUPING(seller_id) = 0 THEN 'seller_scorecard' ELSE 'price_guide' END AS mart,
           sale_day, make_id, model, count(*) AS sales
      FROM (SELECT CAST(sale_date AT TIME ZONE 'UTC' AS date) AS sale_day, state_id, make_id, model,
                   model_year, seller_id
              FROM staging.fact_car_sales) f
     GROUP BY GROUPING SETS ((sale_day, state_id, make_id), (make_id, model, model_year), (seller_id))
), facts AS (
    -- what each mart covers: dated sales; vehicles of known make and model with enough sales
    SELECT mart, count(*) AS groups, sum(sales) AS sales
      FROM fact_groups
     WHERE CASE mart WHEN 'daily_sales' THEN sale_day IS NOT NULL
                     WHEN 'price_guide' THEN make_id IS NOT NULL AND model IS NOT NULL AND sales >= :min_sales
                     ELSE true END
     GROUP BY mart
), marts AS (
    SELECT 'daily_sales' AS mart, count(*) AS rows, sum(sales) AS sales FROM marts.daily_sales
    UNION ALL
    SELECT 'price_guide', count(*), sum(sales) FROM marts.price_guide
    UNION ALL
    SELECT 'seller_scorecard', count(*), sum(sales) FROM marts.seller_scorecard
)
SELECT m.mart, coalesce(f.groups, 0) AS fact_groups, coalesce(f.sales, 0) AS fact_sales,
       m.rows AS mart_rows, coalesce(m.sales, 0) AS mart_sales
  FROM marts m
  LEFT JOIN facts f ON f.mart = m.mart
