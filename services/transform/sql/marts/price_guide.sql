-- marts.price_guide: one row per make x model x model year with at least :min_sales sales, over
-- the sales whose make and model are known. Recomputed for the (make, model, model year) groups in
-- pg_temp.marts_scope (see marts_refresh.sql). Percentiles are interpolated (percentile_cont);
-- the price/MMR median is over priced sales, the odometer median over known odometers.

-- name: delete_all
DELETE FROM marts.price_guide

-- name: delete_scope
DELETE FROM marts.price_guide m
 USING (SELECT DISTINCT make_id, model, model_year FROM pg_temp.marts_scope
         WHERE make_id IS NOT NULL AND model IS NOT NULL) s
 WHERE m.make_id = s.make_id AND m.model = s.model AND m.model_year = s.model_year

-- name: insert
INSERT INTO marts.price_guide (
    make_id, make_name, model, model_year, sales, median_price, p10_price, p90_price, median_mmr,
    median_price_to_mmr, median_odometer)
SELECT f.make_id, mk.make_name, f.model, f.model_year, count(*),
       round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.selling_price) AS numeric), 2),
       round(CAST(percentile_cont(0.1) WITHIN GROUP (ORDER BY f.selling_price) AS numeric), 2),
       round(CAST(percentile_cont(0.9) WITHIN GROUP (ORDER BY f.selling_price) AS numeric), 2),
       round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.mmr) AS numeric), 2),
       round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.selling_price / f.mmr)
                  FILTER (WHERE f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price)
                  AS numeric), 4),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.odometer))
  FROM staging.fact_car_sales f
  JOIN staging.dim_make mk ON mk.make_id = f.make_id
 WHERE f.model IS NOT NULL
   AND EXISTS (SELECT 1 FROM pg_temp.marts_scope s
                WHERE s.make_id = f.make_id AND s.model = f.model AND s.model_year = f.model_year)
 GROUP BY f.make_id, mk.make_name, f.model, f.model_year
HAVING count(*) >= :min_sales
