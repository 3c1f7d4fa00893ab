-- The cleaning rules of the transform stage: one small SQL function per rule, all in this file.
--
-- Each rule has its own unit test in tests/test_transform_rules.py. The transform re-creates them
-- (CREATE OR REPLACE) at the start of every run, under its advisory lock and as the `pipeline` role
-- (so they always belong to it, whoever runs the worker), in the schema `rules`; a changed rule takes
-- effect on the next run, and `pipeline rebuild` re-applies it to the whole raw history.
--
-- How they are applied (services/transform/sql/work.sql): rules on columns with few distinct values
-- (make, body, colours, seller, state, sale date, ...) run once per distinct raw value and are joined
-- back, so they may use regular expressions and lookups; the per-row rules (VIN, odometer, prices)
-- are plain expressions PostgreSQL inlines into the one pass over the raw rows.
--
-- CREATE OR REPLACE cannot change a function's parameter names or result type: a change like that
-- needs a `DROP FUNCTION IF EXISTS` line above the new definition.
--
-- A rule returns NULL for a missing value (blank, `—`) and for a value it cannot read; the work
-- model tells the two apart (present but NULL after the rule = a defect with a reason code).

-- Name-based uuids: RFC 4122 version 3 (MD5) in the pipeline's namespace
-- 63520289-7aa7-5e3f-8290-f3a19dd5925c (= uuid5(NAMESPACE_URL, 'urn:carsales-pipeline:staging')).
-- Python computes the same id with uuid.uuid3(NAMESPACE, name). MD5 rather than SHA-1 (version 5)
-- because md5() is built in, while sha1 needs the pgcrypto extension; the ids only need to be
-- deterministic and practically collision-free, not secret.
CREATE OR REPLACE FUNCTION rules.uuid_from_md5(md5_hex text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT overlay(overlay(md5_hex PLACING '3' FROM 13)  -- version 3
                   PLACING substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr(md5_hex, 17, 1)), 1)
                   FROM 17)::uuid                        -- RFC 4122 variant
$$;

CREATE OR REPLACE FUNCTION rules.name_uuid(name text) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT rules.uuid_from_md5(md5(decode('635202897aa75e3f8290f3a19dd5925c', 'hex')
                                   || convert_to(name, 'UTF8')))
$$;

