"""The transform stage as RQ jobs: a run's raw batches (or the whole raw history) to the star schema.

One transaction does it all, under the advisory lock `carsales:transform`:

1. reload the rules (sql/rules.sql) and their reference data (reference/*.csv);
2. build the work tables (sql/work.sql): two passes over the raw lines, the rest on small maps;
3. check them (checks.py, sql/checks/work.sql); a failed blocking check stops here;
4. lock the run's ledger row (a run cancelled meanwhile is not published), write the models
   (sql/models/: dimensions, facts, quarantine), check what was written (sql/checks/published.sql),
   refresh the marts from it (marts.py, with their checks);
5. record the quality results and the stage's success, commit.

Readers see all of a run or nothing of it. When a blocking check fails, the transaction is rolled
back, the quality results are written in a transaction of their own, and QualityCheckFailed names
the check (the stage wrapper fails the run, without retrying).
"""

import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.transform import checks, marts
from shared import ledger
from shared.db import act_as_pipeline, xact_lock
from shared.errors import QualityCheckFailed, RunCancelled
from shared.sqlfile import load_queries
from shared.stage import StageContext, stage_job

LOCK = "carsales:transform"
HERE = Path(__file__).parent
SQL = HERE / "sql"
REFERENCE = HERE / "reference"


def _queries(path: Path) -> dict[str, sa.TextClause]:
    return {name: sa.text(sql) for name, sql in load_queries(path).items()}


RULES = (SQL / "rules.sql").read_text(encoding="utf-8")
WORK = _queries(SQL / "work.sql")
PUBLISH = _queries(SQL / "publish.sql")
CHECKS_PUBLISHED = _queries(SQL / "checks" / "published.sql")
CHECKS_WORK = sa.text((SQL / "checks" / "work.sql").read_text(encoding="utf-8"))
QUARANTINE = _queries(SQL / "models" / "quarantined_sales.sql")
DIMENSIONS = {
    name: sa.text((SQL / "models" / f"{name}.sql").read_text(encoding="utf-8"))
    for name in ("dim_make", "dim_transmission", "dim_state", "dim_color", "dim_seller")
}
FACTS = sa.text((SQL / "models" / "fact_car_sales.sql").read_text(encoding="utf-8"))
REFERENCES = (
    ("copy_states", "states.csv"),
    ("copy_make_aliases", "make_aliases.csv"),
    ("copy_body_styles", "body_styles.csv"),
)
# The work tables, built in this order and logged as four steps; `values` and `sales` are the two
# passes over the raw lines.
WORK_STEPS = {
    "values": ("values", "analyze_values"),
    "maps": tuple(name for name in WORK if name.startswith("map_")),
    "sales": ("sales",),
    "quarantine": ("quarantine",),
}

# Drop the fact table's foreign keys for the publish (and re-add them, validated by one join each)
# when the run writes more than this share of the table's rows; below it, the per-row trigger
# checks of a small run cost less than validating the whole table. See docs/transform.md.
FK_REVALIDATE_SHARE = 0.05
# Build the primary key after the insert when the publish writes more than this share of the
# table's rows (rebuilding it sorts the whole table; below it, inserting into it costs less).
PK_REBUILD_SHARE = 0.5


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


@stage_job("transform")
def transform_run(ctx: StageContext, run_id: str) -> None:
    """Transform the raw lines of the run's batches and publish them to staging."""
    _transform(ctx, run_id, rebuild=False)


@stage_job("transform")
def rebuild_staging(ctx: StageContext, run_id: str) -> None:
    """Re-derive all of staging from every batch in raw (after a rule changed), atomically."""
    _transform(ctx, run_id, rebuild=True)


