-- raw keeps a 17th field: the real car_prices.csv has 26 lines (2015 Volkswagen Jetta) whose trim
-- `SE PZEV w/Connectivity, Navitgation` is written without quotes, so the line has 17 fields. The
-- ingest loads such a line only when its 4th and 5th fields rejoined form a known split trim
-- (shared/dataset.py): its first 16 fields go to the 16 columns in file order (the line then looks
-- like the shifted 16-field variant: body `Navitgation`, transmission `sedan`, ...) and the 17th,
-- the real sale date, goes here. Every other line has NULL. See docs/dataset.md.
--
-- Added to the partitioned parent, the column reaches every partition (the batches' and the one of
-- the rows loaded before migration 0005); a new batch's partition copies it (CREATE TABLE ... LIKE).
ALTER TABLE raw.car_prices ADD COLUMN _extra_field text;

-- The lineage view lists the columns it had when created: re-created to show the new one.
DROP VIEW raw.car_prices_lineage;
CREATE VIEW raw.car_prices_lineage AS
SELECT r.*, f.run_id AS _run_id, f.source_file AS _source_file, f.sha256 AS _source_sha256,
       f.ingested_at AS _ingested_at
  FROM raw.car_prices r
  JOIN meta.ingested_files f ON f.batch_id = r._batch_id;

-- Which repair a repaired line had, as a reason code: `shifted_16_fields` (the 16-field variant a
-- reader that dropped the 17th field writes: the sale date is lost) or `split_trim_17_fields` (the
-- real 17-field line: nothing is lost). NULL on a line that needed none. The quarantine also keeps
-- the 17th field as loaded, beside the other raw values.
ALTER TABLE staging.fact_car_sales
    ADD COLUMN repair text,
    ADD CONSTRAINT fact_car_sales_repair_named CHECK (repair IS NULL OR repaired);
ALTER TABLE staging.quarantined_sales
    ADD COLUMN extra_field text,
    ADD COLUMN repair text,
    ADD CONSTRAINT quarantined_sales_repair_named CHECK (repair IS NULL OR repaired);
-- Every line repaired so far was a 16-field one: the ingest rejected the 17-field lines until now.
UPDATE staging.fact_car_sales SET repair = 'shifted_16_fields' WHERE repaired;
UPDATE staging.quarantined_sales SET repair = 'shifted_16_fields' WHERE repaired;
