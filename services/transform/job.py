"""The transform stage as RQ jobs: a run's raw batches (or the whole raw history) to the star schema.

A run's transform is three kinds of job, chained through RQ (shared/queues.py):

1. plan (`transform_run`, `rebuild_staging`): cuts the run's batches into chunks, page ranges of
   their raw partitions of about TRANSFORM_CHUNK_ROWS lines; creates the run's work partitions
   (work.py), records one ledger job per chunk plus the publish, and enqueues them.
2. chunk (`transform_chunk`), any number at once on any number of workers: COPYs its raw lines out
   of PostgreSQL, cleans them with the rules (clean.py, rules.py) and COPYs its typed sales,
   quarantined lines and dimension rows into the work tables, committed with its ledger entry:
   a retried chunk redoes its own rows only.
3. publish (`publish_run`), once every chunk succeeded, in one transaction under the advisory
   lock `carsales:transform` (two runs clean at the same time; they publish one after the other):
   the quality checks over the chunks' results (checks.py), then the models (sql/models/:
   dimensions, facts, quarantine), the checks of what was written, the marts refreshed from it
   (marts.py, with their checks), the quality results and the stage's success, committed together.

Readers see all of a run or nothing of it. When a blocking check fails, the transaction is rolled
back, the quality results are written in a transaction of their own, and QualityCheckFailed names
the check (the stage wrapper fails the run, without retrying); the work rows stay for a retry.
"""

import io
import json
import math
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg2 import sql
from sqlalchemy.engine import Connection

from services.transform import checks, clean, marts, pgbinary, work
from shared import ledger, queues
from shared.dataset import HEADER
from shared.db import act_as_pipeline, dbapi_cursor, xact_lock
from shared.errors import QualityCheckFailed, RunCancelled
from shared.sqlfile import load_queries
from shared.stage import StageContext, stage_job

LOCK = "carsales:transform"
SQL = Path(__file__).parent / "sql"
# pyarrow's default allocator (mimalloc) keeps what a chunk freed for later; a work horse lives for
# one chunk, so the system allocator, which gives memory back, keeps its peak lower.
pa.set_memory_pool(pa.system_memory_pool())


def _queries(path: Path) -> dict[str, sa.TextClause]:
    return {name: sa.text(text) for name, text in load_queries(path).items()}


PLAN = _queries(SQL / "plan.sql")
CHUNK = _queries(SQL / "chunk.sql")
PUBLISH = _queries(SQL / "publish.sql")
CHECKS_PUBLISHED = _queries(SQL / "checks" / "published.sql")
QUARANTINE = _queries(SQL / "models" / "quarantined_sales.sql")
# The lines of the run's files that have a partition already, added to it (the others are attached).
FACTS = sa.text((SQL / "models" / "fact_car_sales.sql").read_text(encoding="utf-8"))
# Each dimension's model: `insert` (from the chunks' work.dimension_rows) and `rows` (what it holds).
MODELS = {d.table: _queries(SQL / "models" / f"{d.table}.sql") for d in clean.DIMENSIONS}
DIMENSIONS = {table: model["insert"] for table, model in MODELS.items()}


class _Blocked(Exception):
    """A blocking quality check failed: carries every result, to be saved after the rollback."""

    def __init__(self, results: list[checks.QualityResult]):
        super().__init__(next(r for r in results if r.failed).message())
        self.results = results


class _Steps:
    """Times each step, logs it and keeps the seconds for the stage's details."""

    def __init__(self, log):
        self.log = log
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        counted: dict = {}
        started = time.perf_counter()
        yield counted
        seconds = round(time.perf_counter() - started, 3)
        self.seconds[name] = seconds
        self.log.info("transform step", step=name, seconds=seconds, **counted)


