-- The transform's work models, built from the raw lines of the batches being transformed (:batch_ids)
-- and run in this order by services/transform/job.py; the rules they call are in rules.sql.
--
-- They are UNLOGGED tables in meta (not TEMP tables: PostgreSQL reads those in one process only,
-- while these are scanned and joined by parallel workers), created and dropped inside the transform's
-- transaction under its advisory lock, so no other session ever sees them and a crash leaves nothing.
--
-- 1. transform_values: the distinct raw values of the run with their number of lines, in one pass.
--    The six vehicle fields (year, make, model, trim, body, transmission) are looked up together,
--    as are the two colours (55,000 vehicle combinations in 558,837 generated lines), so a line
--    needs 8 lookups instead of 16.
-- 2. transform_map_*: every distinct value through its rule, once (thousands of rows, not 558,837);
--    for the vehicle and colour combinations, once per distinct value of each field.
-- 3. transform_sales: the second and last pass over raw: every line joined to its maps, the per-row
--    rules (VIN, odometer, sale id) applied and the reasons of an untrusted line collected.
--
-- A NULL (unquoted empty field) and '' mean the same to every rule, so the lookup keys are
-- coalesce(field, ''): a blank field finds its map row like any other value.

-- name: values
-- Grouped on the raw columns themselves, whose statistics let PostgreSQL hash every set in one pass
-- (on expressions it would sort instead); the few shifted lines are grouped on their repaired fields.
-- A value can appear in both parts and stays NULL where blank: the maps below merge them.
CREATE UNLOGGED TABLE meta.transform_values AS
SELECT CASE WHEN GROUPING(year) = 0 THEN 'vehicle' WHEN GROUPING(color) = 0 THEN 'colors'
            WHEN GROUPING(state) = 0 THEN 'state' WHEN GROUPING(condition) = 0 THEN 'condition'
            WHEN GROUPING(seller) = 0 THEN 'seller' WHEN GROUPING(saledate) = 0 THEN 'saledate'
            WHEN GROUPING(mmr) = 0 THEN 'mmr' ELSE 'sellingprice' END AS dictionary,
       year, make, model, "trim", body, transmission, color, interior, state, condition, seller, saledate,
       mmr, sellingprice, count(*) AS lines
  FROM raw.car_prices
 WHERE _batch_id = ANY (:batch_ids) AND _extra_field IS NULL AND NOT rules.is_shifted(state, vin)
 GROUP BY GROUPING SETS ((year, make, model, "trim", body, transmission), (color, interior), (state),
                         (condition), (seller), (saledate), (mmr), (sellingprice))
UNION ALL
SELECT CASE WHEN GROUPING(year) = 0 THEN 'vehicle' WHEN GROUPING(color) = 0 THEN 'colors'
            WHEN GROUPING(state) = 0 THEN 'state' WHEN GROUPING(condition) = 0 THEN 'condition'
            WHEN GROUPING(seller) = 0 THEN 'seller' WHEN GROUPING(saledate) = 0 THEN 'saledate'
            WHEN GROUPING(mmr) = 0 THEN 'mmr' ELSE 'sellingprice' END,
       year, make, model, "trim", body, transmission, color, interior, state, condition, seller, saledate,
       mmr, sellingprice, count(*)
  FROM rules.repaired_lines(:batch_ids)
 WHERE repaired
 GROUP BY GROUPING SETS ((year, make, model, "trim", body, transmission), (color, interior), (state),
                         (condition), (seller), (saledate), (mmr), (sellingprice))

-- name: analyze_values
ANALYZE meta.transform_values

-- name: map_vehicle
-- The run's vehicle combinations; each field goes through its rule once per distinct value
-- (MATERIALIZED: inlined, the rules would run once per combination).
CREATE UNLOGGED TABLE meta.transform_map_vehicle AS
WITH vehicle AS (
    SELECT coalesce(year, '') AS year, coalesce(make, '') AS make, coalesce(model, '') AS model,
           coalesce("trim", '') AS "trim", coalesce(body, '') AS body,
           coalesce(transmission, '') AS transmission, sum(lines)::bigint AS lines
      FROM meta.transform_values WHERE dictionary = 'vehicle'
     GROUP BY 1, 2, 3, 4, 5, 6
), years AS MATERIALIZED (
    SELECT raw, rules.parse_model_year(raw) AS model_year, rules.clean_text(raw) IS NOT NULL AS present
      FROM (SELECT DISTINCT year AS raw FROM vehicle) d
), makes AS MATERIALIZED (
    SELECT raw, make_name, rules.name_uuid('make:' || make_name) AS make_id
      FROM (SELECT raw, rules.canonical_make(raw) AS make_name
              FROM (SELECT DISTINCT make AS raw FROM vehicle) d) m
), labels AS MATERIALIZED (
    SELECT raw, rules.canonical_label(raw) AS label
      FROM (SELECT model AS raw FROM vehicle UNION SELECT "trim" FROM vehicle) d
), bodies AS MATERIALIZED (
    SELECT raw, rules.canonical_body(raw) AS body FROM (SELECT DISTINCT body AS raw FROM vehicle) d
), transmissions AS MATERIALIZED (
    SELECT raw, transmission_type, rules.name_uuid('transmission:' || transmission_type) AS transmission_id
      FROM (SELECT raw, rules.canonical_lower(raw) AS transmission_type
              FROM (SELECT DISTINCT transmission AS raw FROM vehicle) d) t
)
SELECT v.year, v.make, v.model, v."trim", v.body, v.transmission, v.lines,
       y.model_year, y.present AS year_present, mk.make_name, mk.make_id, mo.label AS model_label,
       tr.label AS trim_label, b.body AS body_label, t.transmission_type, t.transmission_id
  FROM vehicle v
  JOIN years y ON y.raw = v.year
  JOIN makes mk ON mk.raw = v.make
  JOIN labels mo ON mo.raw = v.model
  JOIN labels tr ON tr.raw = v."trim"
  JOIN bodies b ON b.raw = v.body
  JOIN transmissions t ON t.raw = v.transmission

