-- Measures taken after the run's rows were written, inside the publishing transaction: if a
-- blocking check fails here, the transaction is rolled back and readers never see the run.

-- name: raw_lines
-- The run's lines as they are in raw (counted there, not in the work tables), and how many of them
-- had 17 fields (a split trim, its 17th field in _extra_field): one raw row and one line each.
SELECT count(*) AS lines, count(_extra_field) AS split_trim_lines
  FROM raw.car_prices WHERE _batch_id = ANY (:batch_ids)

-- name: quarantined_lines
-- Lines of the run's files now in the quarantine.
SELECT count(*) FROM staging.quarantined_sales WHERE source_sha256 = ANY (:source_sha256s)

-- name: unresolved_keys
-- Trusted lines of the run whose dimension keys have no dimension row.
SELECT count(*) FILTER (WHERE s.make_id IS NOT NULL AND m.make_id IS NULL)
     + count(*) FILTER (WHERE s.transmission_id IS NOT NULL AND t.transmission_id IS NULL)
     + count(*) FILTER (WHERE st.state_id IS NULL)
     + count(*) FILTER (WHERE s.exterior_color_id IS NOT NULL AND e.color_id IS NULL)
     + count(*) FILTER (WHERE s.interior_color_id IS NOT NULL AND i.color_id IS NULL)
     + count(*) FILTER (WHERE se.seller_id IS NULL) AS unresolved
  FROM meta.transform_sales s
  LEFT JOIN staging.dim_make m ON m.make_id = s.make_id
  LEFT JOIN staging.dim_transmission t ON t.transmission_id = s.transmission_id
  LEFT JOIN staging.dim_state st ON st.state_id = s.state_id
  LEFT JOIN staging.dim_color e ON e.color_id = s.exterior_color_id
  LEFT JOIN staging.dim_color i ON i.color_id = s.interior_color_id
  LEFT JOIN staging.dim_seller se ON se.seller_id = s.seller_id
 WHERE s.reasons = ''

-- name: duplicate_keys
-- Dimension rows that break the natural-key rules: two rows for one make spelled differently (case,
-- or an alias that was not mapped), an unknown-value marker or blank as a value, or an id that is not
-- the name-based uuid of its natural key (so another worker would compute another id).
SELECT (SELECT count(*) - count(DISTINCT lower(make_name)) FROM staging.dim_make)
     + (SELECT count(*) FROM staging.dim_make d JOIN meta.ref_make_alias a ON a.alias = lower(d.make_name)
         WHERE a.make_name <> d.make_name)
     + (SELECT count(*) FROM staging.dim_make WHERE make_id <> rules.name_uuid('make:' || make_name))
     + (SELECT count(*) FROM staging.dim_transmission
         WHERE transmission_id <> rules.name_uuid('transmission:' || transmission_type)
            OR rules.clean_text(transmission_type) IS DISTINCT FROM transmission_type)
     + (SELECT count(*) FROM staging.dim_state WHERE state_id <> rules.name_uuid('state:' || state_code))
     + (SELECT count(*) FROM staging.dim_color
         WHERE color_id <> rules.name_uuid('color:' || color_name)
            OR rules.clean_text(color_name) IS DISTINCT FROM color_name)
     + (SELECT count(*) FROM staging.dim_seller
         WHERE seller_id <> rules.name_uuid('seller:' || seller_name)
            OR rules.clean_text(seller_name) IS DISTINCT FROM seller_name) AS duplicates
