"""The moving parts of the benchmark: the scratch database and Redis db, the sample file, the floor
COPY, the transform floor, the naive baseline as a subprocess, and real pipeline runs through the
queue with real workers.

Everything here works on the scratch database `carsales_bench` and Redis db 14 only; bench.py
decides what to measure and in which order.
"""

import json
import os
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg2
import redis
from procmon import PeakRss, cpu_seconds
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from shared.dataset import HEADER, SPLIT_TRIMS
from shared.sqlfile import load_dbapi_queries

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PIPELINE = str(BIN / "pipeline")
PYTHON = str(BIN / "python")
NAIVE = str(ROOT / "benchmarks" / "naive.py")
SCRATCH = ROOT / "benchmarks" / "scratch"
LOG_DIR = SCRATCH / "logs"
TRANSFORM_JOB = ROOT / "services" / "transform" / "job.py"
TRANSFORM_FLOOR_SQL = ROOT / "benchmarks" / "transform_floor.sql"

# BENCH_PG_PORT: another server on this host (e.g. one started with the compose file's settings).
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", int(os.environ.get("BENCH_PG_PORT", "5432")), "postgres"
BENCH_DB = "carsales_bench"  # the only database this benchmark creates, changes or drops
BENCH_DATABASE_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{BENCH_DB}"
BENCH_REDIS_URL = "redis://127.0.0.1:6379/14"
STAGES = ("setup", "ingest", "transform")
RUN_TIMEOUT = 3 * 3600  # seconds a single measured step may take before the benchmark gives up

# The environment of every pipeline process (workers and CLI). Set explicitly, so nothing comes
# from the repository's .env (python-dotenv never overrides a variable that is already set): the
# empty passwords keep setup from changing the cluster-wide roles' passwords.
PIPELINE_ENV = {
    "DATABASE_URL": BENCH_DATABASE_URL,
    "SETUP_DATABASE_URL": BENCH_DATABASE_URL,
    "REDIS_URL": BENCH_REDIS_URL,
    "DATA_DIR": str(SCRATCH),
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    "RETRY_MAX": "0",  # a failure should show at once, not after retries
    "JOB_TIMEOUT": str(RUN_TIMEOUT),
    "PIPELINE_DB_PASSWORD": "",
    "ANALYST_DB_PASSWORD": "",
}


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def transform_available() -> bool:
    """The transform stage is measured as soon as its job module exists."""
    return TRANSFORM_JOB.exists()


def pipeline_env() -> dict[str, str]:
    return {**os.environ, **PIPELINE_ENV}


# --- PostgreSQL and Redis --------------------------------------------------------------------------


def sql(statement: str, params: tuple = (), dbname: str = BENCH_DB) -> list[tuple]:
    """Run one statement in autocommit mode; returns its rows ([] if it returns none)."""
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def drop_database() -> None:
    sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)", dbname="postgres")


def create_database() -> None:
    drop_database()
    sql(f"CREATE DATABASE {BENCH_DB}", dbname="postgres")


def checkpoint() -> None:
    """Flush dirty buffers now, so that one step's writes are not paid for during the next step."""
    sql("CHECKPOINT", dbname="postgres")


def redis_conn() -> redis.Redis:
    return redis.Redis.from_url(BENCH_REDIS_URL)


def flush_redis() -> None:
    redis_conn().flushdb()


def server_facts() -> dict:
    settings = ("server_version", "shared_buffers", "max_wal_size", "synchronous_commit", "wal_level")
    return {name: sql(f"SHOW {name}", dbname="postgres")[0][0] for name in settings}


# --- the sample file -------------------------------------------------------------------------------


