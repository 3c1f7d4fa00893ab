-- staging.fact_car_sales for the run's files that already have a partition (:published_sha256s):
-- the lines of their sales tables (pg_temp.run_sales, written by the run's chunk jobs, see
-- services/transform/work.py) that the partition lacks. A sale already published (the same line of
-- the same file content, loaded again with --force or transformed again) is left as it is. A file
-- without a partition needs no statement: its sales table is attached as its partition
-- (work.attach), the facts written once.
INSERT INTO staging.fact_car_sales (
    sale_id, make_id, model, "trim", body, transmission_id, vin, state_id, condition, odometer,
    exterior_color_id, interior_color_id, mmr, selling_price, sale_date, seller_id, model_year, repaired,
    repair, run_id, source_sha256, line_number)
SELECT s.sale_id, s.make_id, s.model, s."trim", s.body, s.transmission_id, s.vin, s.state_id, s.condition,
       s.odometer, s.exterior_color_id, s.interior_color_id, s.mmr, s.selling_price, s.sale_date, s.seller_id,
       s.model_year, s.repaired, s.repair, s.run_id, s.source_sha256, s.line_number
  FROM pg_temp.run_sales s
 WHERE s.source_sha256 = ANY (CAST(:published_sha256s AS text[]))
   AND NOT EXISTS (SELECT 1 FROM staging.fact_car_sales f WHERE f.sale_id = s.sale_id)
