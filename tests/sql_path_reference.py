"""Checksums of what the SQL transform (the one that ran inside PostgreSQL, before the transform
moved into the workers) published for data/sample.csv: the reference test_transform_equivalence.py
holds the worker transform to.

The SQL path is gone from the tree; this script runs it from a commit that still had it:

    .venv/bin/python tests/sql_path_reference.py --commit <commit> [--sample data/sample.csv]

It extracts the commit with `git archive` into a temporary folder, creates a scratch database on
TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432), runs that tree's setup, ingest and
transform inline (no workers: the jobs are called as a worker would call them), computes CHECKSUMS
below over staging, and writes tests/sql_path_reference.json with the commit and the sample's
SHA-256. The test refuses to compare against a reference made from another sample.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.sqlfile import load_queries

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).with_name("sql_path_reference.json")

# What is compared (tests/sql_path_reference.sql): one checksum query per published table.
CHECKSUMS = load_queries(Path(__file__).with_name("sql_path_reference.sql"))

# Run inside the extracted tree: ingest the sample and transform it, as workers would.
_DRIVER = """
import sys, uuid
from shared import db, ledger
from services.ingest.job import ingest_file
from services.transform import job
run_id, path = str(uuid.uuid4()), sys.argv[1]
plan = [ledger.PlannedJob("ingest", path, "ref-ingest"), ledger.PlannedJob("transform", "", "ref-transform")]
with db.engine().begin() as conn:
    ledger.create_run(conn, run_id, [path], plan)
ingest_file(run_id=run_id, path=path)
result = job.transform_run(run_id=run_id)
assert result.get("rows_in"), result
"""


def checksums(conn) -> dict:
    """CHECKSUMS over the database of `conn` (a psycopg2 connection)."""
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        out = {}
        for table, query in CHECKSUMS.items():
            cur.execute(query)
            count, digest = cur.fetchone()
            out[table] = {"rows": count, "md5": digest}
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    import psycopg2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", required=True, help="a commit whose transform is the SQL one")
    parser.add_argument("--sample", default=str(ROOT / "data" / "sample.csv"))
    args = parser.parse_args()
    sample = Path(args.sample).resolve()
    commit = subprocess.run(
        ["git", "rev-parse", args.commit], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    base = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
    database = f"carsales_sqlref_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        env = {
            **os.environ,
            "PYTHONPATH": tree,
            "DATABASE_URL": f"{base}/{database}",
            "DATA_DIR": str(sample.parent),
            "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("SETUP_DATABASE_URL", None)
        try:
            run = [sys.executable, "-c", "from shared.cli import main; main()", "setup"]
            subprocess.run(run, cwd=tree, env=env, check=True, capture_output=True)
            subprocess.run([sys.executable, "-c", _DRIVER, str(sample)], cwd=tree, env=env, check=True)
            conn = psycopg2.connect(f"{base}/{database}")
            try:
                result = checksums(conn)
            finally:
                conn.close()
        finally:
            admin = psycopg2.connect(f"{base}/postgres")
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.close()
    REFERENCE.write_text(
        json.dumps(
            {
                "produced_by": f"tests/sql_path_reference.py --commit {commit}",
                "commit": commit,
                "sample": str(sample.relative_to(ROOT)),
                "sample_sha256": sha256(sample),
                "tables": result,
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
