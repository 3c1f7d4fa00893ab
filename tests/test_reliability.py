"""Faults injected for real: killed workers, dropped connections, lost Redis, SIGTERM, races.

Each test starts real `pipeline worker` processes against the session's PostgreSQL database and
Redis, breaks something for real and then checks the promise: the run either completes with
exact counts after recovery, or ends `failed` with a clear error and can be resumed with
`pipeline retry`; never a half-published state, never duplicates. See docs/guarantees.md.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import psycopg2
import pytest
import sqlalchemy as sa

from shared.dataset import HEADER_LINE
from tests.conftest import (
    DATA_DIR,
    GOOD,
    ROOT,
    descendants,
    enqueue_around_cli,
    hold_raw,
    kill_tree,
    run_cli,
    wait_for_run,
)
from tests.polling import wait_until

BIG_ROWS = 600_000  # about 93 MB: COPY runs for seconds, long enough to be hit mid-way
ABANDON_DEADLINE = 120  # the promise: a dead worker's stage is failed in the ledger within 2 minutes
# RQ alone would keep a dead worker's job `started` 65 s past its last heartbeat
# (PipelineWorker.get_heartbeat_ttl shortens that to 25 s).
HEARTBEAT_DEADLINE = 60


# --- helpers --------------------------------------------------------------------------------------


def require_transform():
    """Skip while the transform stage is not written yet; import errors in it still fail loudly."""
    if not (ROOT / "services" / "transform" / "job.py").exists():
        pytest.skip("services/transform/job.py does not exist yet (transform stage being written)")
    import services.transform.job  # noqa: F401


def has_transform() -> bool:
    return (ROOT / "services" / "transform" / "job.py").exists()


@pytest.fixture(scope="module")
def big_file(test_database):
    """A realistic 600,000-line sample, generated once for the module, inside DATA_DIR."""
    from tools.sample import write_sample

    folder = DATA_DIR / f"reliability-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    path = folder / "big sample.csv"
    write_sample(path, BIG_ROWS, seed=11)
    yield path
    path.unlink(missing_ok=True)
    folder.rmdir()


def start_run(*sources: str, env: dict | None = None) -> str:
    args = ["run", "--json"] + (["--source", *sources] if sources else [])
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["run_id"]


def status_of(run_id: str) -> dict:
    from shared import db, ledger

    with db.engine().connect() as conn:
        return ledger.get_status(conn, run_id)


def stage_rows(status: dict, stage: str) -> list[dict]:
    return [s for s in status["stages"] if s["stage"] == stage]


def wait_stage(run_id: str, stage: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    """Wait until every job of `stage` in the run has one of `statuses`; returns the run status."""

    last = {}

    def reached():
        last["status"] = status = status_of(run_id)
        jobs = stage_rows(status, stage) if status else []
        return status if jobs and all(j["status"] in statuses for j in jobs) else None

    try:
        return wait_until(reached, timeout, f"{stage} of run {run_id} to reach {statuses}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {last.get('status')}") from None


def wait_task(run_id: str, stage: str, task: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    """Wait until the run's job `task` of `stage` (a transform's "chunk 2", "publish") has one of
    `statuses`; returns the run status."""

    def reached():
        status = status_of(run_id)
        jobs = [s for s in stage_rows(status, stage) if s["task"] == task] if status else []
        return status if jobs and jobs[0]["status"] in statuses else None

    return wait_until(reached, timeout, f"{stage} {task} of run {run_id} to reach {statuses}", interval=0.05)


def task_row(status: dict, stage: str, task: str) -> dict:
    return next(s for s in stage_rows(status, stage) if s["task"] == task)


# Server processes of this database doing a job's work, by what they are doing.
BACKENDS = {
    "copy": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND state = 'active' AND query LIKE 'COPY \"raw\".\"car_prices_b%'",
    "waiting_on_lock": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND state = 'active'",
    # A batch whose rows are all written, waiting to attach its partition (see hold_raw below).
    "attach_waiting": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND state = 'active' AND query LIKE 'ALTER TABLE raw.car_prices ATTACH%'",
    "transform": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'carsales-transform' AND backend_xid IS NOT NULL "
    "AND state IN ('active', 'idle in transaction')",
}


def backends(engine, kind: str) -> list[int]:
    """PIDs of the server processes doing `kind` of work right now (see BACKENDS)."""
    with engine.connect() as conn:
        return conn.execute(sa.text(BACKENDS[kind])).scalars().all()


def transform_writing(engine, run_id: str, interval: float) -> list[int]:
    """The server processes of the run's transform once it writes; fails if the run ends first."""
    found = wait_until(
        lambda: backends(engine, "transform") or status_of(run_id)["status"] != "running",
        120,
        "the transform to write",
        interval=interval,
    )
    assert isinstance(found, list), f"the run ended first: {status_of(run_id)['error']}"
    return found


