-- marts.daily_sales: one row per sale day (UTC) x state x make, over the sales with a sale date.
-- Recomputed where :full or for the (day, state, make) cells in pg_temp.marts_scope (see
-- marts_refresh.sql). A priced sale has a price and MMR of at least :suspicious_price, so a
-- placeholder cannot skew the ratios. Aggregated on the ids, named afterwards (fewer rows to join).

-- name: delete_all
DELETE FROM marts.daily_sales

-- name: delete
DELETE FROM marts.daily_sales d
 USING (SELECT DISTINCT sale_day, state_id, make_key FROM pg_temp.marts_scope) sc
 WHERE d.sale_day = sc.sale_day AND d.state_id = sc.state_id
   AND coalesce(d.make_id, CAST(:no_make AS uuid)) = sc.make_key

-- name: insert
INSERT INTO marts.daily_sales (
    sale_day, state_id, state_code, make_id, make_name, sales, total_price, avg_price, priced_sales,
    avg_price_to_mmr, share_above_mmr)
SELECT d.sale_day, d.state_id, st.state_code, d.make_id, mk.make_name, d.sales, d.total_price,
       round(d.total_price / d.sales, 2), d.priced_sales, round(CAST(d.price_to_mmr AS numeric), 4),
       round(d.above_mmr / nullif(d.priced_sales, 0)::numeric, 4)
  FROM (SELECT s.sale_day, s.state_id, s.make_id, count(*) AS sales, sum(s.selling_price) AS total_price,
               count(*) FILTER (WHERE s.priced) AS priced_sales,
               avg(CAST(s.selling_price AS float8) / CAST(s.mmr AS float8)) FILTER (WHERE s.priced)
                   AS price_to_mmr,
               count(*) FILTER (WHERE s.priced AND s.selling_price > s.mmr) AS above_mmr
          FROM (SELECT CAST(f.sale_date AT TIME ZONE 'UTC' AS date) AS sale_day, f.state_id, f.make_id,
                       f.selling_price, f.mmr,
                       f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price AS priced
                  FROM staging.fact_car_sales f
                 WHERE f.sale_date IS NOT NULL) s
          LEFT JOIN (SELECT DISTINCT sale_day, state_id, make_key FROM pg_temp.marts_scope) sc
                 ON sc.sale_day = s.sale_day AND sc.state_id = s.state_id
                AND sc.make_key = coalesce(s.make_id, CAST(:no_make AS uuid))
         WHERE :full OR sc.sale_day IS NOT NULL
         GROUP BY s.sale_day, s.state_id, s.make_id) d
  JOIN staging.dim_state st ON st.state_id = d.state_id
  LEFT JOIN staging.dim_make mk ON mk.make_id = d.make_id
