-- Measures of the run's work table, taken before anything is published (one parallel pass).
-- services/transform/checks.py turns them into quality checks with their thresholds.
SELECT count(*) AS lines,
       count(*) FILTER (WHERE reasons = '') AS trusted,
       count(*) FILTER (WHERE reasons <> '') AS quarantined,
       count(*) FILTER (WHERE repaired) AS repaired,
       count(*) FILTER (WHERE repair = 'split_trim_17_fields') AS repaired_split_trim,
       -- trusted lines missing a required field: the rules quarantine them, so this must stay 0
       count(*) FILTER (WHERE reasons = '' AND (vin IS NULL OR state_id IS NULL OR seller_id IS NULL
                                                 OR mmr IS NULL OR selling_price IS NULL OR model_year IS NULL
                                                 OR (sale_date IS NULL
                                                     AND repair IS DISTINCT FROM 'shifted_16_fields')))
           AS required_null,
       count(*) FILTER (WHERE reasons = '' AND NOT rules.sale_date_plausible(sale_date)) AS sale_date_out_of_range,
       min(sale_date) FILTER (WHERE reasons = '') AS first_sale_date,
       max(sale_date) FILTER (WHERE reasons = '') AS last_sale_date,
       -- suspicious but possible values: published, and counted
       count(*) FILTER (WHERE reasons = '' AND (selling_price < :suspicious_price OR mmr < :suspicious_price))
           AS suspicious_prices,
       count(*) FILTER (WHERE reasons = '' AND (odometer <= :suspicious_odometer_low
                                                 OR odometer >= :suspicious_odometer_high)) AS suspicious_odometers,
       -- missing values the facts keep as NULL
       count(*) FILTER (WHERE reasons = '' AND make_id IS NULL) AS missing_make,
       count(*) FILTER (WHERE reasons = '' AND model IS NULL) AS missing_model,
       count(*) FILTER (WHERE reasons = '' AND "trim" IS NULL) AS missing_trim,
       count(*) FILTER (WHERE reasons = '' AND body IS NULL) AS missing_body,
       count(*) FILTER (WHERE reasons = '' AND transmission_id IS NULL) AS missing_transmission,
       count(*) FILTER (WHERE reasons = '' AND exterior_color_id IS NULL) AS missing_exterior_color,
       count(*) FILTER (WHERE reasons = '' AND interior_color_id IS NULL) AS missing_interior_color,
       count(*) FILTER (WHERE reasons = '' AND condition IS NULL) AS missing_condition,
       count(*) FILTER (WHERE reasons = '' AND odometer IS NULL) AS missing_odometer,
       count(*) FILTER (WHERE reasons = '' AND sale_date IS NULL) AS missing_sale_date
  FROM meta.transform_sales
