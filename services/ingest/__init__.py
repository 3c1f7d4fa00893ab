"""Ingest stage: streams CSV files into raw.car_prices losslessly, with lineage, rejects, idempotency."""