def _transform(ctx: StageContext, run_id: str, rebuild: bool) -> None:
    steps = _Steps(ctx.log)
    try:
        with ctx.engine.connect() as conn, conn.begin():
            xact_lock(conn, LOCK)
            conn.execute(PUBLISH["settings"])
            which = "all_batches" if rebuild else "run_batches"
            batches = conn.execute(PUBLISH[which], {"run_id": run_id}).all()
            if not batches:
                if rebuild:
                    conn.execute(PUBLISH["truncate_staging"])
                    _save_quality(conn, run_id, marts.refresh(conn, run_id))  # empties the marts
                ctx.log.info("no batches to transform")
                ctx.succeed(conn, rows_in=0, rows_out=0, rows_rejected=0, batches=0)
                return
            batch_ids = [b.batch_id for b in batches]
            shas = [b.sha256 for b in batches]
            with steps.step("rules"):
                _load_rules(conn)
            metrics = _build_work(conn, steps, batch_ids)
            results = checks.before_publish(metrics, ctx.settings.quarantine_max_rate)
            if any(r.failed for r in results):
                raise _Blocked(results)
            # Held until commit: a `pipeline cancel` from now on waits for the publish to end.
            if ledger.lock_run_status(conn, run_id) == "cancelled":
                raise RunCancelled(f"run {run_id} was cancelled before its transform published anything")
            published = _publish(conn, steps, shas, metrics, rebuild)
            with steps.step("checks_published"):
                results += _check_published(conn, batch_ids, shas, published)
            with steps.step("marts"):  # the marts from the facts just written, with their checks
                results += marts.refresh(conn, run_id)
            if any(r.failed for r in results):
                raise _Blocked(results)
            details = _details(conn, metrics, published, batch_ids, steps)
            conn.execute(PUBLISH["drop_work"])
            _save_quality(conn, run_id, results)
            ctx.succeed(
                conn,
                rows_in=metrics["lines"],
                rows_out=metrics["trusted"],
                rows_rejected=metrics["quarantined"],
                **details,
            )
    except _Blocked as blocked:
        with ctx.engine.begin() as conn:
            _save_quality(conn, run_id, blocked.results)
        raise QualityCheckFailed(str(blocked)) from None
    if published["foreign_keys_revalidated"]:  # a big publish
        _analyze_staging(ctx)


def _analyze_staging(ctx: StageContext) -> None:
    """Fresh statistics after a big publish, outside its transaction: the run is already published
    and succeeded, so a failure here is only logged."""
    started = time.perf_counter()
    try:
        with ctx.engine.connect() as conn:
            conn.execute(PUBLISH["analyze_staging"])
            conn.commit()
    except sa.exc.SQLAlchemyError as exc:
        ctx.log.warning("staging statistics not refreshed", error=str(exc).splitlines()[0])
        return
    ctx.log.info("staging analyzed", seconds=round(time.perf_counter() - started, 3))


