"""The ingest stage as an RQ job: one source file per job, loaded in one transaction.

Steps: confine and hash the file; take an advisory lock on its hash (two runs of the same file
load it once); skip it if that content was loaded before (unless --force); stream it through
COPY into the batch's own new partition of raw.car_prices (partition.py), then its few 17-field
split-trim records (a second COPY into the same partition) and its rejects; attach the partition;
record the batch and the stage's success in the same transaction.
A crash at any point leaves nothing of the file visible, and a retry loads it whole.

No ANALYZE of raw here: it samples the whole table (its cost a file is in docs/performance.md,
and concurrent ANALYZEs queue on one lock); the transform analyzes the work tables it builds from
a run's batches, and autovacuum keeps raw's statistics.
"""

import csv
import gzip
import hashlib
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.ingest import partition
from services.ingest.reader import CopyFeed, Counts, RecordSplitter, Reject, read_header
from shared.db import act_as_pipeline, dbapi_cursor, xact_lock
from shared.errors import BadInputError
from shared.sources import confine
from shared.sqlfile import load_dbapi_queries
from shared.stage import StageContext, stage_job

Q = load_dbapi_queries(Path(__file__).with_name("ingest.sql"))
GZIP_MAGIC = b"\x1f\x8b"
COPY_READ_SIZE = 1 << 20


def _open_source(ctx: StageContext, path: str) -> tuple[Path, int]:
    """The checked path and its size; every refusal names the file and the reason."""
    source = confine(path, ctx.settings.data_dir)
    if not source.exists():
        raise BadInputError(f"{path}: no such file")
    if not source.is_file():
        raise BadInputError(f"{path}: not a regular file")
    try:
        size = source.stat().st_size
        with source.open("rb"):
            pass
    except PermissionError:
        raise BadInputError(f"{path}: permission denied") from None
    return source, size


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _open_text_stream(path: Path):
    """The file's bytes, decompressed if it is gzip (.csv.gz), buffered for line reads."""
    raw = path.open("rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.close()
        return gzip.open(path, "rb")
    raw.seek(0)
    return io.BufferedReader(raw, buffer_size=COPY_READ_SIZE)


class RejectSpool:
    """Rejects are kept in a temporary file while COPY owns the connection, then COPYed in."""

    def __init__(self, file):
        self.file = file
        self.writer = csv.writer(file)

    def add(self, reject: Reject) -> None:
        self.writer.writerow([reject.line_number, reject.line_count, "\\x" + reject.raw.hex(), reject.reason])

    def copy_into(self, cur) -> None:
        self.file.seek(0)
        cur.copy_expert(Q["copy_rejects"], self.file, size=COPY_READ_SIZE)


def _find_previous(cur, sha256: str):
    """The first load of this content, if any, under a lock held until commit: the same content
    enqueued twice at once is loaded once."""
    xact_lock(cur, f"carsales:ingest:{sha256}")
    cur.execute(Q["previous_load"], {"sha256": sha256})
    return cur.fetchone()


def _skip(ctx: StageContext, conn, previous, sha256: str, size: int) -> None:
    batch_id, first_run, _, records, _, _ = previous
    ctx.log.info("file already ingested", batch_id=batch_id, first_run=str(first_run), records=records)
    ctx.succeed(
        conn,
        rows_in=records,
        rows_out=0,
        rows_rejected=0,
        reason="already ingested",
        sha256=sha256,
        bytes=size,
        previous_batch_id=batch_id,
        previous_run_id=str(first_run),
    )


@stage_job("ingest", task_arg="path")
def ingest_file(ctx: StageContext, run_id: str, path: str, force: bool = False) -> None:
    started = time.perf_counter()
    source, size = _open_source(ctx, path)
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as hasher,
        ctx.engine.begin() as conn,
    ):
        # The content hash (identity and idempotency) is computed beside the load, not before it:
        # hashlib releases the GIL, so it costs the load nothing. A file of a size never loaded
        # cannot be content loaded before; only a known size waits for the hash before loading.
        hashing = hasher.submit(_sha256, source)
        cur = dbapi_cursor(conn)
        sha256 = previous = None
        cur.execute(Q["size_seen"], {"size_bytes": size})
        if cur.fetchone():
            sha256 = hashing.result()
            previous = _find_previous(cur, sha256)
            if previous and not force:
                return _skip(ctx, conn, previous, sha256, size)
        # A savepoint: a load that turns out to repeat content loaded meanwhile is undone alone.
        load = conn.begin_nested()
        params = {
            "run_id": run_id,
            "source_file": source.name,
            "source_path": str(source),
            "size_bytes": size,
        }
        cur.execute(Q["new_batch"], params)
        batch_id = cur.fetchone()[0]
        act_as_pipeline(conn)  # the batch's partition belongs to pipeline, as raw does
        table = partition.create(cur, batch_id)

        counts = Counts()
        with (
            tempfile.SpooledTemporaryFile(
                max_size=8 << 20, mode="w+", encoding="utf-8", newline=""
            ) as spool_file,
            # COPY input of the split-trim records, kept apart while the main COPY runs (a few lines
            # in a real file; spooled to disk if a file had many).
            tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b") as split_trims,
            _open_text_stream(source) as stream,
        ):
            spool = RejectSpool(spool_file)
            read_header(stream, path)
            splitter = RecordSplitter(stream, counts, spool.add, split_trims.write)
            feed = CopyFeed(splitter.chunks())
            cur.copy_expert(partition.copy_statement(table), feed, size=COPY_READ_SIZE)
            if feed.error is not None:
                raise BadInputError(
                    f"{path}: line {splitter.next_line}: cannot read the file: {feed.error}"
                ) from feed.error
            if sha256 is None:
                sha256 = hashing.result()
                previous = _find_previous(cur, sha256)
                if previous and not force:
                    load.rollback()  # a concurrent run committed the same content first
                    return _skip(ctx, conn, previous, sha256, size)
            ctx.log.info("file hashed", sha256=sha256, bytes=size)
            cur.execute(Q["set_lineage"], {**params, "sha256": sha256, "batch_id": str(batch_id)})
            if counts.split_trim:
                split_trims.seek(0)
                cur.copy_expert(partition.copy_split_trim_statement(table), split_trims, size=COPY_READ_SIZE)
            if counts.rejected:
                spool.copy_into(cur)
        partition.attach(cur, batch_id)
        load.commit()
        seconds = time.perf_counter() - started
        cur.execute(
            Q["close_batch"],
            {
                "batch_id": batch_id,
                "sha256": sha256,
                "forced": bool(previous),
                "records": counts.records,
                "loaded": counts.loaded,
                "rejected": counts.rejected,
                "seconds": round(seconds, 3),
            },
        )
        rate = round(counts.loaded / seconds) if seconds else None
        ctx.succeed(
            conn,
            rows_in=counts.records,
            rows_out=counts.loaded,
            rows_rejected=counts.rejected,
            # among rows_out: lines of 17 fields with a known split trim, the 17th in _extra_field
            rows_split_trim=counts.split_trim,
            batch_id=batch_id,
            sha256=sha256,
            bytes=size,
            seconds=round(seconds, 3),
            rows_per_second=rate,
            reject_reasons=counts.reasons,
            forced=bool(previous),
        )
    ctx.log.info(
        "file ingested",
        batch_id=batch_id,
        rows=counts.loaded,
        rejected=counts.rejected,
        split_trim=counts.split_trim,
        bytes=size,
        seconds=round(seconds, 3),
        rows_per_second=rate,
    )
