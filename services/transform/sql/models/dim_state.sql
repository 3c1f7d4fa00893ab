-- staging.dim_state: the known states (meta.ref_state) of the run's trusted lines (see dim_make.sql).
INSERT INTO staging.dim_state (state_id, state_code, state_name)
SELECT m.state_id, m.state_code, m.state_name
  FROM (SELECT state_id, state_code, state_name, sum(lines) AS lines
          FROM meta.transform_map_state WHERE state_id IS NOT NULL GROUP BY 1, 2, 3) m
  LEFT JOIN (SELECT state_id, count(*) AS lines FROM meta.transform_quarantine GROUP BY 1) q USING (state_id)
 WHERE m.lines > coalesce(q.lines, 0)
ON CONFLICT DO NOTHING