def _bound(conn: Connection, statement: sa.TextClause, params: dict) -> str:
    """A statement with its parameters inlined by the driver, for COPY (which takes none)."""
    compiled = statement.compile(dialect=conn.dialect)
    return dbapi_cursor(conn).mogrify(str(compiled), compiled.construct_params(params)).decode()


# --- 1. plan ---------------------------------------------------------------------------------------


@stage_job("transform")
def transform_run(ctx: StageContext, run_id: str) -> None:
    """Plan the transform of the run's batches: one chunk job per slice, then the publish."""
    _plan(ctx, run_id, rebuild=False)


@stage_job("transform")
def rebuild_staging(ctx: StageContext, run_id: str) -> None:
    """Plan re-deriving all of staging from every batch in raw (after a rule changed); the publish
    replaces staging atomically."""
    _plan(ctx, run_id, rebuild=True)


def _plan(ctx: StageContext, run_id: str, rebuild: bool) -> None:
    size = ctx.settings.transform_chunk_rows
    with ctx.engine.begin() as conn:
        act_as_pipeline(conn)  # the work partitions belong to `pipeline`, whoever runs the worker
        batches = conn.execute(PLAN["all_batches" if rebuild else "run_batches"], {"run_id": run_id}).all()
        chunks, files = [], []
        for batch in batches:
            if not batch.rows_loaded:
                continue
            files.append(batch.sha256)
            pages = conn.execute(PLAN["batch_pages"], {"batch_id": batch.batch_id}).scalar() or 0
            count = max(1, min(math.ceil(batch.rows_loaded / size), pages))
            for i in range(count):
                chunks.append((batch.batch_id, pages * i // count, pages * (i + 1) // count))
        work.create(conn, run_id, files)
        for number, (batch_id, first, end) in enumerate(chunks, start=1):
            params = {"run_id": run_id, "chunk": number, "batch_id": batch_id, "first_page": first}
            conn.execute(PLAN["insert_chunk"], {**params, "end_page": end})
        jobs = queues.transform_jobs(ctx.job_id, len(chunks))
        ledger.add_jobs(conn, run_id, jobs)
        lines = sum(b.rows_loaded for b in batches)
        ctx.log.info("transform planned", batches=len(batches), chunks=len(chunks), lines=lines)
        ctx.succeed(
            conn, rows_in=lines, rows_out=0, rows_rejected=0, batches=len(batches), chunks=len(chunks)
        )
    # After the commit: a chunk job finds its ledger entry and its chunk. Should Redis fail here, the
    # sweeper fails the run ("job lost") and `pipeline retry` enqueues the chunks again.
    queues.enqueue_plan(queues.RunSpec(run_id=run_id, sources=[], kind="rebuild" if rebuild else "run"), jobs)


# --- 2. chunk --------------------------------------------------------------------------------------

_RAW_COLUMNS = ("_line_number", *HEADER, "_extra_field")
# One reading thread: chunk jobs already run side by side, one per core, and every thread holds
# blocks of its own (a worker's memory is bounded by one chunk's columns, see docs/scaling.md).
_RAW_READ = pacsv.ReadOptions(column_names=list(_RAW_COLUMNS), block_size=1 << 20, use_threads=False)
_RAW_PARSE = pacsv.ParseOptions(newlines_in_values=True)
# An unquoted empty field is NULL, a quoted one '' (as PostgreSQL's CSV COPY wrote them).
_RAW_CONVERT = pacsv.ConvertOptions(
    column_types={"_line_number": pa.int64(), **dict.fromkeys(_RAW_COLUMNS[1:], pa.string())},
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
)
_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="needed")


@stage_job("transform", task_arg="task")
def transform_chunk(ctx: StageContext, run_id: str, task: str) -> None:
    """Clean one chunk of the run's raw lines into the work tables."""
    number = int(task.removeprefix(queues.CHUNK_TASK))
    steps = _Steps(ctx.log)
    with ctx.engine.connect() as conn, conn.begin():
        spec = conn.execute(CHUNK["chunk"], {"run_id": run_id, "chunk": number}).one()
        with steps.step("read") as counted:
            raw = _read_raw(conn, spec)
            counted["rows"] = raw.num_rows
        with steps.step("clean"):
            lineage = clean.Lineage(spec.batch_id, str(spec.run_id), spec.source_file, spec.sha256)
            cleaned = clean.clean_chunk(raw, lineage)
        with steps.step("write") as counted:
            if ctx.attempt > 1:
                # A chunk's rows commit with its success, and a chunk that succeeded is never run
                # again, so only a retry can find rows of its own (from a ledger edited by hand);
                # the first attempt spares the scan of the run's partition it would cost.
                conn.execute(CHUNK["forget_chunk"], {"run_id": run_id, "chunk": number})
                work.forget_sales(conn, run_id, spec.sha256, raw.column("_line_number").to_pylist())
            _copy_sales(conn, work.copy_sales_statement(conn, run_id, spec.sha256), cleaned.sales)
            for name, table in (
                ("copy_quarantine", cleaned.quarantine),
                ("copy_dimension_rows", cleaned.dimension_rows),
            ):
                _copy_in(conn, name, table, run_id, number)
            counted["rows"] = cleaned.sales.num_rows + cleaned.quarantine.num_rows
        ctx.succeed(
            conn,
            rows_in=raw.num_rows,
            rows_out=cleaned.sales.num_rows,
            rows_rejected=cleaned.quarantine.num_rows,
            batch_id=spec.batch_id,
            pages=[spec.first_page, spec.end_page],
            metrics=cleaned.metrics,
            fixed=cleaned.fixed,
            quarantine_reasons=cleaned.reasons,
            dimension_rows=cleaned.dimension_rows.num_rows,
            step_seconds=steps.seconds,
        )


def _read_raw(conn: Connection, spec) -> pa.Table:
    """The chunk's raw lines, COPYed out as CSV into one buffer (one chunk: its size is bounded by
    TRANSFORM_CHUNK_ROWS) and parsed by pyarrow."""
    copy = _bound(
        conn,
        CHUNK["copy_raw_lines"],
        {"batch_id": spec.batch_id, "first_tid": f"({spec.first_page},0)", "end_tid": f"({spec.end_page},0)"},
    )
    buffer = io.BytesIO()
    dbapi_cursor(conn).copy_expert(copy, buffer)
    if not buffer.tell():
        return pa.table({name: pa.array([], type=_RAW_CONVERT.column_types[name]) for name in _RAW_COLUMNS})
    buffer.seek(0)
    return pacsv.read_csv(
        buffer, read_options=_RAW_READ, parse_options=_RAW_PARSE, convert_options=_RAW_CONVERT
    )


class _Stream(io.RawIOBase):
    """Pieces of bytes (an iterator) as a file COPY reads from: a chunk's rows are turned into
    COPY's format one batch at a time, never all at once."""

    def __init__(self, pieces):
        self._pieces = iter(pieces)
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, into) -> int:
        while not self._piece:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        size = min(len(into), len(self._piece))
        into[:size] = self._piece[:size]
        self._piece = self._piece[size:]
        return size


