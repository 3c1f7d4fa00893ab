"""Transform stage: turns the raw batches of a run into the star schema in `staging`.

Cleaning rules are SQL functions in sql/rules.sql (reference data in reference/), the work and
publish steps are set-based SQL in sql/, run from job.py in one transaction with quality checks
(checks.py). See docs/transform.md.
"""
