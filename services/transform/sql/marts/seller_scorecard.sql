-- marts.seller_scorecard: one row per seller. Recomputed for the sellers in pg_temp.marts_scope
-- (see marts_refresh.sql). A suspicious sale has a price or MMR under :suspicious_price or an
-- odometer at or below :suspicious_odometer_low or at or above :suspicious_odometer_high miles, as
-- in the transform's checks; a repaired sale was a shifted line put back in place.

-- name: delete_all
DELETE FROM marts.seller_scorecard

-- name: delete_scope
DELETE FROM marts.seller_scorecard m
 USING (SELECT DISTINCT seller_id FROM pg_temp.marts_scope) s
 WHERE m.seller_id = s.seller_id

-- name: insert
INSERT INTO marts.seller_scorecard (
    seller_id, seller_name, sales, priced_sales, avg_price_to_mmr, repaired_sales, suspicious_sales,
    flagged_share, first_sale_day, last_sale_day)
SELECT d.seller_id, se.seller_name, count(*), count(*) FILTER (WHERE d.priced),
       round(avg(d.selling_price / d.mmr) FILTER (WHERE d.priced), 4),
       count(*) FILTER (WHERE d.repaired), count(*) FILTER (WHERE d.suspicious),
       round(count(*) FILTER (WHERE d.repaired OR d.suspicious) / count(*)::numeric, 4),
       min(d.sale_day), max(d.sale_day)
  FROM (SELECT f.seller_id, f.selling_price, f.mmr, f.repaired,
               CAST(f.sale_date AT TIME ZONE 'UTC' AS date) AS sale_day,
               f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price AS priced,
               f.selling_price < :suspicious_price OR f.mmr < :suspicious_price
                 OR coalesce(f.odometer <= :suspicious_odometer_low
                             OR f.odometer >= :suspicious_odometer_high, false) AS suspicious
          FROM staging.fact_car_sales f) d
  JOIN staging.dim_seller se ON se.seller_id = d.seller_id
 WHERE EXISTS (SELECT 1 FROM pg_temp.marts_scope s WHERE s.seller_id = d.seller_id)
 GROUP BY d.seller_id, se.seller_name
