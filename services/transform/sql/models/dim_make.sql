-- staging.dim_make: the canonical makes of the run's trusted lines.
-- A value's trusted lines = its lines (counted in the maps) minus its quarantined lines, so a make
-- seen only on quarantined lines never becomes a dimension row.
INSERT INTO staging.dim_make (make_id, make_name)
SELECT m.make_id, m.make_name
  FROM (SELECT make_id, make_name, sum(lines) AS lines
          FROM meta.transform_map_vehicle WHERE make_id IS NOT NULL GROUP BY 1, 2) m
  LEFT JOIN (SELECT make_id, count(*) AS lines FROM meta.transform_quarantine GROUP BY 1) q USING (make_id)
 WHERE m.lines > coalesce(q.lines, 0)
ON CONFLICT DO NOTHING