def _csv(table: pa.Table, rows: int = 16_384):
    for batch in table.to_batches(max_chunksize=rows):
        out = io.BytesIO()
        pacsv.write_csv(batch, out, _WRITE)
        yield out.getvalue()


def _copy_sales(conn: Connection, copy: str, table: pa.Table) -> None:
    """COPY a chunk's sales into its file's sales table in PostgreSQL's binary format (its uuids,
    timestamps and numerics cost the server far less to read than their text)."""
    if not table.num_rows:
        return
    pieces = pgbinary.copy_binary(table, list(clean.SALES_COLUMNS.values()))
    dbapi_cursor(conn).copy_expert(copy, _Stream(pieces), size=1 << 16)


def _copy_in(conn: Connection, statement: str, table: pa.Table, run_id: str, chunk: int) -> None:
    """COPY a chunk's small tables (with its run and number in front) into the work tables, as CSV."""
    if not table.num_rows:
        return
    table = table.add_column(0, "chunk", pa.repeat(pa.scalar(chunk, pa.int32()), table.num_rows))
    run = pa.repeat(pa.scalar(uuid.UUID(run_id).hex, pa.string()), table.num_rows)
    table = table.add_column(0, "transform_run", run)
    dbapi_cursor(conn).copy_expert(str(CHUNK[statement]), _Stream(_csv(table)), size=1 << 16)