def kill_worker_hard(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> list[int]:
    """SIGKILL a worker as a crashed container would die: the worker and every process under it."""
    victims = kill_tree(proc, sig)
    proc.wait(timeout=10)
    return victims


def raw_counts(engine, source_file: str) -> tuple[int, int, int]:
    """(rows in raw, rejected lines, batches) of a file, by name."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM raw.car_prices_lineage WHERE _source_file = :f), "
                "(SELECT count(*) FROM raw.rejected_lines WHERE source_file = :f), "
                "(SELECT count(*) FROM meta.ingested_files WHERE source_file = :f)"
            ),
            {"f": source_file},
        ).one()


def staging_counts(engine) -> tuple[int, int]:
    """(facts, quarantined lines) in staging."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM staging.fact_car_sales), "
                "(SELECT count(*) FROM staging.quarantined_sales)"
            )
        ).one()


def assert_published_exactly(engine):
    """Every raw row is published exactly once: a fact or a quarantined line, never both."""
    with engine.connect() as conn:
        raw, distinct_raw = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT (_source_sha256, _line_number)) FROM raw.car_prices_lineage"
            )
        ).one()
        overlap = conn.execute(
            sa.text(
                "SELECT count(*) FROM staging.fact_car_sales f JOIN staging.quarantined_sales q "
                "USING (source_sha256, line_number)"
            )
        ).scalar()
        dup_facts = conn.execute(
            sa.text(
                "SELECT count(*) - count(DISTINCT (source_sha256, line_number)) FROM staging.fact_car_sales"
            )
        ).scalar()
    facts, quarantined = staging_counts(engine)
    assert raw == distinct_raw, "raw holds no line twice"
    assert (overlap, dup_facts) == (0, 0)
    assert facts + quarantined == raw, (facts, quarantined, raw)


def retry(run_id: str, env: dict | None = None) -> None:
    proc = run_cli("retry", run_id, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"run {run_id} requeued" in proc.stdout


# --- a worker killed with SIGKILL mid-job -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ingest_worker_killed_mid_copy_is_failed_then_retry_loads_exactly_once(workers, engine, big_file):
    workers.start("setup")
    victim = workers.start("ingest")
    if has_transform():
        workers.start("transform")
    run_id = start_run(str(big_file))
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    # A worker of the same stage stays alive: its own registry cleaning must not retry the dead
    # worker's job either (every job's on_failure callback, shared.worker).
    workers.start("ingest")
    time.sleep(0.5)  # well inside the COPY
    assert backends(engine, "copy"), "the COPY is still running when the worker is killed"
    killed_at = time.monotonic()
    kill_worker_hard(victim)

    # The whole transaction died with the connection: nothing of the file is visible.
    wait_until(lambda: not backends(engine, "copy"), 30, "the server to end the COPY")
    assert raw_counts(engine, big_file.name) == (0, 0, 0)
    status = wait_for_run(run_id, timeout=ABANDON_DEADLINE, until=("failed", "succeeded"))
    detected = time.monotonic() - killed_at
    assert status["status"] == "failed", status
    assert detected < ABANDON_DEADLINE
    assert detected < HEARTBEAT_DEADLINE, f"abandoned job detected after {detected:.1f}s"
    ingest = stage_rows(status, "ingest")[0]
    assert ingest["status"] == "failed" and ingest["error"].startswith("abandoned: worker ingest-"), ingest
    assert ingest["attempt"] == 1, "the job was not retried by RQ"
    assert status["failed_stage"] == "ingest" and "abandoned" in status["error"]
    later = [s["status"] for s in status["stages"] if s["stage"] == "transform"]
    assert later == ["not_run"]

    workers.start("ingest")
    retry(run_id)
    timeout = 240 if has_transform() else 120
    if has_transform():
        status = wait_for_run(run_id, timeout=timeout)
        assert status["status"] == "succeeded", status
    else:
        status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=timeout)
    ingest = stage_rows(status, "ingest")[0]
    assert (ingest["status"], ingest["attempt"]) == ("succeeded", 2), ingest
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)
    assert (ingest["rows_in"], ingest["rows_out"], ingest["rows_rejected"]) == (BIG_ROWS, rows, rejects)
    if has_transform():
        assert_published_exactly(engine)
    print(f"abandoned job detected after {detected:.1f}s")