def _load_rules(conn: Connection) -> None:
    """(Re)create the rule functions and reload their reference data from the shipped CSV files,
    as the `pipeline` role for the rest of the transaction."""
    act_as_pipeline(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute(RULES)  # no parameters: the script is sent as it is
    conn.execute(PUBLISH["clear_references"])
    for query, filename in REFERENCES:
        with (REFERENCE / filename).open(encoding="utf-8") as csv_file:
            cursor.copy_expert(str(PUBLISH[query]), csv_file)


def _build_work(conn: Connection, steps: _Steps, batch_ids: list[int]) -> dict:
    params = {"batch_ids": batch_ids}
    for step, statements in WORK_STEPS.items():
        with steps.step(step) as counted:
            counted["rows"] = sum(max(conn.execute(WORK[name], params).rowcount, 0) for name in statements)
    with steps.step("checks_work"):
        return dict(
            conn.execute(
                CHECKS_WORK,
                {
                    "suspicious_price": checks.SUSPICIOUS_PRICE,
                    "suspicious_odometer_low": checks.SUSPICIOUS_ODOMETER_LOW,
                    "suspicious_odometer_high": checks.SUSPICIOUS_ODOMETER_HIGH,
                },
            )
            .mappings()
            .one()
        )


def _publish(conn: Connection, steps: _Steps, shas: list[str], metrics: dict, rebuild: bool) -> dict:
    """Write the dimensions, facts and quarantine; returns what was written (and unresolved keys)."""
    if rebuild:
        with steps.step("truncate"):
            conn.execute(PUBLISH["truncate_staging"])
    # Sales of the run's files published before (a forced re-load, a retry): only new files add rows.
    published_before = dict(conn.execute(PUBLISH["published_files"], {"source_sha256s": shas}).all())
    new_rows = metrics["trusted"] if set(shas) - set(published_before) else 0
    # Emptied above in a rebuild (the statistics would still show the rows until commit).
    existing = 0 if rebuild else conn.execute(PUBLISH["fact_rows"]).scalar()
    revalidate = new_rows > FK_REVALIDATE_SHARE * (existing + new_rows)
    rebuild_key = new_rows > PK_REBUILD_SHARE * (existing + new_rows)
    published: dict = {
        "foreign_keys_revalidated": revalidate,
        "primary_key_rebuilt": rebuild_key,
        "sales_before": sum(published_before.values()),
    }
    with steps.step("dimensions") as counted:
        for name, statement in DIMENSIONS.items():
            counted[name] = published[f"{name}_inserted"] = conn.execute(statement).rowcount
    if revalidate:
        conn.execute(PUBLISH["drop_foreign_keys"])
    else:  # checked first: the per-row triggers would raise at the first bad key, naming no check
        published["unresolved_keys"] = conn.execute(CHECKS_PUBLISHED["unresolved_keys"]).scalar()
    if rebuild_key:
        conn.execute(PUBLISH["drop_primary_key"])
    with steps.step("fact_car_sales") as counted:
        params = {"published_sha256s": list(published_before)}
        inserted = 0 if published.get("unresolved_keys") else conn.execute(FACTS, params).rowcount
        counted["rows"] = published["sales_inserted"] = inserted
    if rebuild_key:
        with steps.step("primary_key"):
            conn.execute(PUBLISH["add_primary_key"])
    if revalidate:
        with steps.step("foreign_keys"):
            published["unresolved_keys"] = _add_foreign_keys(conn)
    with steps.step("quarantined_sales") as counted:
        counted["released"] = published["quarantine_released"] = conn.execute(
            QUARANTINE["release"], {"source_sha256s": shas}
        ).rowcount
        counted["rows"] = published["quarantine_inserted"] = conn.execute(QUARANTINE["insert"]).rowcount
    return published


def _add_foreign_keys(conn: Connection) -> int:
    """Re-add the fact table's foreign keys, validated set-based; the unresolved keys if that fails."""
    try:
        with conn.begin_nested():
            conn.execute(PUBLISH["add_foreign_keys"])
        return 0
    except sa.exc.IntegrityError:
        return conn.execute(CHECKS_PUBLISHED["unresolved_keys"]).scalar()


def _check_published(
    conn: Connection, batch_ids: list[int], shas: list[str], published: dict
) -> list[checks.QualityResult]:
    """The run's files now hold the sales they held before plus the ones just inserted (a file's
    sales are one key range: counted before the insert, only for files published before)."""
    raw_lines, split_trim_lines = conn.execute(CHECKS_PUBLISHED["raw_lines"], {"batch_ids": batch_ids}).one()
    quarantined = conn.execute(CHECKS_PUBLISHED["quarantined_lines"], {"source_sha256s": shas}).scalar()
    duplicates = conn.execute(CHECKS_PUBLISHED["duplicate_keys"]).scalar()
    sales = published["sales_before"] + published["sales_inserted"]
    return checks.after_publish(
        raw_lines, sales, quarantined, published.pop("unresolved_keys"), duplicates, split_trim_lines
    )


def _details(conn: Connection, metrics: dict, published: dict, batch_ids: list[int], steps: _Steps) -> dict:
    fixed = conn.execute(WORK["fixed"]).mappings().one()
    reasons = {row.reason: row.lines for row in conn.execute(PUBLISH["quarantine_reasons"])}
    return {
        "batches": len(batch_ids),
        "repaired_lines": metrics["repaired"],
        "repairs": {
            "shifted_16_fields": metrics["repaired"] - metrics["repaired_split_trim"],
            "split_trim_17_fields": metrics["repaired_split_trim"],
        },
        "quarantine_reasons": reasons,
        "fixed": {key: int(value) for key, value in fixed.items()},
        **published,
        "step_seconds": steps.seconds,
    }


def _save_quality(conn: Connection, run_id: str, results: list[checks.QualityResult]) -> None:
    conn.execute(PUBLISH["save_quality"], [r.as_row(run_id) for r in results])
