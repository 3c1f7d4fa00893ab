"""The worker transform publishes exactly what the SQL transform it replaced published.

tests/sql_path_reference.json holds checksums of every published table (dimensions whole; facts and
quarantined lines by natural key, without run ids or timestamps) after the SQL transform ran on
data/sample.csv; tests/sql_path_reference.py says how it was produced (from a commit that still had
the SQL transform). Here the same file goes through the real ingest and the worker transform, in
one chunk and in several, and every checksum must match.
"""

import dataclasses
import json
import shutil
import uuid

import psycopg2
import pytest

from shared import config, db, ledger, stage
from tests.conftest import ROOT
from tests.sql_path_reference import REFERENCE, checksums, sha256
from tests.test_transform import run_jobs

SAMPLE = ROOT / "data" / "sample.csv"


@pytest.mark.parametrize("chunk_rows", [100_000, 1_000], ids=["one-chunk", "five-chunks"])
def test_worker_transform_publishes_what_the_sql_transform_published(
    clean_db, data_dir, monkeypatch, chunk_rows
):
    reference = json.loads(REFERENCE.read_text())
    assert reference["sample_sha256"] == sha256(SAMPLE), (
        "data/sample.csv changed since the reference was made: run tests/sql_path_reference.py again "
        f"(it was made by: {reference['produced_by']})"
    )
    monkeypatch.setattr(
        stage, "settings", lambda: dataclasses.replace(config.settings(), transform_chunk_rows=chunk_rows)
    )
    path = data_dir / "sample.csv"
    shutil.copy(SAMPLE, path)
    run_id = str(uuid.uuid4())
    with db.engine().begin() as conn:
        ledger.create_run(
            conn,
            run_id,
            [str(path)],
            [ledger.PlannedJob("ingest", str(path), "eq-ingest"), ledger.PlannedJob("transform", "", "eq-t")],
        )
    from services.ingest.job import ingest_file

    ingest_file(run_id=run_id, path=str(path))
    result = run_jobs(clean_db, run_id)
    assert result["chunks"] == -(-result["rows_in"] // chunk_rows)

    conn = psycopg2.connect(config.settings().database_url)
    try:
        published = checksums(conn)
    finally:
        conn.close()
    assert published == reference["tables"]
