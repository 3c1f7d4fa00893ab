-- marts.price_guide: one row per make x model x model year with at least :min_sales sales, over
-- the sales whose make and model are known. Recomputed where :full or for the (make, model, model
-- year) groups in pg_temp.marts_scope (see marts_refresh.sql). Percentiles are interpolated
-- (percentile_cont); the price/MMR median is over priced sales, the odometer median over known
-- odometers.

-- name: delete_all
DELETE FROM marts.price_guide

-- name: delete
DELETE FROM marts.price_guide p
 USING (SELECT DISTINCT make_id, model, model_year FROM pg_temp.marts_scope) sc
 WHERE p.make_id = sc.make_id AND p.model = sc.model AND p.model_year = sc.model_year

-- name: insert
INSERT INTO marts.price_guide (
    make_id, make_name, model, model_year, sales, median_price, p10_price, p90_price, median_mmr,
    median_price_to_mmr, median_odometer)
SELECT g.make_id, mk.make_name, g.model, g.model_year, g.sales,
       round(CAST(g.prices[2] AS numeric), 2), round(CAST(g.prices[1] AS numeric), 2),
       round(CAST(g.prices[3] AS numeric), 2), round(CAST(g.median_mmr AS numeric), 2),
       round(CAST(g.median_price_to_mmr AS numeric), 4), round(g.median_odometer)
  FROM (SELECT f.make_id, f.model, f.model_year, count(*) AS sales,
               percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY f.selling_price) AS prices,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY f.mmr) AS median_mmr,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(f.selling_price AS float8) / CAST(f.mmr AS float8))
                   FILTER (WHERE f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price)
                   AS median_price_to_mmr,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY f.odometer) AS median_odometer
          FROM staging.fact_car_sales f
          LEFT JOIN (SELECT DISTINCT make_id, model, model_year FROM pg_temp.marts_scope) sc
                 ON sc.make_id = f.make_id AND sc.model = f.model AND sc.model_year = f.model_year
         WHERE f.make_id IS NOT NULL AND f.model IS NOT NULL AND (:full OR sc.make_id IS NOT NULL)
         GROUP BY f.make_id, f.model, f.model_year
        HAVING count(*) >= :min_sales) g
  JOIN staging.dim_make mk ON mk.make_id = g.make_id
