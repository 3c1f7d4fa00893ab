-- Silver layer: the star schema of the ERD, published by the transform stage (services/transform).
--
-- Keys are name-based uuids of the natural keys (RFC 4122 version 3, see rules.name_uuid in
-- services/transform/sql/rules.sql), so every worker and every re-run computes the same ids.
-- Dimensions hold only canonical values (never a blank or a `—`), each once: the natural key is
-- unique and, for makes, unique regardless of case.

CREATE TABLE staging.dim_make (
    make_id   uuid PRIMARY KEY,
    make_name text NOT NULL UNIQUE CHECK (make_name <> '' AND make_name = btrim(make_name))
);
CREATE UNIQUE INDEX dim_make_name_ci ON staging.dim_make (lower(make_name));

CREATE TABLE staging.dim_transmission (
    transmission_id   uuid PRIMARY KEY,
    transmission_type text NOT NULL UNIQUE CHECK (transmission_type <> '' AND transmission_type = lower(transmission_type))
);

CREATE TABLE staging.dim_state (
    state_id   uuid PRIMARY KEY,
    state_code text NOT NULL UNIQUE CHECK (state_code ~ '^[A-Z]{2}$'),
    state_name text NOT NULL
);

-- One colour dimension for both roles: exterior and interior colour of a sale.
CREATE TABLE staging.dim_color (
    color_id   uuid PRIMARY KEY,
    color_name text NOT NULL UNIQUE CHECK (color_name <> '' AND color_name = lower(color_name))
);

CREATE TABLE staging.dim_seller (
    seller_id   uuid PRIMARY KEY,
    seller_name text NOT NULL UNIQUE CHECK (seller_name <> '' AND seller_name = lower(seller_name))
);

-- One row per trusted source line. The natural key of a sale is (source_sha256, line_number):
-- the line of a file's content it was read from (see docs/transform.md for why).
CREATE TABLE staging.fact_car_sales (
    sale_id           uuid PRIMARY KEY,
    make_id           uuid,
    model             text,
    trim              text,
    body              text,
    transmission_id   uuid,
    vin               text          NOT NULL CHECK (octet_length(vin) = 17),
    state_id          uuid          NOT NULL,
    condition         smallint      CHECK (condition BETWEEN 10 AND 50),
    odometer          integer       CHECK (odometer >= 0),
    exterior_color_id uuid,
    interior_color_id uuid,
    mmr               numeric(15, 2) NOT NULL CHECK (mmr >= 0),
    selling_price     numeric(15, 2) NOT NULL CHECK (selling_price >= 0),
    sale_date         timestamptz,   -- NULL only where the line was repaired (the date was lost)
    seller_id         uuid          NOT NULL,
    model_year        smallint      NOT NULL CHECK (model_year BETWEEN 1900 AND 2100),
    repaired          boolean       NOT NULL DEFAULT false,  -- a shifted line put back in place
    -- lineage back to raw.car_prices (_run_id, _source_sha256, _line_number)
    run_id            uuid          NOT NULL,
    source_sha256     text          NOT NULL,
    line_number       bigint        NOT NULL,
    CONSTRAINT fact_car_sales_sale_date_known CHECK (sale_date IS NOT NULL OR repaired),
    CONSTRAINT fact_car_sales_make_fk FOREIGN KEY (make_id) REFERENCES staging.dim_make,
    CONSTRAINT fact_car_sales_transmission_fk FOREIGN KEY (transmission_id) REFERENCES staging.dim_transmission,
    CONSTRAINT fact_car_sales_state_fk FOREIGN KEY (state_id) REFERENCES staging.dim_state,
    CONSTRAINT fact_car_sales_exterior_color_fk FOREIGN KEY (exterior_color_id) REFERENCES staging.dim_color,
    CONSTRAINT fact_car_sales_interior_color_fk FOREIGN KEY (interior_color_id) REFERENCES staging.dim_color,
    CONSTRAINT fact_car_sales_seller_fk FOREIGN KEY (seller_id) REFERENCES staging.dim_seller
);

-- Lines that cannot be trusted after repair: the raw values as loaded, their lineage and every reason.
CREATE TABLE staging.quarantined_sales (
    source_sha256  text        NOT NULL,
    line_number    bigint      NOT NULL,
    run_id         uuid        NOT NULL,
    batch_id       bigint      NOT NULL,
    source_file    text        NOT NULL,
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
    repaired       boolean     NOT NULL DEFAULT false,  -- the line was shifted; reasons apply after repair
    reasons        text[]      NOT NULL CHECK (cardinality(reasons) > 0),
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_sha256, line_number)
);

-- The cleaning rules: SQL functions the transform (re)creates from services/transform/sql/rules.sql
-- at the start of every run.
CREATE SCHEMA rules;

-- Reference data of the cleaning rules. The CSV files in services/transform/reference/ are the
-- source of truth; every transform reloads them here in its own transaction, so these tables always
-- show what the last published transform used.
CREATE TABLE meta.ref_state (
    state_code text PRIMARY KEY CHECK (state_code ~ '^[A-Z]{2}$'),
    state_name text NOT NULL
);

CREATE TABLE meta.ref_make_alias (
    alias     text PRIMARY KEY CHECK (alias = lower(alias)),
    make_name text NOT NULL
);

CREATE TABLE meta.ref_body_style (
    variant text PRIMARY KEY CHECK (variant = lower(variant)),
    body    text NOT NULL
);
