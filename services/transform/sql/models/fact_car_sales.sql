-- staging.fact_car_sales: the run's trusted lines, as its chunk jobs typed and keyed them
-- (work.sales holds the fact table's columns). A sale already published (the same line of the same
-- file content, loaded again with --force or transformed again) is left as it is. Only the lines of
-- a file that already has sales (:published_sha256s) are looked up in the table: a plain insert of
-- a new file is about twice as fast as ON CONFLICT DO NOTHING, which probes the index for every row.
INSERT INTO staging.fact_car_sales (
    sale_id, make_id, model, "trim", body, transmission_id, vin, state_id, condition, odometer,
    exterior_color_id, interior_color_id, mmr, selling_price, sale_date, seller_id, model_year, repaired,
    repair, run_id, source_sha256, line_number)
SELECT s.sale_id, s.make_id, s.model, s."trim", s.body, s.transmission_id, s.vin, s.state_id, s.condition,
       s.odometer, s.exterior_color_id, s.interior_color_id, s.mmr, s.selling_price, s.sale_date, s.seller_id,
       s.model_year, s.repaired, s.repair, s.run_id, s.source_sha256, s.line_number
  FROM work.sales s
 WHERE s.transform_run = :run_id
   AND (s.source_sha256 <> ALL (CAST(:published_sha256s AS text[]))
        OR NOT EXISTS (SELECT 1 FROM staging.fact_car_sales f WHERE f.sale_id = s.sale_id))
