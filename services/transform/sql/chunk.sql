-- A chunk job's statements: read its raw lines, replace its rows in the work tables. Loaded by job.py
-- (the COPY of its sales names its file's sales table: composed in work.py).

-- name: chunk
SELECT c.batch_id, c.first_page, c.end_page, f.run_id, f.source_file, f.sha256
  FROM work.chunks c JOIN meta.ingested_files f USING (batch_id)
 WHERE c.transform_run = :run_id AND c.chunk = :chunk

-- name: copy_raw_lines
-- The chunk's raw lines, streamed to the worker: a TID range scan of the pages it owns in the
-- batch's partition (one read of each page by one chunk; the batch id prunes raw.car_prices to that
-- partition). COPY takes no parameters: the driver inlines them (job.py).
COPY (SELECT _line_number, year, make, model, "trim", body, transmission, vin, state, condition, odometer,
             color, interior, seller, mmr, sellingprice, saledate, _extra_field
        FROM raw.car_prices
       WHERE _batch_id = :batch_id
         AND ctid >= CAST(:first_tid AS tid) AND ctid < CAST(:end_tid AS tid))
  TO STDOUT WITH (FORMAT csv)

-- name: forget_chunk
-- A retried chunk redoes its own rows only (its sales: work.forget_sales).
DELETE FROM work.quarantine WHERE transform_run = :run_id AND chunk = :chunk;
DELETE FROM work.dimension_rows WHERE transform_run = :run_id AND chunk = :chunk

-- name: copy_quarantine
COPY work.quarantine (transform_run, chunk, sale_id, source_sha256, line_number, run_id, batch_id,
                      source_file, year, make, model, "trim", body, transmission, vin, state, condition,
                      odometer, color, interior, seller, mmr, sellingprice, saledate, extra_field, repaired,
                      repair, reasons)
FROM STDIN WITH (FORMAT csv)

-- name: copy_dimension_rows
COPY work.dimension_rows (transform_run, chunk, dimension, id, name, detail) FROM STDIN WITH (FORMAT csv)