@pytest.mark.timeout(60)
def test_an_abandoned_job_is_failed_not_retried_whoever_cleans_the_registry(redis_conn):
    """RQ's own registry cleaning (any worker's, rq-dashboard's) retries a dead worker's job while
    it has retries left; every job's on_failure callback (shared.worker) makes it fail instead."""
    from rq.executions import Execution
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from shared import queues

    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=[])
    (job,) = queues.enqueue_plan(spec, queues.plan_run(spec), redis_conn)
    assert job.retries_left == 2
    queue = queues.queue("setup", redis_conn)
    queue.remove(job)
    with redis_conn.pipeline() as pipe:  # what a worker does as it starts the job; then it dies
        job.prepare_for_execution("dead-worker", pipe)
        Execution.create(job, ttl=1, pipeline=pipe, worker_name="dead-worker")
        pipe.execute()
    time.sleep(1.5)  # its heartbeat expires
    StartedJobRegistry("setup", connection=redis_conn).cleanup()  # RQ's cleaning, as every worker runs it
    assert job.get_status() == "failed"
    assert job.id in FailedJobRegistry("setup", connection=redis_conn).get_job_ids()
    assert queue.job_ids == [], "not requeued"


# --- SIGTERM: warm shutdown finishes the job, a second signal abandons it cleanly -------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_mid_job_finishes_the_job_and_takes_no_other(workers, engine, big_file, data_dir):
    workers.start("setup")
    victim = workers.start("ingest")
    run_id = start_run(str(big_file))
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    os.kill(victim.pid, signal.SIGTERM)  # what `docker stop` does: the worker process only
    small = data_dir / "after-sigterm.csv"
    small.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    later_run = start_run(str(small))

    assert victim.wait(timeout=120) == 0, "the worker exits cleanly once its job is done"
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=30)
    ingest = stage_rows(status, "ingest")[0]
    assert (ingest["status"], ingest["attempt"]) == ("succeeded", 1), ingest
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)
    assert ingest["rows_out"] == rows
    # The stopping worker took no new job: the later run's file waits for another worker.
    assert stage_rows(status_of(later_run), "ingest")[0]["status"] == "pending"
    assert raw_counts(engine, small.name) == (0, 0, 0)
    events = [e.get("event", "") for e in workers.logs("ingest")]
    assert any("warm shut down requested" in e for e in events), events[-20:]

    workers.start("ingest")
    wait_stage(later_run, "ingest", ("succeeded",), timeout=60)
    assert raw_counts(engine, small.name) == (1, 0, 1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_second_sigterm_abandons_the_job_cleanly_and_retry_completes(workers, engine, big_file):
    workers.start("setup")
    victim = workers.start("ingest")
    with hold_raw():
        run_id = start_run(str(big_file))
        wait_until(lambda: backends(engine, "attach_waiting"), 120, "the rows to be written", interval=0.05)
        os.kill(victim.pid, signal.SIGTERM)
        time.sleep(1.5)  # RQ ignores a second signal within 1 s of the first
        assert backends(engine, "attach_waiting"), "the job is still running at the cold shutdown"
        signalled = time.monotonic()
        os.kill(victim.pid, signal.SIGTERM)  # cold shutdown: RQ kills the work horse
        victim.wait(timeout=30)

        # Failed at once in the ledger (no heartbeat expiry to wait for).
        status = wait_for_run(run_id, timeout=20, until=("failed", "succeeded"))
        assert time.monotonic() - signalled < 20
        ingest = stage_rows(status, "ingest")[0]
        assert ingest["status"] == "failed" and "shut down (cold)" in ingest["error"], ingest
        assert [s["status"] for s in stage_rows(status, "transform")] == ["not_run"]
    # Its server process, once it gets the lock, finds its client gone and rolls everything back.
    wait_until(lambda: not backends(engine, "attach_waiting"), 30, "the server to end the job's transaction")
    assert raw_counts(engine, big_file.name) == (0, 0, 0)

    workers.start("ingest")
    retry(run_id)
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=120)
    ingest = stage_rows(status, "ingest")[0]
    assert (ingest["status"], ingest["attempt"]) == ("succeeded", 2), ingest
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)