-- The id of a sale: its natural key (source_sha256, line_number) written as a uuid, version 8
-- (RFC 9562, custom): 72 bits of the file's SHA-256 (hex 1-12, 14-16, 18-20) and the line number
-- (48 bits, hex 21-32). The natural key is already a hash plus a number, so no hashing per row is
-- needed (md5() costs more than the rest of a line's rules); the ids of one file are ordered by
-- line, so the primary key grows at its right edge; the line can be read back from the id.
-- Python: uuid.UUID(sha[:12] + "8" + sha[12:15] + "8" + sha[15:18] + f"{line_number:012x}").
CREATE OR REPLACE FUNCTION rules.sale_uuid(source_sha256 text, line_number bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (substr(source_sha256, 1, 12) || '8' || substr(source_sha256, 13, 3) || '8'
            || substr(source_sha256, 16, 3) || lpad(to_hex(line_number), 12, '0'))::uuid
$$;

-- Text: trim, collapse inner whitespace to one space; blank and the unknown markers (`—`, `–`, `-`)
-- become NULL.
CREATE OR REPLACE FUNCTION rules.clean_text(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(nullif(nullif(nullif(btrim(regexp_replace(value, '\s+', ' ', 'g')), ''), '—'), '–'), '-')
$$;

-- Make: the canonical brand of an alias or case variant (meta.ref_make_alias, loaded from
-- reference/make_aliases.csv); a make not in the list is title-cased. The result depends only on the
-- lower-cased text, so two spellings that differ by case can never give two makes.
CREATE OR REPLACE FUNCTION rules.canonical_make(value text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT a.make_name FROM meta.ref_make_alias a WHERE a.alias = k.key), initcap(k.key))
      FROM (SELECT lower(rules.clean_text(value)) AS key) k
$$;

-- Body style: the spelling in meta.ref_body_style (reference/body_styles.csv: SUV, SuperCrew, ...),
-- otherwise title case (`sedan` and `Sedan` -> `Sedan`, `crew cab` -> `Crew Cab`).
CREATE OR REPLACE FUNCTION rules.canonical_body(value text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT b.body FROM meta.ref_body_style b WHERE b.variant = k.key), initcap(k.key))
      FROM (SELECT lower(rules.clean_text(value)) AS key) k
$$;

-- Model and trim: cleaned text, spelling kept (`3 Series`, `328i SULEV`).
CREATE OR REPLACE FUNCTION rules.canonical_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT rules.clean_text(value)
$$;

-- Transmission and colours: lower case (`automatic`, `off-white`).
CREATE OR REPLACE FUNCTION rules.canonical_lower(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(rules.clean_text(value))
$$;

-- Seller: lower case; a comma is a word break like the doubled space it became elsewhere in the
-- file (`kia motors america, inc`, `kia motors america  inc` -> `kia motors america inc`).
CREATE OR REPLACE FUNCTION rules.canonical_seller(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(rules.clean_text(replace(value, ',', ' ')))
$$;

-- State: the upper-case code; whether it is known is a join with meta.ref_state (reference/states.csv).
CREATE OR REPLACE FUNCTION rules.state_code(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT upper(rules.clean_text(value))
$$;

-- Model year: four digits between 1900 and 2100.
CREATE OR REPLACE FUNCTION rules.parse_model_year(value text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[0-9]{4}$' THEN CASE WHEN t::integer BETWEEN 1900 AND 2100 THEN t::smallint END END
      FROM (SELECT rules.clean_text(value) AS t) x
$$;

-- Condition: one scale, 10-50. The file mixes grades 1-5 (decimals allowed: 4.5) with the same
-- grades times ten (10-49); 1-5 is multiplied by 10. Anything else (0, 6-9, > 50, text) is unreadable.
CREATE OR REPLACE FUNCTION rules.parse_condition(value text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN g BETWEEN 1 AND 5 THEN round(g * 10)::smallint
                WHEN g BETWEEN 10 AND 50 THEN round(g)::smallint END
      FROM (SELECT CASE WHEN t ~ '^[0-9]{1,2}(\.[0-9]+)?$' THEN t::numeric END AS g
              FROM (SELECT rules.clean_text(value) AS t) x) y
$$;

-- Sale date: `Tue Dec 16 2014 12:30:00 GMT-0800 (PST)` (JavaScript's Date.toString) to timestamptz,
-- honouring the written offset: GMT-0800 and GMT-0700 differ by an hour whatever the zone name says.
-- The weekday and the zone name are not checked; an impossible date (Feb 30, 25:00) is unreadable.
CREATE OR REPLACE FUNCTION rules.parse_sale_date(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t text := rules.clean_text(value);
    mon integer;
    yr integer;
    dd integer;
    hh integer;
    mi integer;
    ss integer;
    offset_minutes integer;
BEGIN
    -- One regular expression without captures (fast in PostgreSQL), then the fields by position.
    IF t IS NULL OR t !~ ('^[A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} '
                          'GMT[+-][0-9]{4}( \([^()]*\))?$') THEN
        RETURN NULL;
    END IF;
    mon := strpos('JanFebMarAprMayJunJulAugSepOctNovDec', substr(t, 5, 3));
    IF mod(mon, 3) <> 1 THEN
        RETURN NULL;
    END IF;
    mon := (mon + 2) / 3;
    dd := substr(t, 9, 2)::integer;
    yr := substr(t, 12, 4)::integer;
    hh := substr(t, 17, 2)::integer;
    mi := substr(t, 20, 2)::integer;
    ss := substr(t, 23, 2)::integer;
    offset_minutes := substr(t, 30, 2)::integer * 60 + substr(t, 32, 2)::integer;
    IF yr < 1 OR hh > 23 OR mi > 59 OR ss > 59 OR offset_minutes > 14 * 60 OR dd < 1
       OR dd > extract(day FROM make_date(yr, mon, 1) + interval '1 month' - interval '1 day') THEN
        RETURN NULL;
    END IF;
    IF substr(t, 29, 1) = '-' THEN
        offset_minutes := -offset_minutes;
    END IF;
    RETURN timezone(make_interval(mins => offset_minutes), make_timestamp(yr, mon, dd, hh, mi, ss));
END
$$;

-- Sale dates outside [1990-01-01, now + 1 day) cannot be true for this data (a future sale, a lost
-- century): the line is quarantined rather than published with a wrong date.
CREATE OR REPLACE FUNCTION rules.sale_date_plausible(sale_date timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sale_date >= timestamptz '1990-01-01 00:00+00' AND sale_date < now() + interval '1 day'
$$;

-- --- Per-row rules: cheap expressions, inlined into the pass over the raw rows -----------------------

-- A shifted line (the unquoted comma of `SE PZEV w/Connectivity, Navitgation`): every field from body
-- on moved one place right, so the state field holds the 17-character VIN and the VIN field does not.
-- Fields are measured as loaded (octet_length is free; a state code is 2 characters, a VIN 17).
-- A line of 17 fields that the ingest loaded (its 17th field in raw's _extra_field) is shifted in the
-- same way, whatever its VIN: repaired_lines checks _extra_field first.
CREATE OR REPLACE FUNCTION rules.is_shifted(state text, vin text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(octet_length(state) = 17 AND octet_length(vin) IS DISTINCT FROM 17, false)
$$;

-- VIN: upper case (the file writes it in lower case); trustworthy only as 17 letters and digits.
CREATE OR REPLACE FUNCTION rules.clean_vin(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(upper(btrim(value)), '')
$$;

CREATE OR REPLACE FUNCTION rules.is_valid_vin(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT octet_length(btrim(value)) = 17 AND value ~ '^\s*[A-Za-z0-9]+\s*$'
$$;

-- Odometer (miles): a whole number below 10^9; negative or non-numeric is unreadable.
-- (Plain regular expressions: bounded repeats like {1,9} are several times slower in PostgreSQL;
-- the casts accept the surrounding blanks the expression lets through.)
CREATE OR REPLACE FUNCTION rules.parse_miles(value text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN value ~ '^\s*[0-9]+\s*$' THEN CASE WHEN value::numeric < 1e9 THEN value::integer END END
$$;

-- Prices (mmr, selling price): dollars, cents allowed (rounded to 2 decimals), below 10^13;
-- negative or non-numeric is unreadable.
CREATE OR REPLACE FUNCTION rules.parse_money(value text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN btrim(value) ~ '^[0-9]+$' OR btrim(value) ~ '^[0-9]*\.[0-9]+$' THEN
                CASE WHEN octet_length(split_part(btrim(value), '.', 1)) <= 13
                     THEN btrim(value)::numeric(15, 2) END
           END
$$;

-- Why a present number could not be read: `negative` or `not_a_number` (the suffix of a reason code).
CREATE OR REPLACE FUNCTION rules.number_defect(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN btrim(value) ~ '^-[0-9]*\.?[0-9]+$' THEN 'negative' ELSE 'not_a_number' END
$$;

-- The run's raw lines as logical records: a shifted line gets its fields moved back one place and its
-- trim rejoined (`SE PZEV w/Connectivity` + `, ` + `Navitgation`). Its sale date is the 17th field
-- when the line had one (`_extra_field`, repair `split_trim_17_fields`); on the 16-field variant
-- (repair `shifted_16_fields`) it is unknown (NULL: a 16-field reader dropped it). Each line carries
-- its batch's lineage (one row of meta.ingested_files) and its physical address (partition, ctid).
-- Inlined by PostgreSQL into the queries that read it, so the batch ids prune raw.car_prices to the
-- run's partitions. (The partition was added to its result with migration 0005, the repair and the
-- 17th field with 0006: CREATE OR REPLACE cannot do that.)
DROP FUNCTION IF EXISTS rules.repaired_lines(bigint[]);
CREATE OR REPLACE FUNCTION rules.repaired_lines(batch_ids bigint[])
RETURNS TABLE (
    raw_table oid, raw_ctid tid, batch_id bigint, run_id uuid, source_file text, source_sha256 text,
    line_number bigint, repaired boolean, repair text, extra_field text, year text, make text, model text, "trim" text, body text, transmission text, vin text,
    state text, condition text, odometer text, color text, interior text, seller text, mmr text,
    sellingprice text, saledate text
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.tableoid, r.ctid, r._batch_id, f.run_id, f.source_file, f.sha256, r._line_number, s.shifted,
           CASE WHEN r._extra_field IS NOT NULL THEN 'split_trim_17_fields'
                WHEN s.shifted THEN 'shifted_16_fields' END,
           r._extra_field, r.year, r.make, r.model,
           CASE WHEN s.shifted THEN concat_ws(', ', r.trim, r.body) ELSE r.trim END,
           CASE WHEN s.shifted THEN r.transmission ELSE r.body END,
           CASE WHEN s.shifted THEN r.vin ELSE r.transmission END,
           CASE WHEN s.shifted THEN r.state ELSE r.vin END,
           CASE WHEN s.shifted THEN r.condition ELSE r.state END,
           CASE WHEN s.shifted THEN r.odometer ELSE r.condition END,
           CASE WHEN s.shifted THEN r.color ELSE r.odometer END,
           CASE WHEN s.shifted THEN r.interior ELSE r.color END,
           CASE WHEN s.shifted THEN r.seller ELSE r.interior END,
           CASE WHEN s.shifted THEN r.mmr ELSE r.seller END,
           CASE WHEN s.shifted THEN r.sellingprice ELSE r.mmr END,
           CASE WHEN s.shifted THEN r.saledate ELSE r.sellingprice END,
           CASE WHEN s.shifted THEN r._extra_field ELSE r.saledate END
      FROM raw.car_prices r
      JOIN meta.ingested_files f ON f.batch_id = r._batch_id
     CROSS JOIN LATERAL (SELECT r._extra_field IS NOT NULL OR rules.is_shifted(r.state, r.vin) AS shifted) s
     WHERE r._batch_id = ANY (batch_ids)
$$;
