"""Where the ingest stage's time goes: the Python side and the PostgreSQL side, measured apart.

bench.py times the ingest job as a whole. This script takes the job apart on the same sample file,
on the scratch database `carsales_bench` (created here if missing, its tables replaced):

* Python: sha256 of the file, and the record splitter (services/ingest/reader.py) with no database;
* PostgreSQL: COPY of the splitter's exact output (saved to a file first, so no Python runs while
  COPY is timed) into tables that add one feature of raw.car_prices at a time:
      unlogged   line number + 16 text columns, UNLOGGED (the floor, plus the line number)
      logged     the same, logged (what WAL costs)
      batch_only + _batch_id from current_setting() (if lineage lived in meta.ingested_files only)
      wide       + all six lineage columns, but constant defaults (what the wider rows cost)
      lineage    the same filled by current_setting(...) and now(): the raw.car_prices of
                 migrations 0002-0004 without its BRIN index
      raw        + the BRIN index: that raw.car_prices exactly
      partition  what the job does since migration 0005: a new partition of raw.car_prices with the
                 line number, 16 text columns and the batch id (a constant default), COPY FREEZE,
                 ATTACH (services/ingest/partition.py)
  each in one transaction as the job does it, with the WAL bytes it wrote and the table's size;
* CPU: real ingest runs through the queue (the whole file with 1 worker; the file in 4 parts with
  1 and with 2 workers), sampling the CPU seconds of the ingest workers' process trees and of the
  PostgreSQL backends serving them. On a 2-core machine, CPU seconds / (2 x wall seconds) near 1
  means the stage is CPU-bound and more workers cannot make it faster.

    .venv/bin/python benchmarks/ingest_breakdown.py benchmarks/scratch/car_prices_1x.csv [--repeat 3]

It prints one JSON document (best of --repeat for every time). If carsales_bench has no raw schema,
it runs `pipeline setup` against it first.
"""

import argparse
import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import harness
import psycopg2
from procmon import cpu_seconds, descendants
from rq import Worker

from services.ingest import partition
from services.ingest.reader import Counts, RecordSplitter, read_header
from shared.dataset import HEADER

COPY_COLUMNS = "_line_number, " + ", ".join(HEADER)
LINEAGE = {
    "pipeline.batch_id": "1",
    "pipeline.run_id": "00000000-0000-0000-0000-000000000001",
    "pipeline.source_file": "car_prices.csv",
    "pipeline.source_sha256": "0" * 64,
}


def timed(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def split(path: Path, out: Path | None) -> Counts:
    """Run the ingest splitter over the file; write its COPY input to `out` if given."""
    counts = Counts()
    with path.open("rb") as stream:
        read_header(stream, str(path))
        # rejects and the few 17-field split-trim records are not part of the main COPY measured here
        chunks = RecordSplitter(stream, counts, lambda reject: None, lambda record: None).chunks()
        if out is None:
            for _ in chunks:
                pass
        else:
            with out.open("wb") as f:
                for chunk in chunks:
                    f.write(chunk)
    return counts


LINEAGE_DEFAULTS = (  # raw.car_prices before migration 0005: the lineage on every row
    "_batch_id bigint NOT NULL DEFAULT current_setting('pipeline.batch_id')::bigint, "
    "_run_id uuid NOT NULL DEFAULT current_setting('pipeline.run_id')::uuid, "
    "_source_file text NOT NULL DEFAULT current_setting('pipeline.source_file'), "
    "_source_sha256 text NOT NULL DEFAULT current_setting('pipeline.source_sha256'), "
    "_ingested_at timestamptz NOT NULL DEFAULT now()"
)
WIDE_DEFAULTS = (  # the same values as constants
    f"_batch_id bigint NOT NULL DEFAULT 1, _run_id uuid NOT NULL DEFAULT '{LINEAGE['pipeline.run_id']}', "
    f"_source_file text NOT NULL DEFAULT '{LINEAGE['pipeline.source_file']}', "
    f"_source_sha256 text NOT NULL DEFAULT '{LINEAGE['pipeline.source_sha256']}', "
    "_ingested_at timestamptz NOT NULL DEFAULT '2015-01-01 00:00:00+00'"
)


def table_ddl(variant: str) -> list[str]:
    plain = "_line_number bigint NOT NULL, " + ", ".join(f"{name} text" for name in HEADER)
    if variant == "unlogged":
        return [f"CREATE UNLOGGED TABLE breakdown_t ({plain})"]
    if variant == "logged":
        return [f"CREATE TABLE breakdown_t ({plain})"]
    if variant == "batch_only":
        return [
            f"CREATE TABLE breakdown_t ({plain}, "
            "_batch_id bigint NOT NULL DEFAULT current_setting('pipeline.batch_id')::bigint)"
        ]
    if variant == "wide":
        return [f"CREATE TABLE breakdown_t ({plain}, {WIDE_DEFAULTS})"]
    if variant == "lineage":  # raw.car_prices before migration 0005, without its BRIN index
        return [f"CREATE TABLE breakdown_t ({plain}, {LINEAGE_DEFAULTS})"]
    # raw: raw.car_prices before migration 0005
    return [
        f"CREATE TABLE breakdown_t ({plain}, {LINEAGE_DEFAULTS})",
        "CREATE INDEX ON breakdown_t USING brin (_batch_id)",
    ]


def copy_variant(variant: str, data: Path) -> dict:
    """COPY the splitter's output into a fresh table of this variant, in one transaction.

    `partition` is what the ingest job does since migration 0005 (services/ingest/partition.py):
    a new partition of raw.car_prices (here in carsales_bench), COPY FREEZE, ATTACH; dropped after.
    """
    harness.sql("DROP TABLE IF EXISTS breakdown_t")
    if variant != "partition":
        for statement in table_ddl(variant):
            harness.sql(statement)
    harness.checkpoint()
    batch_id = 900_000_000  # far above the benchmark's own batches
    table_name = f"raw.{partition.partition_name(batch_id)}" if variant == "partition" else "breakdown_t"
    conn = psycopg2.connect(harness.BENCH_DATABASE_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()")
            (lsn_before,) = cur.fetchone()
            conn.commit()
            started = time.perf_counter()
            for name, value in LINEAGE.items():
                cur.execute("SELECT set_config(%s, %s, true)", (name, value))
            with data.open("rb") as f:
                if variant == "partition":
                    table = partition.create(cur, batch_id)
                    cur.copy_expert(partition.copy_statement(table), f, size=1 << 20)
                    partition.attach(cur, batch_id)
                else:
                    cur.copy_expert(
                        f"COPY breakdown_t ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)", f, size=1 << 20
                    )
            conn.commit()
            seconds = time.perf_counter() - started
            cur.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s), pg_total_relation_size(%s)",
                (lsn_before, table_name),
            )
            wal, size = cur.fetchone()
            if variant == "partition":
                cur.execute(f"DROP TABLE {table_name}")
            conn.commit()
    finally:
        conn.close()
    return {"seconds": seconds, "wal_bytes": int(wal), "table_bytes": int(size)}


def rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: rounded(v) for key, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


class CpuSampler:
    """CPU seconds used by the ingest workers' children (their work horses, which start at zero
    CPU when forked; the worker process itself only waits) and by the PostgreSQL backends of
    carsales_bench whose application is an ingest worker, while the block runs."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.python: dict[int, float] = {}
        self.postgres: dict[int, float] = {}
        self.waits: dict[str, int] = {}  # what the ingest backends were doing, per sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self, conn) -> None:
        for worker in Worker.all(connection=harness.redis_conn()):
            if worker.name.startswith("ingest-") and worker.pid:
                for pid in descendants(worker.pid)[1:]:  # not the worker itself
                    self.python[pid] = max(self.python.get(pid, 0.0), cpu_seconds(pid))
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (harness.BENCH_DB, "carsales-ingest"),
            )
            for pid, state, wait_type, wait_event, query in cur.fetchall():
                self.postgres[pid] = max(self.postgres.get(pid, 0.0), cpu_seconds(pid))
                if state == "active":
                    doing = f"{wait_type}:{wait_event}" if wait_type else "running (CPU)"
                    key = f"{query.split()[0].upper()} {doing}"
                    self.waits[key] = self.waits.get(key, 0) + 1

    def _poll(self) -> None:
        conn = psycopg2.connect(host=harness.PG_HOST, user=harness.PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            while not self._stop.is_set():
                self._sample(conn)
                self._stop.wait(self.interval)
        finally:
            conn.close()

    def __enter__(self) -> "CpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ingest_cpu(label: str, sources: list[Path], workers: int) -> dict:
    """One real ingest through the queue, with the CPU its work horses and their backends used."""
    with CpuSampler() as cpu:
        run = harness.run_pipeline(label, sources, workers, with_transform=False)
    python = sum(cpu.python.values())
    postgres = sum(cpu.postgres.values())
    wall = run["seconds"]["ingest"]
    return {
        "workers": workers,
        "files": len(sources),
        "ingest_wall_seconds": wall,
        "python_cpu_seconds": python,
        "postgres_cpu_seconds": postgres,
        "cores_busy": (python + postgres) / wall if wall else None,
        "backend_samples": dict(sorted(cpu.waits.items(), key=lambda item: -item[1])),
    }


def python_and_copy(path: Path, data: Path, repeat: int) -> dict:
    """The Python side (hash, splitter) and the COPY variants, timed apart."""
    report = {}
    report["sha256_seconds"] = min(timed(sha256, path)[0] for _ in range(repeat))
    report["split_seconds"] = min(timed(split, path, None)[0] for _ in range(repeat))
    report["rows"] = split(path, data).loaded
    for variant in ("unlogged", "logged", "batch_only", "wide", "lineage", "raw", "partition"):
        runs = [copy_variant(variant, data) for _ in range(repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        report[f"copy_{variant}"] = best
    harness.sql("DROP TABLE IF EXISTS breakdown_t")
    data.unlink()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU part (real ingest runs)")
    args = parser.parse_args()
    path = args.file.resolve()
    data = harness.SCRATCH / f"{path.stem}.copy"
    subprocess.run(
        [harness.PIPELINE, "setup"],
        env=harness.pipeline_env(),
        cwd=harness.ROOT,
        check=True,
        capture_output=True,
    )

    report = {"file": path.name, "bytes": path.stat().st_size}
    if not args.cpu_only:
        report.update(python_and_copy(path, data, args.repeat))
    parts = harness.split_file(path, 4, harness.SCRATCH / f"parts-{path.stem}")
    report["cpu"] = [
        ingest_cpu("cpu-whole", [path], 1),
        ingest_cpu("cpu-parts-1w", parts, 1),
        ingest_cpu("cpu-parts-2w", parts, 2),
    ]
    print(json.dumps(rounded(report), indent=2))


if __name__ == "__main__":
    main()