# --- Redis lost and back: the worker reconnects -----------------------------------------------------


class SpareRedis:
    """A redis-server of our own on a spare port, to stop and start again; no persistence.

    `start(password=None)` starts it (again, on the same port) and returns a client;
    `url` is the URL workers and the CLI use (with the password once one was given)."""

    def __init__(self, folder: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.procs: list[subprocess.Popen] = []

    def start(self, password: str | None = None):
        import redis

        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        args += ["no", "--daemonize", "no", "--dir", str(self.folder)]
        if password:
            args += ["--requirepass", password]
            self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), 10, "the spare redis to answer", interval=0.05)
        return client

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


@pytest.fixture
def spare_redis(tmp_path):
    spare = SpareRedis(tmp_path)
    yield spare
    spare.stop()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def _worker_registered(client) -> bool:
    return any(key.startswith(b"rq:worker:") for key in client.keys("rq:worker:*"))


@pytest.mark.timeout(180)
def test_an_idle_worker_reconnects_after_a_redis_restart(workers, spare_redis):
    env = {"REDIS_URL": spare_redis.url}
    client = spare_redis.start()
    worker = workers.start("setup", env=env)
    wait_until(lambda: _worker_registered(client), 30, "the worker to register")
    spare_redis.stop()
    time.sleep(4)  # the worker's blocking dequeue fails; it retries with backoff
    client = spare_redis.start()
    assert worker.poll() is None, "the worker survived the outage"
    run_id = start_run(env=env)
    status = wait_for_run(run_id, timeout=90)
    assert status["status"] == "succeeded", status
    assert worker.poll() is None
    assert any("could not connect to Redis" in str(e.get("event")) for e in workers.logs("setup"))
    # Asked to stop while Redis is away, it stops (RQ alone would keep retrying Redis).
    spare_redis.stop()
    time.sleep(2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_busy_worker_survives_a_redis_restart_and_the_run_can_be_resumed(
    workers, engine, big_file, spare_redis, data_dir
):
    """Redis restarts empty (no persistence) while a job runs: the job's data is committed once,
    the worker keeps serving, the jobs Redis forgot fail the run as `job lost`, retry completes it."""
    env = {"REDIS_URL": spare_redis.url}
    spare_redis.start()
    workers.start("setup", env=env)
    worker = workers.start("ingest", env=env)
    run_id = start_run(str(big_file), env=env)
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    spare_redis.stop()
    time.sleep(6)  # more than a heartbeat interval without Redis
    spare_redis.start()

    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=120)
    ingest = stage_rows(status, "ingest")[0]
    assert ingest["status"] == "succeeded", ingest
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)
    # Redis forgot the deferred transform job: the sweeper fails the run instead of waiting forever.
    status = wait_for_run(run_id, timeout=90, until=("failed", "succeeded"))
    assert status["status"] == "failed" and "job lost" in status["error"], status
    assert worker.poll() is None, "the ingest worker is still serving"

    small = data_dir / "after-outage.csv"
    small.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    second = start_run(str(small), env=env)
    wait_stage(second, "ingest", ("succeeded",), timeout=60)
    assert raw_counts(engine, small.name) == (1, 0, 1)
    if has_transform():
        workers.start("transform", env=env)
        retry(run_id, env=env)
        final = wait_for_run(run_id, timeout=240)
        assert final["status"] == "succeeded", final
        assert_published_exactly(engine)