# --- 3. publish ------------------------------------------------------------------------------------


@stage_job("transform", task_arg="task")
def publish_run(ctx: StageContext, run_id: str, task: str = queues.PUBLISH_TASK) -> None:
    """Check the chunks' results and publish the run to staging, atomically."""
    steps = _Steps(ctx.log)
    published: dict = {}
    try:
        with ctx.engine.connect() as conn, conn.begin():
            with steps.step("lock"):
                xact_lock(conn, LOCK)
            act_as_pipeline(conn)
            conn.execute(PUBLISH["settings"])
            rebuild = conn.execute(PUBLISH["run_kind"], {"run_id": run_id}).scalar() == "rebuild"
            batches = conn.execute(PUBLISH["run_batches"], {"run_id": run_id}).all()
            if not batches:
                if rebuild:
                    _truncate_staging(conn)
                    _save_quality(conn, run_id, marts.refresh(conn, run_id))  # empties the marts
                ctx.log.info("no batches to transform")
                ctx.succeed(conn, rows_in=0, rows_out=0, rows_rejected=0, batches=0)
                return
            batch_ids = [b.batch_id for b in batches]
            shas = [b.sha256 for b in batches]
            chunks = conn.execute(PUBLISH["chunk_results"], {"run_id": run_id}).all()
            metrics, fixed, reasons = _add_up(chunks)
            results = checks.before_publish(metrics, ctx.settings.quarantine_max_rate)
            if any(r.failed for r in results):
                raise _Blocked(results)
            # Held until commit: a `pipeline cancel` from now on waits for the publish to end.
            if ledger.lock_run_status(conn, run_id) == "cancelled":
                raise RunCancelled(f"run {run_id} was cancelled before its transform published anything")
            published = _publish(conn, steps, run_id, shas, rebuild)
            with steps.step("checks_published"):
                results += _check_published(conn, batch_ids, shas, published)
            with steps.step("marts"):  # the marts from the facts just written, with their checks
                results += marts.refresh(conn, run_id)
            if any(r.failed for r in results):
                raise _Blocked(results)
            _save_quality(conn, run_id, results)
            conn.execute(PUBLISH["forget_chunks"], {"run_id": run_id})
            ctx.succeed(
                conn,
                rows_in=metrics["lines"],
                rows_out=metrics["trusted"],
                rows_rejected=metrics["quarantined"],
                batches=len(batch_ids),
                chunks=len(chunks),
                repaired_lines=metrics["repaired"],
                repairs={
                    clean.SHIFTED_16_FIELDS: metrics["repaired"] - metrics["repaired_split_trim"],
                    clean.SPLIT_TRIM_17_FIELDS: metrics["repaired_split_trim"],
                },
                quarantine_reasons=dict(sorted(reasons.items())),
                fixed=fixed,
                **published,
                step_seconds=steps.seconds,
            )
    except _Blocked as blocked:
        with ctx.engine.begin() as conn:
            _save_quality(conn, run_id, blocked.results)
        raise QualityCheckFailed(str(blocked)) from None
    _after_commit(ctx, run_id, analyze=bool(published.get("partitions_attached")))


