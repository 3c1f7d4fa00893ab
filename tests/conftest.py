"""Fixtures: a dedicated PostgreSQL database and Redis db number, and real worker processes.

Nothing here is mocked: tests talk to the PostgreSQL and Redis of the machine, through a
database created for this test session (dropped at the end) and Redis db 15 (flushed per test).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
TEST_DB = f"carsales_test_{os.getpid()}"

# A valid line of car_prices.csv; a Volkswagen line in the real file's layout, its trim
# `SE PZEV w/Connectivity, Navitgation` written unquoted so the line has 17 fields (transmission
# blank, the real sale date last); and the 16-field variant a reader that dropped the 17th field
# writes, every field from body on shifted one place right: the tests' building blocks.
GOOD = (
    "2015,Kia,Sorento,LX,SUV,automatic,5xyktca69fg566472,ca,5,16639,white,black,"
    "kia motors america  inc,20500,21500,Tue Dec 16 2014 12:30:00 GMT-0800 (PST)"
)
VW_SPLIT_TRIM = (
    "2015,Volkswagen,Jetta,SE PZEV w/Connectivity,Navitgation,sedan,,3vwd17aj3fm227143,ca,4.6,9012,"
    "white,black,volkswagen credit inc,13950,13700,Tue Jan 27 2015 04:30:00 GMT-0800 (PST)"
)
VW_SHIFTED = (
    "2015,Volkswagen,Jetta,SE PZEV w/ Connectivity,Navitgation,sedan,automatic,3vwd17aj5fm201708,ca,46,"
    "6214,black,black,volkswagen credit inc,14250,14000"
)


def _claim_redis_db() -> str:
    """Redis db 15 (or the next free one of 13..10): a lock key keeps two test sessions on one
    machine from flushing each other's queues or running each other's jobs."""
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    import redis

    for number in (15, 13, 12, 11, 10):  # 14 belongs to `make bench`
        url = f"redis://127.0.0.1:6379/{number}"
        if redis.Redis.from_url(url).set("carsales:test-session", os.getpid(), nx=True, ex=3600):
            return url
        holder = redis.Redis.from_url(url).get("carsales:test-session")
        if holder and not psutil.pid_exists(int(holder)):  # left by a session that died
            redis.Redis.from_url(url).set("carsales:test-session", os.getpid(), ex=3600)
            return url
    raise RuntimeError("no free Redis db among 10-15 for the tests")


TEST_REDIS = _claim_redis_db()
DATA_DIR = Path(os.environ.get("TEST_DATA_DIR", f"/tmp/carsales-test-data-{os.getpid()}"))
PIPELINE = str(Path(sys.executable).with_name("pipeline"))

# Set before any project module reads its settings; subprocesses inherit them.
os.environ.update(
    DATABASE_URL=f"{PG_BASE}/{TEST_DB}",
    REDIS_URL=TEST_REDIS,
    DATA_DIR=str(DATA_DIR),
    LOG_FORMAT="json",
    LOG_LEVEL="INFO",
    RETRY_MAX="2",
    RETRY_INTERVALS="1,1",
    QUARANTINE_MAX_RATE="0.01",
)
os.environ.pop("SETUP_DATABASE_URL", None)


def _psql_admin(statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG_BASE}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def run_cli(*args: str, check: bool = False, timeout: float = 300, env: dict | None = None):
    """Run the real `pipeline` command; returns the CompletedProcess (text mode)."""
    proc = subprocess.run(
        [PIPELINE, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pipeline {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def enqueue_around_cli(*sources: str) -> str:
    """Record and enqueue a run as `pipeline run` does, without the CLI's checks of the sources:
    how a file that vanishes between the command and its ingest job looks to the workers."""
    from shared import db, ledger, queues

    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=list(sources))
    plan = queues.plan_run(spec)
    with db.engine().begin() as conn:
        ledger.create_run(conn, spec.run_id, spec.sources, plan)
    queues.enqueue_plan(spec, plan)
    return spec.run_id


@pytest.fixture(scope="session", autouse=True)
def test_database():
    """Create the session's database through `pipeline setup`, drop it afterwards."""
    _psql_admin(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    run_cli("setup", check=True)
    yield os.environ["DATABASE_URL"]
    from shared import db

    db.dispose_all()
    from shared import queues

    queues.redis_connection().delete("carsales:test-session")
    _psql_admin(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@pytest.fixture
def engine(test_database):
    from shared import db

    return db.engine()


@pytest.fixture
def clean_db(engine):
    """Empty every data and ledger table (not the migrations) so a test starts from nothing."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        # Batch partitions go with their batches (their names would come back with the batch ids),
        # the fact table's with their files, and the sales tables of runs never published.
        partitions = conn.execute(
            sa.text(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE (schemaname = 'raw' AND tablename LIKE 'car\\_prices\\_b%') "
                "OR (schemaname = 'staging' AND tablename LIKE 'fact\\_car\\_sales\\_%') "
                "OR (schemaname = 'work' AND tablename LIKE 'sales\\_%')"
            )
        ).scalars()
        for partition in partitions:
            conn.execute(sa.text(f"DROP TABLE {partition}"))
        tables = conn.execute(
            sa.text(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname IN ('raw', 'staging', 'marts', 'meta') AND tablename <> 'schema_migrations'"
            )
        ).scalars()
        names = ", ".join(tables)
        if names:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture
def redis_conn():
    from shared import queues

    conn = queues.redis_connection()
    conn.flushdb()
    conn.set("carsales:test-session", os.getpid(), ex=3600)
    yield conn
    conn.flushdb()
    conn.set("carsales:test-session", os.getpid(), ex=3600)


@pytest.fixture
def data_dir():
    """A fresh folder inside DATA_DIR for this test's source files."""
    folder = DATA_DIR / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def hold_raw():
    """Hold raw.car_prices' SHARE UPDATE EXCLUSIVE lock in a transaction of its own: an ingest job
    then writes all its rows into its new partition and waits, uncommitted, to attach it. (The
    COPY itself is over too soon to be hit reliably.)"""
    import psycopg2

    holder = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE raw.car_prices IN SHARE UPDATE EXCLUSIVE MODE")
        yield
    finally:
        holder.close()  # ends the transaction: the lock is released


@contextlib.contextmanager
def database_before_migration(version: str):
    """A scratch database set up as it was before migration `version` existed (every migration
    older than it applied, none from it on), dropped afterwards; yields its URL. For upgrade tests:
    put data in it, then `migrate.migrate(url, ...)` applies `version` and everything after it."""
    from unittest import mock

    import structlog

    from services.setup import migrate

    name = f"carsales_upgrade_{uuid.uuid4().hex[:8]}"
    url = f"{PG_BASE}/{name}"
    older = [m for m in migrate.migrations() if m.version < version]
    try:
        with mock.patch.object(migrate, "migrations", lambda: older):
            migrate.migrate(url, {}, structlog.get_logger())
        yield url
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def descendants(pid: int) -> list[int]:
    """All live descendants of a process (the RQ work horse, the scheduler)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> list[int]:
    """Signal a worker and every process under it, as a container's death would.

    RQ puts its work horse in a process group of its own (os.setpgrp): signalling the worker's
    group alone would leave the horse running as an orphan that finishes the job."""
    victims = [proc.pid, *descendants(proc.pid)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), sig)
    return victims


class Workers:
    """Real `pipeline worker STAGE` processes, each in its own process group, logging to a file."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, stage: str, burst: bool = False, env: dict | None = None) -> subprocess.Popen:
        log_path = self.log_dir / f"{stage}-{len(self.procs)}.log"
        args = [PIPELINE, "worker", stage] + (["--burst"] if burst else [])
        proc = subprocess.Popen(
            args,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append((stage, proc, log_path))
        return proc

    def start_all(self, ingest: int = 1, transform: int = 1) -> None:
        self.start("setup")
        for _ in range(ingest):
            self.start("ingest")
        for _ in range(transform):
            self.start("transform")

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> list[int]:
        return kill_tree(proc, sig)

    def logs(self, stage: str | None = None) -> list[dict]:
        lines = []
        for name, _, path in self.procs:
            if stage and name != stage:
                continue
            for line in path.read_text().splitlines():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    lines.append({"unparsed": line, "service": name})
        return lines

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc)
                proc.wait()


@pytest.fixture
def workers(tmp_path, redis_conn, clean_db):
    pool = Workers(tmp_path)
    yield pool
    pool.stop()


def wait_for_run(run_id: str, timeout: float = 120, until=("succeeded", "failed", "cancelled")) -> dict:
    """Poll the ledger until the run reaches one of `until`; returns its status dict."""
    from shared import db, ledger

    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        with db.engine().connect() as conn:
            status = ledger.get_status(conn, run_id)
        if status and status["status"] in until:
            return status
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not reach {until} in {timeout}s; last status: {status}")