-- name: map_colors
-- The run's colour pairs (exterior, interior); each colour through its rule once.
CREATE UNLOGGED TABLE meta.transform_map_colors AS
WITH pairs AS (
    SELECT coalesce(color, '') AS color, coalesce(interior, '') AS interior, sum(lines)::bigint AS lines
      FROM meta.transform_values WHERE dictionary = 'colors'
     GROUP BY 1, 2
), colors AS MATERIALIZED (
    SELECT raw, color_name, rules.name_uuid('color:' || color_name) AS color_id
      FROM (SELECT raw, rules.canonical_lower(raw) AS color_name
              FROM (SELECT color AS raw FROM pairs UNION SELECT interior FROM pairs) d) c
)
SELECT p.color, p.interior, p.lines, e.color_name AS exterior_color, e.color_id AS exterior_color_id,
       i.color_name AS interior_color, i.color_id AS interior_color_id
  FROM pairs p
  JOIN colors e ON e.raw = p.color
  JOIN colors i ON i.raw = p.interior

-- name: map_state
CREATE UNLOGGED TABLE meta.transform_map_state AS
SELECT v.raw, v.lines, v.state_code, s.state_name, rules.name_uuid('state:' || s.state_code) AS state_id
  FROM (SELECT raw, lines, rules.state_code(raw) AS state_code
          FROM (SELECT coalesce(state, '') AS raw, sum(lines)::bigint AS lines
                  FROM meta.transform_values WHERE dictionary = 'state' GROUP BY 1) d) v
  LEFT JOIN meta.ref_state s ON s.state_code = v.state_code

-- name: map_condition
CREATE UNLOGGED TABLE meta.transform_map_condition AS
SELECT raw, lines, rules.parse_condition(raw) AS condition, rules.clean_text(raw) IS NOT NULL AS present
  FROM (SELECT coalesce(condition, '') AS raw, sum(lines)::bigint AS lines
          FROM meta.transform_values WHERE dictionary = 'condition' GROUP BY 1) v

-- name: map_seller
CREATE UNLOGGED TABLE meta.transform_map_seller AS
SELECT raw, lines, seller_name, rules.name_uuid('seller:' || seller_name) AS seller_id
  FROM (SELECT raw, lines, rules.canonical_seller(raw) AS seller_name
          FROM (SELECT coalesce(seller, '') AS raw, sum(lines)::bigint AS lines
                  FROM meta.transform_values WHERE dictionary = 'seller' GROUP BY 1) d) v

-- name: map_sale_date
CREATE UNLOGGED TABLE meta.transform_map_sale_date AS
SELECT raw, lines, sale_date, present, rules.sale_date_plausible(sale_date) AS plausible
  FROM (SELECT raw, lines, rules.parse_sale_date(raw) AS sale_date, rules.clean_text(raw) IS NOT NULL AS present
          FROM (SELECT coalesce(saledate, '') AS raw, sum(lines)::bigint AS lines
                  FROM meta.transform_values WHERE dictionary = 'saledate' GROUP BY 1) d) v

-- name: map_money
CREATE UNLOGGED TABLE meta.transform_map_money AS
SELECT raw, lines, rules.parse_money(raw) AS amount, rules.clean_text(raw) IS NOT NULL AS present,
       rules.number_defect(raw) AS defect
  FROM (SELECT coalesce(CASE dictionary WHEN 'mmr' THEN mmr ELSE sellingprice END, '') AS raw,
               sum(lines)::bigint AS lines
          FROM meta.transform_values WHERE dictionary IN ('mmr', 'sellingprice') GROUP BY 1) v

