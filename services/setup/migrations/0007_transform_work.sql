-- The transform's work schema: what its chunk jobs write for the run's publish job to pick up.
--
-- Why a schema of its own: meta holds what must last (ledger, lineage, quality results); these
-- tables hold throwaway rows between a run's chunk jobs and its publish. Only `pipeline`, its owner,
-- uses them: no other role gets anything here (analyst reads staging only, see grants.sql).
--
-- The three row tables are partitioned by the transforming run (`transform_run`: the run whose
-- publish consumes them, also for a rebuild, whose sales keep the run that ingested them). A run's
-- plan job creates its UNLOGGED partitions (no WAL: a PostgreSQL crash empties them, and the
-- publish's reconciliation check then fails the run instead of publishing less), its chunk jobs
-- COPY into them, and its publish drops them once it has committed.
CREATE SCHEMA work;
REVOKE ALL ON SCHEMA work FROM PUBLIC;

-- One row per chunk job: a page range of one batch's raw partition.
CREATE TABLE work.chunks (
    transform_run uuid    NOT NULL,
    chunk         integer NOT NULL,
    batch_id      bigint  NOT NULL,
    first_page    bigint  NOT NULL,   -- the chunk reads ctid >= (first_page, 0)
    end_page      bigint  NOT NULL,   -- and ctid < (end_page, 0)
    PRIMARY KEY (transform_run, chunk)
);

-- The trusted lines of a chunk, typed and keyed: the fact table's columns, in its order.
CREATE TABLE work.sales (
    transform_run uuid    NOT NULL,
    chunk         integer NOT NULL,
    LIKE staging.fact_car_sales
) PARTITION BY LIST (transform_run);

-- The untrusted lines of a chunk: the quarantine's columns, and the sale id the line would have.
CREATE TABLE work.quarantine (
    transform_run uuid    NOT NULL,
    chunk         integer NOT NULL,
    sale_id       uuid    NOT NULL,
    LIKE staging.quarantined_sales INCLUDING DEFAULTS
) PARTITION BY LIST (transform_run);

-- The dimension rows a chunk's trusted lines use (`dimension` names the table: dim_make, ...);
-- `detail` is a second attribute where a dimension has one (a state's name).
CREATE TABLE work.dimension_rows (
    transform_run uuid    NOT NULL,
    chunk         integer NOT NULL,
    dimension     text    NOT NULL,
    id            uuid    NOT NULL,
    name          text    NOT NULL,
    detail        text
) PARTITION BY LIST (transform_run);

-- The transform's rules moved out of the database into the workers (services/transform/rules.py,
-- reading services/transform/reference/*.csv): the SQL functions' schema and the reference tables
-- they read (reloaded by every SQL transform) go.
DROP SCHEMA rules CASCADE;
DROP TABLE meta.ref_state, meta.ref_make_alias, meta.ref_body_style;