def generate_sample(path: Path, lines: int) -> dict:
    """`pipeline sample`: the deterministic file of `lines` data lines; returns its counts and timing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [PIPELINE, "sample", "--rows", str(lines), "--out", str(path), "--seed", "42"],
        capture_output=True,
        text=True,
        env=pipeline_env(),
        cwd=ROOT,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"pipeline sample failed: {proc.stderr.strip()}")
    counts = json.loads(proc.stdout)
    return {
        "path": str(path.relative_to(ROOT)),
        "lines": counts["rows"],
        "bytes": path.stat().st_size,
        "seconds": round(seconds, 2),
    }


def split_file(path: Path, parts: int, out_dir: Path) -> list[Path]:
    """Cut the file into `parts` files of (almost) equal line counts, each with the header line.

    It cuts between physical lines, which is safe for the generated sample: none of its quoted
    fields spans lines.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with path.open("rb") as f:
        total = sum(1 for _ in f) - 1
    per_part = -(-total // parts)  # ceiling division
    paths = [out_dir / f"part-{n + 1}.csv" for n in range(parts)]
    with path.open("rb") as source:
        header = source.readline()
        for part in paths:
            with part.open("wb") as out:
                out.write(header)
                for _ in range(per_part):
                    line = source.readline()
                    if not line:
                        break
                    out.write(line)
    return paths


# --- floor: PostgreSQL's own loading speed ---------------------------------------------------------


def floor_file(path: Path) -> Path:
    """The sample without its 17-field split-trim lines (26 in 558,837), which a plain COPY into 16
    columns cannot read: the file the floor copies (written once beside the sample)."""
    floor = path.with_name(f"{path.stem}-floor{path.suffix}")
    if not floor.exists() or floor.stat().st_mtime < path.stat().st_mtime:
        unquoted = [trim.replace(", ", ",").encode() for trim in SPLIT_TRIMS]
        with path.open("rb") as source, floor.open("wb") as out:
            for line in source:
                if not any(trim in line for trim in unquoted):
                    out.write(line)
    return floor


def time_floor_copy(path: Path, logged: bool) -> float:
    """Seconds for `psql \\copy` of the file into a new table of 16 text columns."""
    table = "floor_logged_t" if logged else "floor_t"
    columns = ", ".join(f"{name} text" for name in HEADER)
    sql(f"DROP TABLE IF EXISTS {table}")
    sql(f"CREATE {'' if logged else 'UNLOGGED '}TABLE {table} ({columns})")
    checkpoint()
    command = f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)"
    started = time.perf_counter()
    proc = subprocess.run(
        ["psql", "-X", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", BENCH_DB, "-c", command],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"psql \\copy into {table} failed: {proc.stderr.strip()}")
    sql(f"DROP TABLE {table}")  # keep autovacuum from working on it during the next step
    return seconds


# --- transform floor: what any transform pays at the least ----------------------------------------


def time_transform_floor(repeat: int) -> dict:
    """benchmarks/transform_floor.sql on the run published in the bench database: the counts of its
    warming read and the seconds of each timed block (read, write), `repeat` times each, every time
    after its `before_` block (which ends in a CHECKPOINT). Its scratch tables are dropped on any exit.

    One connection in autocommit mode, as psql runs the file: `prepare` sets jit off for the session,
    and each block commits on its own (psql commits each statement; every timed block is one)."""
    queries = load_dbapi_queries(TRANSFORM_FLOOR_SQL)
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=BENCH_DB)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(queries["prepare"], {})
            cur.execute(queries["warm"], {})
            raw_lines, facts, fact_bytes = cur.fetchone()
            samples: dict[str, list[float]] = {"read": [], "write": []}
            for step, seconds in samples.items():
                for _ in range(repeat):
                    cur.execute(queries[f"before_{step}"], {})
                    started = time.perf_counter()
                    cur.execute(queries[step], {})
                    seconds.append(time.perf_counter() - started)
    finally:
        conn.close()
        # a connection of its own: the one above may have died mid-statement
        sql(queries["cleanup"])
    return {"raw_lines": raw_lines, "facts": facts, "fact_bytes": int(fact_bytes), "samples": samples}


# --- naive: the original pandas method, one subprocess per phase -----------------------------------


def run_naive(phase: str, *args: str) -> dict:
    """Run benchmarks/naive.py PHASE; returns its wall seconds, peak RSS and its own report."""
    checkpoint()
    log = (LOG_DIR / f"naive-{phase}.log").open("w")
    env = {**os.environ, "DATABASE_URL": BENCH_DATABASE_URL}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, NAIVE, phase, *args], stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
    )
    try:
        with PeakRss({phase: proc.pid}) as rss:
            out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"naive {phase} exited {proc.returncode}; see {log.name}")
    return {"seconds": round(seconds, 3), "peak_rss": rss.peaks[phase], "report": json.loads(out)}


# --- ours: real workers, real queue ----------------------------------------------------------------


