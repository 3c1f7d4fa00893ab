-- marts.seller_scorecard: one row per seller. Recomputed where :full or for the sellers in
-- pg_temp.marts_scope (see marts_refresh.sql). A suspicious sale has a price or MMR under
-- :suspicious_price or an odometer at or below :suspicious_odometer_low or at or above
-- :suspicious_odometer_high miles, as in the transform's checks; a repaired sale was a shifted line
-- put back in place.

-- name: delete_all
DELETE FROM marts.seller_scorecard

-- name: delete
DELETE FROM marts.seller_scorecard c
 USING (SELECT DISTINCT seller_id FROM pg_temp.marts_scope) sc
 WHERE c.seller_id = sc.seller_id

-- name: insert
INSERT INTO marts.seller_scorecard (
    seller_id, seller_name, sales, priced_sales, avg_price_to_mmr, repaired_sales, suspicious_sales,
    flagged_share, first_sale_day, last_sale_day)
SELECT d.seller_id, se.seller_name, d.sales, d.priced_sales, round(CAST(d.price_to_mmr AS numeric), 4),
       d.repaired_sales, d.suspicious_sales, round(d.flagged / d.sales::numeric, 4),
       CAST(d.first_sale AT TIME ZONE 'UTC' AS date), CAST(d.last_sale AT TIME ZONE 'UTC' AS date)
  FROM (SELECT s.seller_id, count(*) AS sales, count(*) FILTER (WHERE s.priced) AS priced_sales,
               avg(CAST(s.selling_price AS float8) / CAST(s.mmr AS float8)) FILTER (WHERE s.priced)
                   AS price_to_mmr,
               count(*) FILTER (WHERE s.repaired) AS repaired_sales,
               count(*) FILTER (WHERE s.suspicious) AS suspicious_sales,
               count(*) FILTER (WHERE s.repaired OR s.suspicious) AS flagged,
               min(s.sale_date) AS first_sale, max(s.sale_date) AS last_sale
          FROM (SELECT f.seller_id, f.selling_price, f.mmr, f.repaired, f.sale_date,
                       f.selling_price >= :suspicious_price AND f.mmr >= :suspicious_price AS priced,
                       f.selling_price < :suspicious_price OR f.mmr < :suspicious_price
                         OR coalesce(f.odometer <= :suspicious_odometer_low
                                     OR f.odometer >= :suspicious_odometer_high, false) AS suspicious
                  FROM staging.fact_car_sales f) s
          LEFT JOIN (SELECT DISTINCT seller_id FROM pg_temp.marts_scope) sc ON sc.seller_id = s.seller_id
         WHERE :full OR sc.seller_id IS NOT NULL
         GROUP BY s.seller_id) d
  JOIN staging.dim_seller se ON se.seller_id = d.seller_id
