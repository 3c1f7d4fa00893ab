-- staging.dim_transmission: the canonical transmissions of the run's trusted lines (see dim_make.sql).
INSERT INTO staging.dim_transmission (transmission_id, transmission_type)
SELECT m.transmission_id, m.transmission_type
  FROM (SELECT transmission_id, transmission_type, sum(lines) AS lines
          FROM meta.transform_map_vehicle WHERE transmission_id IS NOT NULL GROUP BY 1, 2) m
  LEFT JOIN (SELECT transmission_id, count(*) AS lines FROM meta.transform_quarantine GROUP BY 1) q
       USING (transmission_id)
 WHERE m.lines > coalesce(q.lines, 0)
ON CONFLICT DO NOTHING
