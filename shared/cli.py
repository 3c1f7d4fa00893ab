"""`pipeline`: the command line over the queues and the ledger.

It enqueues work and reads the ledger; the work itself runs in the stage workers.
"""

import json
import sys
import time
import uuid

import click
import redis
import sqlalchemy as sa
import sqlalchemy.exc
from rq.utils import import_attribute

from shared import db, ledger, queues, render
from shared.config import mask_url, settings
from shared.errors import BadInputError, ConfigError
from shared.logging import configure_logging

EXIT_FAILED = 1  # the run failed
EXIT_USAGE = 2  # bad arguments or bad input given on the command line
EXIT_UNAVAILABLE = 3  # Redis or PostgreSQL cannot be reached


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _settings():
    try:
        return settings()
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


def _redis():
    cfg = _settings()
    conn = queues.redis_connection()
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        _fail(
            f"Redis is unavailable at {mask_url(cfg.redis_url)} ({exc}); nothing was enqueued",
            EXIT_UNAVAILABLE,
        )
    return conn


def _read(fn, *args):
    """Run a ledger read; a database that is down or not set up gives a clear message."""
    cfg = _settings()
    try:
        with db.engine().connect() as conn:
            return fn(conn, *args)
    except sqlalchemy.exc.OperationalError as exc:
        _fail(
            f"PostgreSQL is unavailable at {mask_url(cfg.database_url)} ({exc.orig})".strip(),
            EXIT_UNAVAILABLE,
        )
    except sqlalchemy.exc.ProgrammingError:
        _fail("the ledger does not exist yet: run `pipeline setup` first", EXIT_UNAVAILABLE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Medallion pipeline for used-car auction sales: setup -> ingest -> transform on RQ."""
    cfg = _settings()
    configure_logging("cli", cfg.log_level, cfg.log_format, stream=sys.stderr)


def _record_run(spec: queues.RunSpec, plan) -> bool:
    """Write the run to the ledger if the ledger exists yet (on a new database, setup writes it)."""
    try:
        with db.engine().begin() as conn:
            ledger.create_run(conn, spec.run_id, spec.sources, plan, kind=spec.kind, force=spec.force)
        return True
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return False


def _enqueue(spec: queues.RunSpec, plan, connection, recorded: bool) -> None:
    try:
        queues.enqueue_plan(spec, plan, connection)
    except redis.exceptions.RedisError as exc:
        if recorded:
            with db.engine().begin() as conn:
                ledger.fail_stage(conn, spec.run_id, plan[0].stage, plan[0].task, f"could not enqueue: {exc}")
        _fail(
            f"Redis failed while enqueueing run {spec.run_id} ({exc}); nothing was enqueued", EXIT_UNAVAILABLE
        )


@cli.command()
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    metavar="PATH",
    help="CSV file, directory or glob inside DATA_DIR; repeat or list several.",
)
@click.argument("more_sources", nargs=-1, metavar="[PATH ...]")
@click.option("--force", is_flag=True, help="Load files again even if their content was already ingested.")
@click.option("--wait", is_flag=True, help="Show progress until the run ends; exit 0 only if it succeeded.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the final status as JSON (with --wait) or the run id."
)
@click.option("--timeout", default=3600, show_default=True, help="Seconds --wait waits before giving up.")
def run(sources, more_sources, force, wait, as_json, timeout):
    """Enqueue a run: setup, then one ingest job per file, then transform. Prints the run id."""
    cfg = _settings()
    try:
        files = _expand([*sources, *more_sources], cfg.data_dir)
    except BadInputError as exc:
        _fail(str(exc), EXIT_USAGE)
    connection = _redis()
    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=files, force=force)
    plan = queues.plan_run(spec)
    recorded = _record_run(spec, plan)
    _enqueue(spec, plan, connection, recorded)
    if not wait:
        click.echo(json.dumps({"run_id": spec.run_id, "status": "queued"}) if as_json else spec.run_id)
        return
    if not as_json:
        click.echo(f"run {spec.run_id} queued: {len(files)} file(s)")
    sys.exit(_wait(spec.run_id, as_json, timeout))


def _expand(paths, data_dir):
    from shared.sources import expand_sources

    # Where the CLI sees the data directory (compose's cli service, `make run`), a wrong path is
    # refused now; elsewhere the ingest worker finds it missing and fails the run.
    return expand_sources(list(paths), data_dir, must_exist=data_dir.is_dir())


def _wait(run_id: str, as_json: bool, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    progress = render.Progress()
    status = None
    while time.monotonic() < deadline:
        try:
            with db.engine().connect() as conn:
                status = ledger.get_status(conn, run_id)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
            status = None  # the setup job has not created the ledger yet
        if status:
            if not as_json:
                progress.show(status)
            if status["status"] in ("succeeded", "failed", "cancelled"):
                break
        time.sleep(0.1)  # a primary-key read: polling often costs nothing
    else:
        if not as_json:
            click.echo(f"gave up waiting after {timeout}s", err=True)
    if status is None:
        _fail(f"run {run_id} is not in the ledger", EXIT_FAILED)
    render.status(status, as_json)
    return 0 if status["status"] == "succeeded" else EXIT_FAILED


@cli.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(run_id, as_json):
    """Show a run and its stages (and quality checks)."""
    _uuid(run_id)
    found = _read(ledger.get_status, run_id)
    if found is None:
        _fail(f"no run {run_id} in the ledger", EXIT_USAGE)
    render.status(found, as_json)


def _uuid(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        _fail(f"{value!r} is not a run id (a UUID)", EXIT_USAGE)


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many recent runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list runs that only ran setup (no sources), e.g. the bootstrap's.",
)
def runs(limit, as_json, show_all):
    """List recent runs, newest first."""
    render.runs(_read(ledger.list_runs, limit, show_all), as_json)


@cli.command()
@click.argument("stage", type=click.Choice(ledger.STAGES))
@click.option("--burst", is_flag=True, help="Exit when the queue is empty instead of waiting for work.")
def worker(stage, burst):
    """Run an RQ worker for STAGE's queue (what each container runs). SIGTERM finishes the current job."""
    import os

    from shared.worker import run_worker

    cfg = _settings()
    os.environ["SERVICE_NAME"] = stage
    configure_logging(stage, cfg.log_level, cfg.log_format)
    _redis()
    run_worker(stage, burst=burst)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the run's status as JSON.")
def setup(as_json):
    """Run the setup stage inline: create the database, roles and schema objects (idempotent)."""
    cfg = _settings()
    configure_logging("setup", cfg.log_level, cfg.log_format, stream=sys.stderr)
    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=[])
    plan = queues.plan_run(spec)
    setup_run = import_attribute(queues.JOB_FUNCTIONS["setup"])
    try:
        setup_run(run_id=spec.run_id, plan=[p.as_dict() for p in plan], sources=[], force=False)
    except ConfigError as exc:  # e.g. a database that is not UTF8: the message says what to change
        _fail(f"setup failed: {exc}", EXIT_USAGE)
    except Exception as exc:
        _fail(f"setup failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    found = _read(ledger.get_status, spec.run_id)
    render.status(found, as_json)


@cli.command()
@click.argument("run_id")
def retry(run_id):
    """Resume a failed or cancelled run from the jobs that did not succeed."""
    _uuid(run_id)
    found = _read(ledger.get_status, run_id)
    if found is None:
        _fail(f"no run {run_id} in the ledger", EXIT_USAGE)
    if found["status"] not in ("failed", "cancelled"):
        _fail(f"run {run_id} is {found['status']}; only failed or cancelled runs can be retried", EXIT_USAGE)
    connection = _redis()
    spec = queues.RunSpec(run_id=run_id, sources=found["sources"], force=False, kind=found["kind"])
    attempt = uuid.uuid4().hex[:6]
    plan = queues.retry_plan(spec, found["stages"], attempt)
    with db.engine().begin() as conn:
        requeued = ledger.requeue_run(conn, run_id, plan)
    if not requeued:  # another `pipeline retry` (or a cancel) got there first: enqueue nothing twice
        _fail(
            f"run {run_id} is no longer failed or cancelled (retried meanwhile?); nothing enqueued",
            EXIT_USAGE,
        )
    _enqueue(spec, plan, connection, recorded=True)
    click.echo(f"run {run_id} requeued: {', '.join(render.label(p.__dict__) for p in plan)}")


@cli.command()
@click.argument("run_id")
def cancel(run_id):
    """Cancel a queued or running run: its queued jobs never run; a running job is not published."""
    _uuid(run_id)
    connection = _redis()

    def _cancel(conn, rid):
        with conn.begin():
            return ledger.cancel_run(conn, rid)

    job_ids = _read(_cancel, run_id)
    if job_ids is None:
        _fail(f"run {run_id} is not queued or running", EXIT_USAGE)
    n = queues.cancel_jobs(job_ids, connection)
    found = _read(ledger.get_status, run_id)
    running = sum(1 for s in found["stages"] if s["status"] == "running")
    rolled_back = f"; {running} running job(s) will roll their work back" if running else ""
    click.echo(f"run {run_id} cancelled ({n} queued job(s) cancelled{rolled_back})")


@cli.command()
@click.option("--wait", is_flag=True, help="Wait until the rebuild ends; exit 0 only if it succeeded.")
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON.")
def rebuild(wait, as_json):
    """Re-derive all of staging from the whole raw history, atomically, with the same checks."""
    connection = _redis()
    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=[], kind="rebuild")
    plan = queues.plan_run(spec)
    if not _record_run(spec, plan):
        _fail("the ledger does not exist yet: run `pipeline setup` first", EXIT_UNAVAILABLE)
    _enqueue(spec, plan, connection, recorded=True)
    if wait:
        sys.exit(_wait(spec.run_id, as_json, 3600))
    click.echo(spec.run_id)


