-- staging.fact_car_sales is partitioned by range of sale_id, one partition per file content, so a
-- run's sales are written once: its chunk jobs COPY them into a table of their own (work.py), and
-- its publish attaches that table as the file's partition (services/transform/job.py) instead of
-- copying every row again with INSERT ... SELECT. A sale id is its file's SHA-256 prefix followed
-- by the line number in its last 48 bits (services/transform/rules.py, sale_uuid), so one file's
-- sales are one range: from its prefix and twelve 0s to its prefix and twelve fs.
--
-- Readers are unaffected: they query the parent, which keeps its name, columns, primary key, foreign
-- keys and grants; a partition is named after the file (fact_car_sales_<first 18 hex digits of its
-- SHA-256>). The sales published so far move into partitions of their files here, their ids
-- written in that layout (sales published by the SQL transform, before migration 0007, had ids of
-- another form; nothing refers to a sale by its id).
ALTER TABLE staging.fact_car_sales RENAME TO fact_car_sales_0009;
ALTER TABLE staging.fact_car_sales_0009 RENAME CONSTRAINT fact_car_sales_pkey TO fact_car_sales_0009_pkey;

CREATE TABLE staging.fact_car_sales (
    LIKE staging.fact_car_sales_0009 INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    CONSTRAINT fact_car_sales_pkey PRIMARY KEY (sale_id)
) PARTITION BY RANGE (sale_id);

DO $$
DECLARE
    fk record;
    file text;
    partition text;
    prefix text;  -- rules.sale_uuid: 72 bits of the SHA-256 around the version and variant digits
BEGIN
    -- The foreign keys as the earlier migrations defined them (LIKE copies no foreign key).
    FOR fk IN
        SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
         WHERE conrelid = 'staging.fact_car_sales_0009'::regclass AND contype = 'f' ORDER BY conname
    LOOP
        EXECUTE 'ALTER TABLE staging.fact_car_sales ADD CONSTRAINT ' || quote_ident(fk.conname)
             || ' ' || fk.definition;
    END LOOP;
    FOR file IN SELECT DISTINCT source_sha256 FROM staging.fact_car_sales_0009 LOOP
        partition := 'staging.' || quote_ident('fact_car_sales_' || left(file, 18));
        prefix := left(file, 12) || '8' || substr(file, 13, 3) || '8' || substr(file, 16, 3);
        EXECUTE 'CREATE TABLE ' || partition
             || ' (LIKE staging.fact_car_sales INCLUDING DEFAULTS INCLUDING CONSTRAINTS)';
        EXECUTE 'INSERT INTO ' || partition || ' (sale_id, make_id, model, "trim", body, transmission_id,'
             || ' vin, state_id, condition, odometer, exterior_color_id, interior_color_id, mmr,'
             || ' selling_price, sale_date, seller_id, model_year, repaired, run_id, source_sha256,'
             || ' line_number, repair)'
             || ' SELECT CAST($2 || lpad(to_hex(line_number), 12, ''0'') AS uuid), make_id, model, "trim",'
             || ' body, transmission_id, vin, state_id, condition, odometer, exterior_color_id,'
             || ' interior_color_id, mmr, selling_price, sale_date, seller_id, model_year, repaired,'
             || ' run_id, source_sha256, line_number, repair'
             || ' FROM staging.fact_car_sales_0009 WHERE source_sha256 = $1'
          USING file, prefix;
        EXECUTE 'ALTER TABLE staging.fact_car_sales ATTACH PARTITION ' || partition
             || ' FOR VALUES FROM (' || quote_literal(CAST(prefix || '000000000000' AS uuid))
             || ') TO (' || quote_literal(CAST(prefix || 'ffffffffffff' AS uuid)) || ')';
    END LOOP;
END
$$;

DROP TABLE staging.fact_car_sales_0009;

-- The chunks' sales no longer go through one work table of all runs: each file of a run has a table
-- of its own (services/transform/work.py). A run planned before this migration and not published
-- yet loses its chunks' sales here: run it again.
DROP TABLE work.sales;