def _add_up(chunks) -> tuple[dict, dict, dict]:
    """The run's measures: the sum over its chunks (the first and last sale date: min and max)."""
    metrics: dict = {}
    fixed: dict = {}
    reasons: dict = {}
    for chunk in chunks:
        details = chunk.details if isinstance(chunk.details, dict) else json.loads(chunk.details)
        for key, value in details["metrics"].items():
            if key == "first_sale_date":
                metrics[key] = min(filter(None, (metrics.get(key), value)), default=None)
            elif key == "last_sale_date":
                metrics[key] = max(filter(None, (metrics.get(key), value)), default=None)
            else:
                metrics[key] = metrics.get(key, 0) + value
        for key, value in details["fixed"].items():
            fixed[key] = fixed.get(key, 0) + value
        for key, value in details["quarantine_reasons"].items():
            reasons[key] = reasons.get(key, 0) + value
    return metrics, fixed, reasons


def _truncate_staging(conn: Connection) -> None:
    """Empty staging for a rebuild: the fact table's partitions go (every file is attached again)."""
    work.drop_fact_partitions(conn)
    tables = ["fact_car_sales", "quarantined_sales", *MODELS]
    names = sql.SQL(", ").join(sql.Identifier("staging", t) for t in tables)
    dbapi_cursor(conn).execute(sql.SQL("TRUNCATE {}").format(names))


def _file_sales(conn: Connection, shas: list[str]) -> dict[str, int]:
    """The sales staging holds of each of the files (only those that have any): a file's sale ids
    are one key range, looked up in its partition."""
    ranges = [work.sale_id_range(sha) for sha in shas]
    params = {"source_sha256s": shas, "first_ids": [r[0] for r in ranges], "end_ids": [r[1] for r in ranges]}
    return dict(conn.execute(PUBLISH["published_files"], params).all())


def _publish(conn: Connection, steps: _Steps, run_id: str, shas: list[str], rebuild: bool) -> dict:
    """Write the dimensions, facts and quarantine; returns what was written (and unresolved keys).

    A file without a partition gets its sales table attached as its partition: the sales were
    written once, by the chunks. A file with one (a forced re-load of its content, or a run that
    published the same content since this one was planned) adds only the lines its partition lacks,
    if any, from that table."""
    if rebuild:
        with steps.step("truncate"):
            _truncate_staging(conn)
    before = _file_sales(conn, shas)
    partitioned = set(conn.execute(work.QUERIES["fact_partitions"]).scalars().all())
    to_add = [sha for sha in shas if work.fact_partition(sha) in partitioned]
    published: dict = {"sales_before": sum(before.values()), "partitions_attached": 0}
    work.create_run_sales_view(conn, run_id, shas)
    with steps.step("dimensions") as counted:
        for name, statement in DIMENSIONS.items():
            counted[name] = published[f"{name}_inserted"] = conn.execute(
                statement, {"run_id": run_id}
            ).rowcount
    with steps.step("quarantine_released") as counted:  # lines quarantined before, trusted now
        counted["rows"] = published["quarantine_released"] = conn.execute(
            QUARANTINE["release"], {"source_sha256s": shas}
        ).rowcount
    with steps.step("fact_car_sales") as counted:
        inserted = 0
        try:
            # The foreign keys are checked as the rows arrive: by one join each for an attached
            # table (ATTACH validates them), by per-row triggers for the lines added to a partition.
            with conn.begin_nested():
                if to_add:
                    inserted += conn.execute(FACTS, {"published_sha256s": to_add}).rowcount
                for sha in shas:
                    if sha not in to_add:
                        inserted += work.attach(conn, run_id, sha)
                        published["partitions_attached"] += 1
            published["unresolved_keys"] = 0
        except (sa.exc.IntegrityError, psycopg2.IntegrityError) as error:  # through SQLAlchemy or not
            if not isinstance(getattr(error, "orig", error), psycopg2.errors.ForeignKeyViolation):
                raise
            inserted = published["partitions_attached"] = 0
            published["unresolved_keys"] = _unresolved_keys(conn)
        counted["rows"] = published["sales_inserted"] = inserted
        counted["attached"] = published["partitions_attached"]
    with steps.step("quarantined_sales") as counted:
        counted["rows"] = published["quarantine_inserted"] = conn.execute(
            QUARANTINE["insert"], {"run_id": run_id}
        ).rowcount
    conn.execute(PUBLISH["drop_run_sales"])
    return published


