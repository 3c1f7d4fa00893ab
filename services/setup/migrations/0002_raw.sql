-- Bronze layer: every source line exactly as it was, plus lineage. Append-only history.

-- One row per file load (a batch). Idempotency looks files up by content hash.
CREATE TABLE meta.ingested_files (
    batch_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       uuid        NOT NULL,
    source_file  text        NOT NULL,   -- file name
    source_path  text        NOT NULL,   -- path as the worker saw it
    sha256       text        NOT NULL,
    size_bytes   bigint      NOT NULL,
    records      bigint      NOT NULL,   -- CSV data records in the file (header excluded)
    rows_loaded  bigint      NOT NULL,
    rows_rejected bigint     NOT NULL,
    forced       boolean     NOT NULL DEFAULT false,
    seconds      numeric(12, 3),
    ingested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingested_files_sha256 ON meta.ingested_files (sha256);
CREATE INDEX ingested_files_run_id ON meta.ingested_files (run_id);

-- Lineage columns are filled from transaction-local settings (SET LOCAL pipeline.*), so COPY
-- streams only the file's own fields plus the line number.
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
    _line_number   bigint      NOT NULL,  -- 1-based physical line of the record's start in the file
    _batch_id      bigint      NOT NULL DEFAULT current_setting('pipeline.batch_id')::bigint,
    _run_id        uuid        NOT NULL DEFAULT current_setting('pipeline.run_id')::uuid,
    _source_file   text        NOT NULL DEFAULT current_setting('pipeline.source_file'),
    _source_sha256 text        NOT NULL DEFAULT current_setting('pipeline.source_sha256'),
    _ingested_at   timestamptz NOT NULL DEFAULT now()
);
-- Batches are appended in order, so a BRIN index finds a batch's rows for almost no write cost.
CREATE INDEX car_prices_batch_brin ON raw.car_prices USING brin (_batch_id);

-- Lines that cannot be trusted as rows: kept byte for byte with a reason a person can read.
CREATE TABLE raw.rejected_lines (
    batch_id       bigint      NOT NULL DEFAULT current_setting('pipeline.batch_id')::bigint,
    run_id         uuid        NOT NULL DEFAULT current_setting('pipeline.run_id')::uuid,
    source_file    text        NOT NULL DEFAULT current_setting('pipeline.source_file'),
    source_sha256  text        NOT NULL DEFAULT current_setting('pipeline.source_sha256'),
    line_number    bigint      NOT NULL,
    line_count     integer     NOT NULL DEFAULT 1,  -- physical lines the record spans
    raw_line       bytea       NOT NULL,
    reason         text        NOT NULL,
    rejected_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, line_number)
);