class WorkerPool:
    """Real `pipeline worker STAGE` processes. Each is the leader of its own process group, so
    stopping it also stops its work horse. Use it as a context manager: the workers are stopped on
    any exit, including an exception or Ctrl-C."""

    def __init__(self, label: str):
        self.label = label
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, stage: str) -> None:
        name = f"{stage}-{sum(1 for n in self.procs if n.startswith(stage)) + 1}"
        log = (LOG_DIR / f"{self.label}-{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [PIPELINE, "worker", stage],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=pipeline_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()  # the child has its own copy of the file descriptor

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every worker has registered in Redis, so start-up is not timed."""
        deadline = time.monotonic() + timeout
        while Worker.count(connection=redis_conn()) < len(self.procs):
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise BenchError(f"workers did not start ({dead or 'timeout'}); see {LOG_DIR}")
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> "WorkerPool":
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _run_args(sources: list[Path], wait: bool) -> list[str]:
    args = [PIPELINE, "run", "--json"] + (["--wait", "--timeout", str(RUN_TIMEOUT)] if wait else [])
    for source in sources:
        args += ["--source", str(source)]
    return args


def rq_failures() -> list[dict]:
    """Stage, job id and last line of the exception of every job RQ has marked failed.

    Redis db 14 is flushed before each run, so every failed job belongs to the current run."""
    failures = []
    for stage in STAGES:
        for job_id in FailedJobRegistry(stage, connection=redis_conn()).get_job_ids():
            try:
                result = Job.fetch(job_id, connection=redis_conn()).latest_result()
            except NoSuchJobError:
                result = None
            lines = (result.exc_string or "").strip().splitlines() if result else []
            error = lines[-1] if lines else "no exception recorded"
            failures.append({"stage": stage, "job_id": job_id, "error": error})
    return failures


def the_run_id() -> str:
    """The id of the one run in the fresh database."""
    return str(sql("SELECT run_id FROM meta.pipeline_runs")[0][0])


def run_whole(sources: list[Path]) -> str:
    """`pipeline run --source ... --wait --json` until the run ends; returns the run id.

    Stops waiting as soon as RQ marks a job failed: RQ never enqueues the jobs that depend on a
    failed job, so such a run would never end (whatever the ledger says)."""
    proc = subprocess.Popen(
        _run_args(sources, wait=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=pipeline_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        while True:
            try:
                out, _ = proc.communicate(timeout=0.2)
                return json.loads(out)["run_id"] if out.strip() else the_run_id()
            except subprocess.TimeoutExpired:
                if rq_failures():
                    return the_run_id()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_ingest_only(sources: list[Path]) -> str:
    """`pipeline run --source ... --json`, then wait until every ingest job has ended; returns the run id.

    Used while there is no transform stage, and for the scaling runs (which time ingest only)."""
    proc = subprocess.run(
        _run_args(sources, wait=False),
        capture_output=True,
        text=True,
        env=pipeline_env(),
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"pipeline run exited {proc.returncode}: {proc.stderr.strip()}")
    run_id = json.loads(proc.stdout)["run_id"]
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        try:
            stages = ledger_stages(run_id)
        except (psycopg2.OperationalError, psycopg2.ProgrammingError):
            stages = []  # the setup job has not created the database or the ledger yet
        ingest = [s for s in stages if s["stage"] == "ingest"]
        if any(s["status"] == "failed" for s in stages) or (
            ingest and all(s["status"] == "succeeded" and job_times(s["job_id"]) for s in ingest)
        ):
            return run_id
        time.sleep(0.1)
    raise BenchError(f"run {run_id}: ingest did not end within {RUN_TIMEOUT} s")


def ledger_stages(run_id: str) -> list[dict]:
    rows = sql(
        "SELECT stage, task, job_id, status, rows_in, rows_out, rows_rejected, error, details "
        "FROM meta.stage_runs WHERE run_id = %s ORDER BY position",
        (run_id,),
    )
    keys = ("stage", "task", "job_id", "status", "rows_in", "rows_out", "rows_rejected", "error", "details")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def job_times(job_id: str) -> tuple[datetime, datetime] | None:
    """When RQ started and ended a job (succeeded or failed): the work horse's whole job."""
    try:
        job = Job.fetch(job_id, connection=redis_conn())
    except NoSuchJobError:
        return None
    if job.started_at is None or job.ended_at is None:
        return None
    return job.started_at, job.ended_at


def wait_for_jobs(stages: list[dict], timeout: float = 60) -> dict[str, tuple[datetime, datetime]]:
    """RQ's start and end of every job the ledger calls succeeded. A job records its success in the
    ledger a little before it returns (it still logs, and returns its result to RQ), so this waits
    for RQ to record the end."""
    job_ids = [s["job_id"] for s in stages if s["status"] == "succeeded"]
    deadline = time.monotonic() + timeout
    while True:
        times = {job_id: job_times(job_id) for job_id in job_ids}
        if all(times.values()):
            return times
        if time.monotonic() > deadline:
            raise BenchError(f"RQ never recorded the end of jobs {[j for j, t in times.items() if not t]}")
        time.sleep(0.05)


def stage_seconds(stages: list[dict], times: dict, stage: str) -> float | None:
    """Wall seconds of a stage: its first job's start to its last job's end, as RQ recorded them.

    RQ's times cover the whole job (fork to result); meta.stage_runs only had the time the job's
    transaction began until cc6ff39 (see docs/performance.md)."""
    spans = [times[s["job_id"]] for s in stages if s["stage"] == stage and s["job_id"] in times]
    if not spans:
        return None
    return round((max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds(), 3)


class CpuMeter:
    """CPU seconds per stage while the block runs, in the workers and in PostgreSQL.

    Workers: each worker's own CPU plus that of the work horses it forked and waited for (the
    kernel adds a waited-for child's time to its parent), counted exactly. PostgreSQL: every backend
    of the bench database whose application is a stage's (`carsales-<stage>`, the parallel workers
    of such a backend included), read from /proc while it lives, every `interval` seconds: what a
    backend uses in its last interval before it exits is missed. Server processes that serve no
    session (checkpointer, WAL writer, autovacuum) are not counted."""

    def __init__(self, workers: dict[str, int], interval: float = 0.05):
        self.workers = workers
        self.interval = interval
        self._start = {name: cpu_seconds(pid, children=True) for name, pid in workers.items()}
        self.backends: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="cpu-meter", daemon=True)

    def _sample(self, cur) -> None:
        cur.execute(
            "SELECT a.pid, coalesce(l.application_name, a.application_name) FROM pg_stat_activity a "
            "LEFT JOIN pg_stat_activity l ON l.pid = a.leader_pid WHERE a.datname = %s",
            (BENCH_DB,),
        )
        for pid, app in cur.fetchall():
            if app and app.startswith("carsales-"):
                seen = self.backends.get(pid, (app, 0.0))[1]
                self.backends[pid] = (app, max(seen, cpu_seconds(pid)))

    def _poll(self) -> None:
        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    self._sample(cur)
                    self._stop.wait(self.interval)
                self._sample(cur)
        finally:
            conn.close()

    def __enter__(self) -> "CpuMeter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = {stage: {"workers": 0.0, "postgres": 0.0} for stage in STAGES}
        for name, pid in self.workers.items():
            stage = name.rsplit("-", 1)[0]
            used = cpu_seconds(pid, children=True) - self._start[name]
            self.seconds[stage]["workers"] = round(self.seconds[stage]["workers"] + used, 3)
        for app, used in self.backends.values():
            stage = app.removeprefix("carsales-")
            if stage in self.seconds:
                self.seconds[stage]["postgres"] = round(self.seconds[stage]["postgres"] + used, 3)


def run_pipeline(
    label: str, sources: list[Path], ingest_workers: int, with_transform: bool, transform_workers: int = 1
) -> dict:
    """One run through the queue on a fresh database: setup, ingest (one job per source) and, when
    `with_transform`, transform. Returns stage seconds, CPU seconds, rows, peak RSS per worker and
    the ledger."""
    drop_database()  # the setup stage creates it again, as on a first deployment
    flush_redis()
    checkpoint()
    with WorkerPool(label) as pool:
        pool.start("setup")
        for _ in range(ingest_workers):
            pool.start("ingest")
        if with_transform:
            for _ in range(transform_workers):
                pool.start("transform")
        pool.wait_ready()
        wal_before = wal_position()
        with PeakRss(pool.pids()) as rss, CpuMeter(pool.pids()) as cpu:
            started = time.perf_counter()
            run_id = run_whole(sources) if with_transform else run_ingest_only(sources)
            stages = ledger_stages(run_id)
            times = wait_for_jobs(stages)
            wall = time.perf_counter() - started
        run_status = sql("SELECT status FROM meta.pipeline_runs WHERE run_id = %s", (run_id,))[0][0]
        result = summarize_run(run_id, run_status, stages, times, wall, rss.peaks, with_transform)
        result["wal_bytes"] = wal_bytes_since(wal_before)
        result["cpu_seconds"] = cpu.seconds
        result["transform_workers"] = transform_workers if with_transform else 0
        if with_transform:
            result["transform_split"] = transform_split(stages, times)
        return result


def transform_split(stages: list[dict], times: dict) -> dict:
    """The transform's wall time cut into its plan, its chunk jobs (the part more workers share:
    first chunk start to last chunk end) and its publish (the serial part), from RQ's job times."""

    def span(jobs: list[dict]) -> float | None:
        spans = [times[s["job_id"]] for s in jobs if s["job_id"] in times]
        if not spans:
            return None
        return round((max(e for _, e in spans) - min(b for b, _ in spans)).total_seconds(), 3)

    transform = [s for s in stages if s["stage"] == "transform"]
    chunks = [s for s in transform if s["task"].startswith("chunk ")]
    publish = [s for s in transform if s["task"] == "publish"]
    whole = span(transform)
    serial = span(publish)
    return {
        "plan_seconds": span([s for s in transform if s["task"] == ""]),
        "chunks": len(chunks),
        "chunks_seconds": span(chunks),
        "chunk_job_seconds": round(sum(span([c]) or 0 for c in chunks), 3),
        "publish_seconds": serial,
        "serial_share": round(serial / whole, 3) if serial and whole else None,
    }


def wal_position() -> str:
    return sql("SELECT pg_current_wal_lsn()", dbname="postgres")[0][0]


def wal_bytes_since(position: str) -> int:
    """WAL written since `position`, by the whole server (other databases' writes included)."""
    return int(sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (position,), "postgres")[0][0])