def _unresolved_keys(conn: Connection) -> int:
    """The run's sales (pg_temp.run_sales) whose dimension keys have no dimension row: one left
    join per foreign key of the fact table, as the catalog lists them."""
    counts, joins = [], []
    for i, key in enumerate(conn.execute(PUBLISH["fact_foreign_keys"]).all()):
        alias = sql.Identifier(f"d{i}")
        column, referenced = sql.Identifier(key.column_name), sql.Identifier(key.referenced_column)
        schema, table = key.referenced_table.split(".")
        joins.append(
            sql.SQL("LEFT JOIN {} {} ON {}.{} = s.{}").format(
                sql.Identifier(schema, table), alias, alias, referenced, column
            )
        )
        counts.append(
            sql.SQL("count(*) FILTER (WHERE s.{} IS NOT NULL AND {}.{} IS NULL)").format(
                column, alias, referenced
            )
        )
    if not counts:
        return 0
    query = sql.SQL("SELECT {} FROM pg_temp.run_sales s {}").format(
        sql.SQL(" + ").join(counts), sql.SQL(" ").join(joins)
    )
    cur = dbapi_cursor(conn)
    cur.execute(query)
    return cur.fetchone()[0]


def _check_published(
    conn: Connection, batch_ids: list[int], shas: list[str], published: dict
) -> list[checks.QualityResult]:
    """The run's files now hold the sales they held before (a file's sales are one key range,
    counted before the write) plus those just written (an attached partition counted, the lines
    added by the insert's row count), and the lines quarantined."""
    raw_lines, split_trim_lines = conn.execute(CHECKS_PUBLISHED["raw_lines"], {"batch_ids": batch_ids}).one()
    quarantined = conn.execute(CHECKS_PUBLISHED["quarantined_lines"], {"source_sha256s": shas}).scalar()
    dimension_rows = {table: conn.execute(model["rows"]).all() for table, model in MODELS.items()}
    duplicates = checks.natural_key_defects(dimension_rows, clean.DIMENSIONS)
    sales = published["sales_before"] + published["sales_inserted"]
    return checks.after_publish(
        raw_lines, sales, quarantined, published.pop("unresolved_keys"), duplicates, split_trim_lines
    )


def _after_commit(ctx: StageContext, run_id: str, analyze: bool) -> None:
    """Once the run is published and succeeded: fresh statistics after a partition was attached
    (autovacuum analyzes a new partition, never the partitioned table), and the run's work tables
    dropped. A failure here is only logged."""
    started = time.perf_counter()
    try:
        with ctx.engine.connect() as conn:
            if analyze:
                tables = ["fact_car_sales", "quarantined_sales", *MODELS]
                statement = sql.SQL("ANALYZE {}").format(
                    sql.SQL(", ").join(sql.Identifier("staging", t) for t in tables)
                )
                conn.execute(sa.text(statement.as_string(dbapi_cursor(conn))))
                conn.commit()
            act_as_pipeline(conn)
            work.drop(conn, run_id)
            conn.commit()
    except sa.exc.SQLAlchemyError as exc:
        ctx.log.warning("after the publish: cleanup failed", error=str(exc).splitlines()[0])
        return
    ctx.log.info("work dropped", analyzed=analyze, seconds=round(time.perf_counter() - started, 3))


def _save_quality(conn: Connection, run_id: str, results: list[checks.QualityResult]) -> None:
    conn.execute(PUBLISH["save_quality"], [r.as_row(run_id) for r in results])