@pytest.mark.timeout(180)
def test_sigterm_while_busy_without_redis_finishes_the_job_and_stops(
    workers, engine, medium_file, spare_redis
):
    env = {"REDIS_URL": spare_redis.url}
    spare_redis.start()
    workers.start("setup", env=env)
    worker = workers.start("ingest", env=env)
    run_id = start_run(str(medium_file), env=env)
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    horses = work_horses(worker)
    spare_redis.stop()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=90) == 0, "the worker stops once its job is done, Redis or not"
    # It waited for its work horse: in a container, an orphan would die with the worker mid-job.
    assert horses and not [pid for pid in horses if psutil.pid_exists(pid)]
    ingest = stage_rows(status_of(run_id), "ingest")[0]
    assert (ingest["status"], ingest["attempt"]) == ("succeeded", 1), ingest
    rows, rejects, batches = raw_counts(engine, medium_file.name)
    assert (rows + rejects, batches) == (200_000, 1)


def work_horses(proc: subprocess.Popen) -> list[int]:
    """The worker's RQ work horses: its children that lead a process group of their own."""
    horses = []
    for pid in descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                horses.append(pid)
    return horses


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_work_horse_is_retried_by_its_worker_and_loads_once(workers, engine, big_file):
    """Only the work horse dies (the OOM killer's choice): the worker sees it at once, RQ retries
    the job, and the file is loaded exactly once."""
    workers.start("setup")
    worker = workers.start("ingest")
    run_id = start_run(str(big_file))
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    horses = work_horses(worker)
    assert len(horses) == 1
    os.kill(horses[0], signal.SIGKILL)
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=120)
    ingest = stage_rows(status, "ingest")[0]
    assert (ingest["status"], ingest["attempt"]) == ("succeeded", 2), ingest
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)
    assert worker.poll() is None


# --- pipeline cancel and pipeline retry ------------------------------------------------------------


def _rq_status(redis_conn, job_id: str) -> str:
    from rq.job import Job

    return Job.fetch(job_id, connection=redis_conn).get_status()


@pytest.mark.timeout(180)
def test_cancel_cancels_queued_jobs_and_retry_resumes(workers, engine, data_dir, redis_conn):
    workers.start("setup")  # no ingest worker yet: the ingest jobs stay queued
    paths = []
    for i in range(2):
        path = data_dir / f"queued-{i}.csv"
        path.write_text(HEADER_LINE + "\n" + (GOOD.replace("16639", str(i)) + "\n") * (i + 1))
        paths.append(str(path))
    run_id = start_run(*paths)
    wait_stage(run_id, "setup", ("succeeded",), timeout=60)
    job_ids = [f"run-{run_id}-ingest-0", f"run-{run_id}-ingest-1", f"run-{run_id}-transform"]
    # RQ enqueues a job's dependents just after the job's own commit: wait for it.
    wait_until(
        lambda: [_rq_status(redis_conn, j) for j in job_ids] == ["queued", "queued", "deferred"],
        10,
        "the ingest jobs to be queued",
    )

    proc = run_cli("cancel", run_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"run {run_id} cancelled (3 queued job(s) cancelled)"
    assert [_rq_status(redis_conn, j) for j in job_ids] == ["canceled"] * 3
    status = status_of(run_id)
    assert (status["status"], status["error"]) == ("cancelled", "cancelled by operator")
    assert [s["status"] for s in status["stages"]] == ["succeeded", "cancelled", "cancelled", "cancelled"]

    workers.start("ingest")
    time.sleep(3)  # a worker is there now, and finds nothing to do
    assert [raw_counts(engine, os.path.basename(p)) for p in paths] == [(0, 0, 0), (0, 0, 0)]
    again = run_cli("cancel", run_id)
    assert again.returncode == 2 and "is not queued or running" in again.stderr

    retry(run_id)
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=60)
    assert [s["rows_out"] for s in stage_rows(status, "ingest")] == [1, 2]
    assert [raw_counts(engine, os.path.basename(p)) for p in paths] == [(1, 0, 1), (2, 0, 1)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cancel_during_a_job_rolls_its_work_back(workers, engine, big_file, redis_conn):
    workers.start("setup")
    workers.start("ingest")
    run_id = start_run(str(big_file))
    wait_until(lambda: backends(engine, "copy"), 120, "the COPY to start", interval=0.05)
    proc = run_cli("cancel", run_id)
    assert proc.returncode == 0, proc.stderr
    assert "1 running job(s) will roll their work back" in proc.stdout
    assert _rq_status(redis_conn, f"run-{run_id}-transform") == "canceled"

    status = wait_stage(run_id, "ingest", ("cancelled", "succeeded", "failed"), timeout=120)
    ingest = stage_rows(status, "ingest")[0]
    assert ingest["status"] == "cancelled" and "rolled back" in ingest["error"], ingest
    assert status["status"] == "cancelled"
    assert raw_counts(engine, big_file.name) == (0, 0, 0), "nothing of a cancelled job is kept"

    retry(run_id)
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=120)
    assert stage_rows(status, "ingest")[0]["status"] == "succeeded"
    rows, rejects, batches = raw_counts(engine, big_file.name)
    assert (rows + rejects, batches) == (BIG_ROWS, 1)


