"""The pipeline's stages, one package each: setup, ingest, transform. No stage imports another."""