@cli.command()
@click.option("--rows", type=click.IntRange(min=0), required=True, help="Data lines to write.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="File to write.")
@click.option("--seed", default=42, show_default=True, help="Random seed: same seed, same file.")
def sample(rows, out, seed):
    """Write a deterministic sample file with the real data set's header and defects."""
    try:  # a development tool (tools/, numpy): not in the worker images
        from tools.sample import write_sample
    except ImportError as exc:
        _fail(f"pipeline sample needs the development install (pip install -e '.[dev]'): {exc}", EXIT_USAGE)

    started = time.perf_counter()
    counts = write_sample(out, rows, seed)
    click.echo(json.dumps({"out": out, "seconds": round(time.perf_counter() - started, 2), **counts}))


@cli.command()
def health():
    """Exit 0 if PostgreSQL and Redis both answer (container healthcheck)."""
    cfg = _settings()
    try:
        queues.redis_connection().ping()
        with db.engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        _fail(
            f"unhealthy: {type(exc).__name__}: {exc} (db {mask_url(cfg.database_url)}, "
            f"redis {mask_url(cfg.redis_url)})",
            EXIT_FAILED,
        )
    click.echo("ok")


@cli.command()
@click.option("--limit", default=10, show_default=True, help="How many recent scheduled runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
def schedule(limit, as_json):
    """Show the daily batch: its schedule, the next slot, the running schedulers, the last runs."""
    from datetime import UTC, datetime

    from rq.cron import CronScheduler

    from shared import schedule as daily

    cfg = _settings()
    now = datetime.now(UTC)
    try:
        files = len(daily.landing_files(cfg))
    except BadInputError as exc:
        files = str(exc)
    try:
        schedulers = [
            {
                "name": s.name,
                "last_heartbeat": s.last_heartbeat,
                "next_slots": [j.next_enqueue_time for j in s.get_jobs() if j.name == daily.CRON_JOB_NAME],
            }
            for s in CronScheduler.all(queues.redis_connection())
        ]
    except redis.exceptions.RedisError as exc:
        schedulers = f"unknown: Redis is unavailable ({exc})"
    shown = {
        "schedule": cfg.schedule_cron,
        "timezone": "UTC",
        "landing_dir": str(cfg.landing_dir),
        "landing_files": files,
        "next_slot": daily.next_slot(cfg.schedule_cron, now),
        "schedulers": schedulers,
        "runs": _read(daily.recent, limit),
    }
    render.schedule(shown, now, as_json)


# The web UI is a service of its own (services/ui): like the stage jobs, it is reached by its dotted
# path at run time, so shared/ never imports a service and an image without the UI still runs.
UI_MODULES = {"serve": "services.ui.app", "report": "services.ui.report"}


def _ui(name: str):
    import importlib

    try:
        return importlib.import_module(UI_MODULES[name])
    except ModuleNotFoundError as exc:
        _fail(f"the web UI is not installed here ({exc}); install the project with its UI", EXIT_USAGE)


@cli.command()
@click.option("--host", help="Address to listen on [default: UI_HOST, 127.0.0.1: this machine only].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on [default: UI_PORT, 8080].")
def ui(host, port):
    """Serve the read-only web UI: runs, each run's jobs, checks and rejects, charts of the data."""
    cfg = _settings()
    configure_logging("ui", cfg.log_level, cfg.log_format)
    _ui("serve").serve(cfg.ui_database_url, host or cfg.ui_host, port or cfg.ui_port)


@cli.command()
@click.argument("run_id")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, writable=True), help="HTML file to write."
)
def report(run_id, out):
    """Write RUN_ID's page as one self-contained HTML file (inline CSS and SVG), e.g. for a ticket."""
    _uuid(run_id)
    cfg = _settings()
    try:
        written = _ui("report").write_report(cfg.ui_database_url, run_id, out)
    except sqlalchemy.exc.OperationalError as exc:
        _fail(
            f"PostgreSQL is unavailable at {mask_url(cfg.ui_database_url)} ({exc.orig})".strip(),
            EXIT_UNAVAILABLE,
        )
    except sqlalchemy.exc.ProgrammingError as exc:
        _fail(
            f"the ledger is not readable as {mask_url(cfg.ui_database_url)}: {exc.orig}".strip(),
            EXIT_UNAVAILABLE,
        )
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror}", EXIT_USAGE)
    if not written:
        _fail(f"no run {run_id} in the ledger", EXIT_USAGE)
    click.echo(out)


def main():
    cli(prog_name="pipeline")


if __name__ == "__main__":
    main()
