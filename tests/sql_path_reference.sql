-- Checksums of everything a transform publishes, but what differs between two runs of the same
-- file (run ids, batch ids, timestamps): the dimensions whole, the facts and quarantined lines by
-- natural key. Text forms are fixed by the session's TimeZone (UTC). Used by sql_path_reference.py.

-- name: dim_make
SELECT count(*), md5(string_agg(d::text, '|' ORDER BY make_id)) FROM staging.dim_make d

-- name: dim_transmission
SELECT count(*), md5(string_agg(d::text, '|' ORDER BY transmission_id)) FROM staging.dim_transmission d

-- name: dim_state
SELECT count(*), md5(string_agg(d::text, '|' ORDER BY state_id)) FROM staging.dim_state d

-- name: dim_color
SELECT count(*), md5(string_agg(d::text, '|' ORDER BY color_id)) FROM staging.dim_color d

-- name: dim_seller
SELECT count(*), md5(string_agg(d::text, '|' ORDER BY seller_id)) FROM staging.dim_seller d

-- name: fact_car_sales
SELECT count(*),
       md5(string_agg((f.sale_id, f.make_id, f.model, f.trim, f.body, f.transmission_id, f.vin, f.state_id,
                       f.condition, f.odometer, f.exterior_color_id, f.interior_color_id, f.mmr,
                       f.selling_price, f.sale_date, f.seller_id, f.model_year, f.repaired, f.repair,
                       f.source_sha256, f.line_number)::text, '|' ORDER BY f.sale_id))
  FROM staging.fact_car_sales f

-- name: quarantined_sales
SELECT count(*),
       md5(string_agg((q.source_sha256, q.line_number, q.source_file, q.year, q.make, q.model, q.trim, q.body,
                       q.transmission, q.vin, q.state, q.condition, q.odometer, q.color, q.interior, q.seller,
                       q.mmr, q.sellingprice, q.saledate, q.extra_field, q.repaired, q.repair, q.reasons)::text, '|'
                      ORDER BY q.source_sha256, q.line_number))
  FROM staging.quarantined_sales q
