-- Gold layer: curated, analyst-facing tables built from staging's star schema by the transform's
-- publish (services/transform/marts.py, one model per file in services/transform/sql/marts/), in
-- the publish's own transaction: a reader never sees marts that disagree with staging.
--
-- Shared definitions (the models compute them the same way; docs in README "Layers"):
-- * a sale day is the sale's date in UTC;
-- * a priced sale has a selling price and an MMR of at least $100 (checks.SUSPICIOUS_PRICE): the
--   price/MMR ratios are taken over priced sales only, so a $1 placeholder cannot skew them;
-- * a suspicious sale has a price or MMR under $100 or an odometer <= 1 or >= 999,999 miles
--   (the transform's suspicious_prices / suspicious_odometers checks).
CREATE SCHEMA IF NOT EXISTS marts;

-- One row per sale day (UTC) x state x make; sales without a sale date (repaired lines whose date
-- was lost) have no day and are not counted here. A NULL make is the make-unknown row of that day
-- and state (NULLS NOT DISTINCT: still one row).
CREATE TABLE marts.daily_sales (
    sale_day          date          NOT NULL,
    state_id          uuid          NOT NULL,
    state_code        text          NOT NULL,
    make_id           uuid,
    make_name         text,
    sales             integer       NOT NULL CHECK (sales > 0),
    total_price       numeric(17, 2) NOT NULL,
    avg_price         numeric(15, 2) NOT NULL,
    priced_sales      integer       NOT NULL,
    avg_price_to_mmr  numeric(12, 4),           -- mean of price / MMR over priced sales
    share_above_mmr   numeric(7, 4),            -- share of priced sales sold above their MMR
    CONSTRAINT daily_sales_key UNIQUE NULLS NOT DISTINCT (sale_day, state_id, make_id)
);

-- One row per make x model x model year with at least 5 sales (of known make and model).
CREATE TABLE marts.price_guide (
    make_id              uuid          NOT NULL,
    make_name            text          NOT NULL,
    model                text          NOT NULL,
    model_year           smallint      NOT NULL,
    sales                integer       NOT NULL CHECK (sales >= 5),
    median_price         numeric(15, 2) NOT NULL,
    p10_price            numeric(15, 2) NOT NULL,
    p90_price            numeric(15, 2) NOT NULL,
    median_mmr           numeric(15, 2) NOT NULL,
    median_price_to_mmr  numeric(12, 4),         -- over priced sales
    median_odometer      integer,                -- over sales with a known odometer
    PRIMARY KEY (make_id, model, model_year)
);

-- One row per seller.
CREATE TABLE marts.seller_scorecard (
    seller_id         uuid          PRIMARY KEY,
    seller_name       text          NOT NULL UNIQUE,
    sales             integer       NOT NULL CHECK (sales > 0),
    priced_sales      integer       NOT NULL,
    avg_price_to_mmr  numeric(12, 4),          -- over priced sales
    repaired_sales    integer       NOT NULL,
    suspicious_sales  integer       NOT NULL,
    flagged_share     numeric(7, 4) NOT NULL,  -- share of sales repaired or suspicious (or both)
    first_sale_day    date,                    -- NULL when no sale of the seller has a sale date
    last_sale_day     date
);

-- The daily batch (services/scheduler): one row per schedule slot that got a run. The slot is the
-- key, so however many schedulers fire for one slot, one of them creates its run.
CREATE TABLE meta.scheduled_runs (
    slot        timestamptz PRIMARY KEY,
    run_id      uuid        NOT NULL UNIQUE REFERENCES meta.pipeline_runs ON DELETE CASCADE,
    schedule    text        NOT NULL,  -- the cron string that fired
    landing_dir text        NOT NULL,
    files       integer     NOT NULL,  -- files found in the landing directory (loaded or not)
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The pipeline role owns and writes the marts (the migrations run as it); analyst may only read
-- them, tables added later included.
GRANT USAGE ON SCHEMA marts TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA marts GRANT SELECT ON TABLES TO analyst;
