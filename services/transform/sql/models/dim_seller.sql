-- staging.dim_seller: the canonical sellers of the run's trusted lines (see dim_make.sql).
INSERT INTO staging.dim_seller (seller_id, seller_name)
SELECT m.seller_id, m.seller_name
  FROM (SELECT seller_id, seller_name, sum(lines) AS lines
          FROM meta.transform_map_seller WHERE seller_id IS NOT NULL GROUP BY 1, 2) m
  LEFT JOIN (SELECT seller_id, count(*) AS lines FROM meta.transform_quarantine GROUP BY 1) q USING (seller_id)
 WHERE m.lines > coalesce(q.lines, 0)
ON CONFLICT DO NOTHING
