-- staging.quarantined_sales: the run's untrusted lines with their raw values as loaded (found by the
-- row's physical address in raw.car_prices: partition and ctid, stable while this transaction reads
-- the table), their lineage and every reason. A line is never both a sale and quarantined: a line
-- already published as a sale is not quarantined, and a quarantined line that is now trusted (after
-- a rule change) leaves the quarantine (see release below).

-- name: insert
INSERT INTO staging.quarantined_sales (
    source_sha256, line_number, run_id, batch_id, source_file, year, make, model, "trim", body,
    transmission, vin, state, condition, odometer, color, interior, seller, mmr, sellingprice, saledate,
    extra_field, repaired, repair, reasons)
SELECT q.source_sha256, r._line_number, q.run_id, r._batch_id, f.source_file, r.year, r.make, r.model,
       r."trim", r.body, r.transmission, r.vin, r.state, r.condition, r.odometer, r.color, r.interior,
       r.seller, r.mmr, r.sellingprice, r.saledate, r._extra_field, q.repaired, q.repair,
       string_to_array(q.reasons, ' ')
  FROM meta.transform_quarantine q
  JOIN raw.car_prices r ON r.tableoid = q.raw_table AND r.ctid = q.raw_ctid
  JOIN meta.ingested_files f ON f.batch_id = r._batch_id
 WHERE r._batch_id = ANY (ARRAY(SELECT DISTINCT batch_id FROM meta.transform_quarantine))
   AND r.ctid = ANY (ARRAY(SELECT raw_ctid FROM meta.transform_quarantine))
   AND NOT EXISTS (SELECT 1 FROM staging.fact_car_sales f WHERE f.sale_id = q.sale_id)
ON CONFLICT (source_sha256, line_number) DO NOTHING

-- name: release
DELETE FROM staging.quarantined_sales q
 WHERE q.source_sha256 = ANY (:source_sha256s)
   AND EXISTS (SELECT 1 FROM staging.fact_car_sales f
                WHERE f.sale_id = rules.sale_uuid(q.source_sha256, q.line_number))
