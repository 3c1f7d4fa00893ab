-- staging.quarantined_sales: the run's untrusted lines with their raw values as loaded, their
-- lineage and every reason (work.quarantine, written by the chunk jobs). A line is never both a
-- sale and quarantined: a line already published as a sale is not quarantined, and a quarantined
-- line that is now trusted (after a rule change) leaves the quarantine (see release below).

-- name: release
-- pg_temp.run_sales: the run's sales tables (services/transform/work.py).
DELETE FROM staging.quarantined_sales q
 USING pg_temp.run_sales s
 WHERE q.source_sha256 = ANY (:source_sha256s)
   AND q.source_sha256 = s.source_sha256 AND q.line_number = s.line_number

-- name: insert
INSERT INTO staging.quarantined_sales (
    source_sha256, line_number, run_id, batch_id, source_file, year, make, model, "trim", body,
    transmission, vin, state, condition, odometer, color, interior, seller, mmr, sellingprice, saledate,
    extra_field, repaired, repair, reasons)
SELECT q.source_sha256, q.line_number, q.run_id, q.batch_id, q.source_file, q.year, q.make, q.model,
       q."trim", q.body, q.transmission, q.vin, q.state, q.condition, q.odometer, q.color, q.interior,
       q.seller, q.mmr, q.sellingprice, q.saledate, q.extra_field, q.repaired, q.repair, q.reasons
  FROM work.quarantine q
 WHERE q.transform_run = :run_id
   AND NOT EXISTS (SELECT 1 FROM staging.fact_car_sales f WHERE f.sale_id = q.sale_id)
ON CONFLICT (source_sha256, line_number) DO NOTHING