@pytest.mark.timeout(180)
def test_two_retries_at_once_enqueue_the_run_once(workers, engine, data_dir):
    """The input was missing; the operator puts it in place and retries twice at once."""
    workers.start("setup")
    workers.start("ingest")
    workers.start("ingest")
    path = data_dir / "late.csv"
    run_id = enqueue_around_cli(str(path))  # `pipeline run` would refuse the missing file at once
    status = wait_stage(run_id, "ingest", ("failed",), timeout=60)
    assert "late.csv: no such file" in stage_rows(status, "ingest")[0]["error"]
    path.write_text(HEADER_LINE + "\n" + (GOOD + "\n") * 20_000)

    from tests.conftest import PIPELINE

    # Both commands read the run as failed, then meet at its row: hold it until both wait there.
    with engine.connect() as blocker:
        blocker.execute(
            sa.text("SELECT 1 FROM meta.pipeline_runs WHERE run_id = :r FOR UPDATE"), {"r": run_id}
        )
        procs = [
            subprocess.Popen(
                [PIPELINE, "retry", run_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        wait_until(lambda: len(backends(engine, "waiting_on_lock")) == 2, 30, "both retries to wait")
        blocker.rollback()
    outcomes = sorted((p.wait(timeout=60), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "no longer failed or cancelled (retried meanwhile?); nothing enqueued" in outcomes[1][1]
    status = wait_stage(run_id, "ingest", ("succeeded", "failed"), timeout=60)
    time.sleep(2)  # a second ingest job, had one been enqueued, would have run by now
    ingest = stage_rows(status_of(run_id), "ingest")[0]
    assert (ingest["status"], ingest["attempt"], ingest["rows_out"]) == ("succeeded", 2, 20_000), ingest
    assert raw_counts(engine, "late.csv") == (20_000, 0, 1)


# --- the transform stage under faults ---------------------------------------------------------------

TRANSFORM_LOCK = "carsales:transform"


def published(engine) -> tuple[int, int, int]:
    """(facts, quarantined lines, a checksum of the published sale ids): a snapshot of staging."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM staging.fact_car_sales), "
                "(SELECT count(*) FROM staging.quarantined_sales), "
                "(SELECT coalesce(sum(hashtext(sale_id::text)::bigint), 0) FROM staging.fact_car_sales)"
            )
        ).one()


@pytest.fixture(scope="module")
def medium_file(test_database):
    """A 200,000-line sample for the transform tests, generated once for the module."""
    from tools.sample import write_sample

    folder = DATA_DIR / f"reliability-m-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    path = folder / "medium.csv"
    write_sample(path, 200_000, seed=5)
    yield path
    path.unlink(missing_ok=True)
    folder.rmdir()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("victim_task", ["chunk 2", "publish"])
def test_transform_worker_killed_mid_job_publishes_nothing_and_retry_is_exact(
    workers, engine, medium_file, data_dir, victim_task
):
    """A transform worker dies mid-chunk or mid-publish: nothing of the run is visible, the run
    fails naming the job, and a retry redoes that job only (a chunk committed before is kept)."""
    require_transform()
    from tools.sample import write_sample

    workers.start("setup")
    workers.start("ingest")
    victim = workers.start("transform")
    first = data_dir / "first.csv"
    write_sample(first, 2_000, seed=21)
    done = wait_for_run(start_run(str(first)), timeout=120)
    assert done["status"] == "succeeded", done["error"]
    before = published(engine)
    assert before[0] > 0

    run_id = start_run(str(medium_file))  # 200,000 lines: two chunks
    wait_task(run_id, "transform", victim_task, ("running",), timeout=120)
    transform_writing(engine, run_id, interval=0.02)
    killed_at = time.monotonic()
    kill_worker_hard(victim)
    status = status_of(run_id)
    while status["status"] not in ("failed", "succeeded") and time.monotonic() - killed_at < ABANDON_DEADLINE:
        assert published(engine) == before, "nothing of the killed transform is visible"
        time.sleep(1)
        status = status_of(run_id)
    assert status["status"] == "failed", status
    assert time.monotonic() - killed_at < ABANDON_DEADLINE
    transform = task_row(status, "transform", victim_task)
    assert transform["status"] == "failed" and transform["error"].startswith("abandoned: worker transform-")
    assert task_row(status, "transform", "chunk 1")["status"] == "succeeded"
    assert published(engine) == before

    workers.start("transform")
    retry(run_id)
    status = wait_for_run(run_id, timeout=240)
    assert status["status"] == "succeeded", status
    assert task_row(status, "transform", victim_task)["attempt"] == 2
    assert task_row(status, "transform", "chunk 1")["attempt"] == 1, "a committed chunk is not redone"
    assert_published_exactly(engine)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_dropped_connection_mid_transform_is_retried_and_completes(workers, engine, medium_file):
    require_transform()
    workers.start_all()
    run_id = start_run(str(medium_file))
    wait_task(run_id, "transform", "chunk 1", ("running",), timeout=120)  # its ledger entry is committed
    pids = transform_writing(engine, run_id, interval=0.02)
    with engine.connect() as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    status = wait_for_run(run_id, timeout=240)
    assert status["status"] == "succeeded", status
    retried_jobs = [s for s in stage_rows(status, "transform") if s["attempt"] == 2]
    assert len(retried_jobs) == 1, stage_rows(status, "transform")
    assert_published_exactly(engine)
    retried = [e for e in workers.logs("transform") if e.get("event") == "stage will retry"]
    assert retried and retried[0]["run_id"] == run_id


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runs_of_the_same_file_at_once_load_it_once_and_transforms_serialize(
    workers, engine, medium_file, data_dir
):
    """Two runs share a file: it is loaded once. Their transforms, held at the advisory lock until
    both wait there, then run one after the other and publish every raw row exactly once."""
    require_transform()
    from shared import db
    from tools.sample import write_sample

    workers.start_all(ingest=2, transform=2)
    extra = data_dir / "extra.csv"
    write_sample(extra, 5_000, seed=8)
    # A connection of its own, closed whatever happens: a session lock left in a pooled connection
    # would hold every later transform of the test session.
    holder = psycopg2.connect(os.environ["DATABASE_URL"])
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            db.connection_lock(cur, TRANSFORM_LOCK)
        runs = [start_run(str(medium_file)), start_run(str(medium_file), str(extra))]
        for run_id in runs:  # their chunks clean at once; their publishes wait for the lock
            wait_task(run_id, "transform", "publish", ("running",), timeout=120)
        waiting = wait_until(
            lambda: (
                backends(engine, "waiting_on_lock") if len(backends(engine, "waiting_on_lock")) == 2 else None
            ),
            60,
            "both transforms to wait for the lock",
        )
        assert len(waiting) == 2
        assert published(engine)[:2] == (0, 0), "nothing is published while the lock is held"
    finally:
        holder.close()  # releases the lock
    statuses = [wait_for_run(run_id, timeout=240) for run_id in runs]
    assert [s["status"] for s in statuses] == ["succeeded", "succeeded"], statuses
    loads = sorted(s["rows_out"] + s["rows_rejected"] for st in statuses for s in stage_rows(st, "ingest"))
    assert loads == [0, 5_000, 200_000], "the shared file was loaded by one run only"
    rows, rejects, batches = raw_counts(engine, medium_file.name)
    assert (rows + rejects, batches) == (200_000, 1)
    assert_published_exactly(engine)


@pytest.mark.timeout(180)
def test_a_job_delivered_twice_does_not_redo_or_recount_its_work(workers, engine, data_dir, redis_conn):
    """RQ delivers a job again when it cannot record its end (Redis lost just after the commit):
    the second delivery finds the job succeeded in the ledger and does nothing, even for a forced
    load, which would otherwise load the file again."""
    from shared import queues

    workers.start_all(transform=1 if has_transform() else 0)
    path = data_dir / "twice delivered.csv"
    path.write_text(HEADER_LINE + "\n" + (GOOD + "\n") * 500)
    first = start_run(str(path))
    wait_stage(first, "ingest", ("succeeded",), timeout=60)
    proc = run_cli("run", "--json", "--force", "--source", str(path))
    run_id = json.loads(proc.stdout)["run_id"]
    status = (
        wait_for_run(run_id, timeout=120) if has_transform() else wait_stage(run_id, "ingest", ("succeeded",))
    )
    before = (status, raw_counts(engine, path.name), published(engine) if has_transform() else None)
    assert before[1] == (1000, 0, 2), "forced: loaded a second time, on purpose"

    again = [("ingest", {"run_id": run_id, "path": str(path), "force": True})]
    if has_transform():
        again.append(("transform", {"run_id": run_id}))
    for stage, kwargs in again:
        job = queues.queue(stage, redis_conn).enqueue_call(
            queues.JOB_FUNCTIONS[stage], kwargs=kwargs, job_id=f"run-{run_id}-{stage}-again"
        )
        wait_until(lambda job=job: job.get_status(refresh=True) == "finished", 60, f"the {stage} job again")
        assert job.return_value() == {"skipped": "already succeeded in this run"}
    after = (status_of(run_id), raw_counts(engine, path.name), published(engine) if has_transform() else None)
    assert after == before


def test_an_error_after_the_commit_does_not_fail_a_done_job(clean_db):
    """What fails after a job's work committed (refreshing statistics, a log line) must not fail or
    retry the job: RQ would leave the later stages deferred forever, or redo committed work."""
    from shared import db, ledger
    from shared.ledger import PlannedJob
    from shared.stage import stage_job

    @stage_job("ingest", task_arg="path")
    def job(ctx, run_id: str, path: str, fail_before_commit: bool) -> None:
        with ctx.engine.begin() as conn:
            ctx.succeed(conn, rows_in=3, rows_out=3)
            if fail_before_commit:
                raise OSError("the work broke inside its transaction")
        raise OSError("statistics could not be refreshed")

    outcomes = []
    for fail_before_commit in (False, True):
        run_id = str(uuid.uuid4())
        with db.engine().begin() as conn:
            ledger.create_run(conn, run_id, ["x.csv"], [PlannedJob("ingest", "x.csv", f"inline-{run_id}")])
        try:
            outcomes.append(job(run_id=run_id, path="x.csv", fail_before_commit=fail_before_commit))
        except OSError as exc:
            outcomes.append(str(exc))
        status = status_of(run_id)
        outcomes.append((status["status"], status["stages"][0]["status"], status["stages"][0]["rows_out"]))
    assert outcomes[0]["rows_out"] == 3 and outcomes[1] == ("succeeded", "succeeded", 3)
    assert outcomes[2:] == ["the work broke inside its transaction", ("failed", "failed", None)]
