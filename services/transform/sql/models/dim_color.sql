-- staging.dim_color: one colour dimension for both roles (exterior and interior) of the run's
-- trusted lines (see dim_make.sql).
INSERT INTO staging.dim_color (color_id, color_name)
SELECT m.color_id, m.color_name
  FROM (SELECT color_id, color_name, sum(lines) AS lines
          FROM (SELECT exterior_color_id AS color_id, exterior_color AS color_name, lines
                  FROM meta.transform_map_colors
                UNION ALL
                SELECT interior_color_id, interior_color, lines FROM meta.transform_map_colors) c
         WHERE color_id IS NOT NULL GROUP BY 1, 2) m
  LEFT JOIN (SELECT color_id, count(*) AS lines
               FROM (SELECT exterior_color_id AS color_id FROM meta.transform_quarantine
                     UNION ALL
                     SELECT interior_color_id FROM meta.transform_quarantine) c
              GROUP BY 1) q USING (color_id)
 WHERE m.lines > coalesce(q.lines, 0)
ON CONFLICT DO NOTHING