-- name: sales
-- One row per raw line, in one parallel pass. `reasons` is empty for a trusted line; otherwise it
-- lists every reason the line cannot be trusted (space-separated codes), not only the first.
CREATE UNLOGGED TABLE meta.transform_sales AS
SELECT l.raw_table, l.raw_ctid, l.batch_id, l.run_id, l.source_sha256, l.line_number, l.repaired, l.repair,
       rules.sale_uuid(l.source_sha256, l.line_number) AS sale_id,
       ve.make_id, ve.model_label AS model, ve.trim_label AS "trim", ve.body_label AS body,
       ve.transmission_id, rules.clean_vin(l.vin) AS vin, st.state_id, co.condition,
       rules.parse_miles(l.odometer) AS odometer, cl.exterior_color_id, cl.interior_color_id,
       mm.amount AS mmr, sp.amount AS selling_price, sd.sale_date, se.seller_id, ve.model_year,
       concat_ws(' ',
           CASE WHEN ve.model_year IS NULL
                THEN CASE WHEN ve.year_present THEN 'year_invalid' ELSE 'year_missing' END END,
           CASE WHEN rules.is_valid_vin(l.vin) THEN NULL
                WHEN coalesce(btrim(l.vin), '') = '' THEN 'vin_missing' ELSE 'vin_invalid' END,
           CASE WHEN st.state_id IS NULL
                THEN CASE WHEN st.state_code IS NULL THEN 'state_missing' ELSE 'state_unknown' END END,
           CASE WHEN co.condition IS NULL AND co.present THEN 'condition_invalid' END,
           CASE WHEN rules.parse_miles(l.odometer) IS NULL AND btrim(l.odometer) <> ''
                THEN 'odometer_' || rules.number_defect(l.odometer) END,
           CASE WHEN mm.amount IS NULL
                THEN CASE WHEN mm.present THEN 'mmr_' || mm.defect ELSE 'mmr_missing' END END,
           CASE WHEN sp.amount IS NULL
                THEN CASE WHEN sp.present THEN 'selling_price_' || sp.defect ELSE 'selling_price_missing' END END,
           CASE WHEN se.seller_id IS NULL THEN 'seller_missing' END,
           -- only the 16-field variant may lack its sale date: a 16-field reader dropped it
           CASE WHEN sd.sale_date IS NULL THEN CASE WHEN sd.present THEN 'sale_date_unparseable'
                                                    WHEN l.repair IS DISTINCT FROM 'shifted_16_fields'
                                                    THEN 'sale_date_missing' END
                WHEN NOT sd.plausible THEN 'sale_date_out_of_range' END
       ) AS reasons
  FROM rules.repaired_lines(:batch_ids) l
  LEFT JOIN meta.transform_map_vehicle ve
    ON ve.year = coalesce(l.year, '') AND ve.make = coalesce(l.make, '') AND ve.model = coalesce(l.model, '')
   AND ve."trim" = coalesce(l."trim", '') AND ve.body = coalesce(l.body, '')
   AND ve.transmission = coalesce(l.transmission, '')
  LEFT JOIN meta.transform_map_colors cl
    ON cl.color = coalesce(l.color, '') AND cl.interior = coalesce(l.interior, '')
  LEFT JOIN meta.transform_map_state st ON st.raw = coalesce(l.state, '')
  LEFT JOIN meta.transform_map_condition co ON co.raw = coalesce(l.condition, '')
  LEFT JOIN meta.transform_map_money mm ON mm.raw = coalesce(l.mmr, '')
  LEFT JOIN meta.transform_map_money sp ON sp.raw = coalesce(l.sellingprice, '')
  LEFT JOIN meta.transform_map_seller se ON se.raw = coalesce(l.seller, '')
  LEFT JOIN meta.transform_map_sale_date sd ON sd.raw = coalesce(l.saledate, '')

-- name: quarantine
CREATE UNLOGGED TABLE meta.transform_quarantine AS
SELECT * FROM meta.transform_sales WHERE reasons <> ''

-- name: fixed
-- Recoverable defects the rules fixed, in lines (the maps count the lines of each value): reported
-- in the stage's details.
SELECT (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_vehicle
         WHERE make <> '' AND make_name IS DISTINCT FROM make) AS make_respelled,
       (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_vehicle
         WHERE body <> '' AND body_label IS DISTINCT FROM body) AS body_respelled,
       (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_colors
         WHERE color <> '' AND exterior_color IS NULL)
     + (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_colors
         WHERE interior <> '' AND interior_color IS NULL) AS unknown_colors_nulled,
       (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_seller
         WHERE raw <> '' AND seller_name IS DISTINCT FROM raw) AS seller_respelled,
       (SELECT coalesce(sum(lines), 0) FROM meta.transform_map_condition
         WHERE CASE WHEN condition IS NOT NULL THEN rules.clean_text(raw)::numeric <= 5 END) AS condition_rescaled
