-- marts.daily_sales: one row per sale day (UTC) x state x make, over the sales with a sale date.
-- Recomputed for the (day, state, make) cells in pg_temp.marts_scope (see marts_refresh.sql); a
-- priced sale has a price and MMR of at least :suspicious_price, so a placeholder cannot skew the
-- ratios.

-- name: delete_all
DELETE FROM marts.daily_sales

-- name: delete_scope
DELETE FROM marts.daily_sales m
 USING (SELECT DISTINCT sale_day, state_id, make_key FROM pg_temp.marts_scope WHERE sale_day IS NOT NULL) s
 WHERE m.sale_day = s.sale_day AND m.state_id = s.state_id
   AND coalesce(m.make_id, CAST(:no_make AS uuid)) = s.make_key

-- name: insert
INSERT INTO marts.daily_sales (
    sale_day, state_id, state_code, make_id, make_name, sales, total_price, avg_price, priced_sales,
    avg_price_to_mmr, share_above_mmr)
SELECT d.sale_day, d.state_id, st.state_code, d.make_id, mk.make_name,
       count(*), sum(d.selling_price), round(avg(d.selling_price), 2),
       count(*) FILTER (WHERE d.priced),
       round(avg(d.selling_price / d.mmr) FILTER (WHERE d.priced), 4),
       round(count(*) FILTER (WHERE d.priced AND d.selling_price > d.mmr)
             / nullif(count(*) FILTER (WHERE d.priced), 0)::numeric, 4)
  FROM (SELECT CAST(f.sale_date AT TIME ZONE 'UTC' AS date) AS sale_day, f.state_id, f.make_id,
               f.selling_price, f.mmr,
               f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price AS priced
          FROM staging.fact_car_sales f
         WHERE f.sale_date IS NOT NULL) d
  JOIN staging.dim_state st ON st.state_id = d.state_id
  LEFT JOIN staging.dim_make mk ON mk.make_id = d.make_id
 WHERE EXISTS (SELECT 1 FROM pg_temp.marts_scope s
                WHERE s.sale_day = d.sale_day AND s.state_id = d.state_id
                  AND s.make_key = coalesce(d.make_id, CAST(:no_make AS uuid)))
 GROUP BY d.sale_day, d.state_id, st.state_code, d.make_id, mk.make_name