def summarize_run(
    run_id: str,
    run_status: str,
    stages: list[dict],
    times: dict,
    wall: float,
    peaks: dict,
    with_transform: bool,
) -> dict:
    """The figures of one run. With the transform the run must have succeeded; without it, every
    ingest job must have succeeded in the ledger (the run itself stays open: nothing transforms)."""
    ingest = [s for s in stages if s["stage"] == "ingest"]
    transform = [s for s in stages if s["stage"] == "transform"]
    failed = [s for s in stages if s["status"] == "failed"]
    rq_failed = rq_failures()
    if with_transform:
        ok = run_status == "succeeded"
    else:
        ok = not failed and all(s["status"] == "succeeded" for s in ingest)
    error = None
    if failed:
        error = f"{failed[0]['stage']}: {failed[0]['error']}"
    elif not ok:
        rq_errors = "; ".join(f"{f['stage']} job failed in RQ: {f['error']}" for f in rq_failed)
        error = f"run {run_status}; {rq_errors or 'no job failed in RQ'}"
    result = {
        "run_id": run_id,
        "status": "succeeded" if ok else "failed",
        "error": error,
        "rq_failed_jobs": rq_failed,  # jobs RQ marked failed although the ledger may say succeeded
        "wall_seconds": round(wall, 3),
        "wall_covers": "enqueue to run succeeded" if with_transform else "enqueue to last ingest job done",
        "seconds": {stage: stage_seconds(stages, times, stage) for stage in STAGES},
        "rows_loaded": sum(s["rows_out"] or 0 for s in ingest),
        "rows_rejected": sum(s["rows_rejected"] or 0 for s in ingest),
        # the transform's result is its publish job's (the last of its jobs)
        "transform_rows_in": transform[-1]["rows_in"] if with_transform and transform else None,
        "transform_rows_out": transform[-1]["rows_out"] if with_transform and transform else None,
        "peak_rss": peaks,
        "ledger": [
            {
                "stage": s["stage"],
                "task": Path(s["task"]).name if s["task"] else "",
                "status": s["status"],
                "rows_in": s["rows_in"],
                "rows_out": s["rows_out"],
                "details": s["details"],
            }
            for s in stages
        ],
    }
    return result
