"""The RQ worker every stage container runs, plus the ledger sweeper.

RQ finds a dead worker's job only when its heartbeat expires (RQ keeps a started job 60 s past
each heartbeat) and some worker cleans the registry, by default every 10 minutes. Our workers
heartbeat every 5 s, a job whose worker missed 20 s of heartbeats counts as abandoned, and every
worker runs maintenance every 5-10 s (between two 5 s dequeue waits). The sweeper then brings the
ledger in line with RQ: a job RQ reports failed, abandoned or lost fails its stage and run, so
nothing shows `running` forever: a dead worker's stage is failed once its heartbeat grace and
then the next sweep have passed.

RQ is configured through its public options (job_monitoring_interval, maintenance_interval,
worker_ttl) and a job callback (`abandoned_jobs_are_not_retried`, every job's on_failure).
PipelineWorker overrides four worker methods where RQ 3 has no option; each says why, and which
test fails without it.
"""

import importlib
import itertools
import os
import signal
import socket
import threading
import time

import redis
import structlog
from rq import Worker
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now

from shared import db, ledger, queues
from shared.config import mask_url, settings

JOB_MONITORING_INTERVAL = 5  # seconds between work-horse heartbeats
HEARTBEAT_GRACE = 20  # seconds without a heartbeat after which a started job is abandoned
MAINTENANCE_INTERVAL = 5  # seconds between registry cleanups and ledger sweeps (at least)
WORKER_TTL = 20  # an idle worker waits WORKER_TTL - 15 s per dequeue, then heartbeats and maintains
SWEEP_GRACE = 10  # leave jobs the ledger touched in the last seconds to their workers

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = structlog.get_logger("shared.worker")


def _last_error(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result and result.exc_string else "") or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error recorded by RQ"


def abandoned_jobs_are_not_retried(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """Every job's on_failure callback (see queues.enqueue_plan). RQ calls it when it cleans up a
    started job whose heartbeat expired, before it decides on a retry: such a job is failed, not
    retried, because a job that kills its worker may do it again; an operator resumes the run with
    `pipeline retry`. Other failures are the stage's own to handle (shared.stage)."""
    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        job.retries_left = 0
        log.warning("job abandoned", job_id=job.id, stage=job.origin, worker=job.worker_name)


def _clean_started_registries(connection: redis.Redis) -> None:
    """Move abandoned jobs of every stage to RQ's failed registry, whether or not a worker of that
    stage is alive (RQ's own cleaning covers only the worker's queues, one worker at a time)."""
    for stage in ledger.STAGES:
        StartedJobRegistry(stage, connection=connection).cleanup()


def sweep(connection: redis.Redis | None = None, grace: float = SWEEP_GRACE) -> int:
    """Fail the ledger entries of jobs RQ no longer runs; returns how many were failed."""
    connection = connection or queues.redis_connection()
    _clean_started_registries(connection)
    failed = 0
    with db.engine().begin() as conn:
        for row in ledger.open_stages(conn, grace):
            if not row["job_id"]:
                continue
            try:
                job = Job.fetch(row["job_id"], connection=connection)
                status = job.get_status()
            except NoSuchJobError:
                job, status = None, None
            # READY_TO_ENQUEUE and CREATED are RQ's brief states between a dependency finishing and
            # the job being queued: still on its way, not lost.
            if status in (
                JobStatus.QUEUED,
                JobStatus.DEFERRED,
                JobStatus.SCHEDULED,
                JobStatus.STARTED,
                JobStatus.READY_TO_ENQUEUE,
                JobStatus.CREATED,
            ):
                continue
            if status == JobStatus.FINISHED:
                continue  # its worker records success itself, in the work's transaction
            if job is None:
                error = "job lost: RQ no longer knows it (Redis data lost or job expired)"
            elif "AbandonedJobError" in _last_error(job) or "Moved to FailedJobRegistry" in _last_error(job):
                error = f"abandoned: worker {job.worker_name or row['worker_name']} died while running it"
            else:
                error = f"{status}: {_last_error(job)}"
            later = ledger.fail_stage(conn, str(row["run_id"]), row["stage"], row["task"], error)
            queues.cancel_jobs(later, connection)
            failed += 1
            log.error(
                "ledger swept",
                run_id=str(row["run_id"]),
                stage=row["stage"],
                task=row["task"],
                job_id=row["job_id"],
                error=error,
            )
    return failed


class PipelineWorker(Worker):
    """An RQ worker whose periodic maintenance also sweeps the ledger, that outlives a Redis outage
    while it runs a job, and that fails its job at once when shut down cold."""

    stop_requested = False  # set by SIGTERM/SIGINT: run_worker must not start the worker again

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ keeps a started job alive a fixed 60 s past each heartbeat (no option sets it); ours
        # beat every 5 s, so 20 s of silence means the worker is gone. Never longer than RQ's own
        # value (job timeouts). Pinned by test_ingest_worker_killed_mid_copy_... (HEARTBEAT_DEADLINE).
        return min(
            super().get_heartbeat_ttl(job, working_time), self.job_monitoring_interval + HEARTBEAT_GRACE
        )

    def maintain_heartbeats(self, job: Job, execution) -> None:
        # RQ lets a Redis error of a heartbeat out of its wait for the work horse: the worker loop
        # ends while the horse still works. The horse goes on (its work is in PostgreSQL); the next
        # beat may reach Redis again. Pinned by test_a_busy_worker_survives_a_redis_restart_....
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as exc:
            log.warning("heartbeat failed: Redis unavailable", job_id=job.id, error=str(exc))

    def run_maintenance_tasks(self):
        # RQ has no hook for periodic work of our own, and the sweep must run where some process
        # always runs: in every worker, after RQ's own cleaning. Pinned by the SIGKILL tests
        # (`abandoned`) and test_a_busy_worker_survives_a_redis_restart_... (`job lost`).
        super().run_maintenance_tasks()
        try:
            sweep(self.connection)
        except Exception as exc:  # never let bookkeeping kill the worker
            log.error("ledger sweep failed", error=f"{type(exc).__name__}: {exc}")

    def request_stop(self, signum, frame):
        """Warm shutdown: finish the current job, take no other. When busy, RQ notes the stop and then
        records it in Redis; with Redis down that raised inside the signal handler, out of the wait
        for the work horse, and the worker gave up on its job. `stop_requested` tells run_worker not
        to start the worker again. Pinned by test_sigterm_while_busy_without_redis_... and
        test_an_idle_worker_reconnects_after_a_redis_restart."""
        self.stop_requested = True
        try:
            super().request_stop(signum, frame)
        except REDIS_DOWN as exc:
            log.warning("warm shutdown requested while Redis is unavailable", error=str(exc))

    def request_force_stop(self, signum, frame):
        """Cold shutdown (a second signal): RQ kills the work horse, whose transaction PostgreSQL then
        rolls back, and exits with the job still `started`: no callback runs (on_stopped is for
        `rq`'s stop-job command only, on_failure for the registry cleaning once the heartbeat
        expires). So the job is failed here, in RQ and in the ledger at once. `pipeline retry`
        resumes the run. Pinned by test_second_sigterm_abandons_the_job_cleanly_and_retry_completes."""
        execution = self.execution if self.horse_pid else None
        signal.setitimer(signal.ITIMER_REAL, 0)  # no horse-monitor alarm may interrupt the shutdown
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if execution is not None:
                self._abandon(
                    execution, f"abandoned: worker {self.name} was shut down (cold) while running it"
                )
            raise

    def _abandon(self, execution, error: str) -> None:
        try:
            job = Job.fetch(execution.job_id, connection=self.connection)
            if job.get_status() != JobStatus.STARTED:
                return
            job.retries_left = 0  # like a dead worker's job: an operator resumes the run
            job.ended_at = now()
            queue = queues.queue(job.origin, self.connection)
            self.handle_job_failure(job, queue=queue, exc_string=error, execution=execution)
            meta = job.meta or {}
            if meta.get("run_id"):
                with db.engine().begin() as conn:
                    later = ledger.fail_stage(
                        conn, meta["run_id"], meta["stage"], meta.get("task", ""), error
                    )
                queues.cancel_jobs(later, self.connection)
            log.warning("job abandoned", job_id=job.id, worker=self.name, reason="cold shutdown")
        except Exception as exc:  # the sweeper catches up once the heartbeat expires
            log.error("could not fail the abandoned job", job_id=execution.job_id, error=f"{exc!r}")


def run_worker(stage: str, burst: bool = False) -> bool:
    """Run a worker until it is told to stop.

    RQ's work loop quits on some Redis errors (for example Redis going away right after a job);
    a worker that stops without being asked to is started again once Redis answers, with backoff,
    so a Redis restart never leaves a stage without its workers.
    """
    cfg = settings()
    connection = queues.redis_connection()
    # Import the stage's job module once, here: every job runs in a work horse forked from this
    # process, which then starts with it loaded (the transform's pyarrow included) instead of
    # importing it again for each job.
    importlib.import_module(queues.JOB_FUNCTIONS[stage].rpartition(".")[0])
    base_name = f"{stage}-{socket.gethostname()}-{os.getpid()}"
    started = time.monotonic()
    result = False
    for generation in itertools.count():
        name = base_name if generation == 0 else f"{base_name}-{generation}"
        worker = PipelineWorker(
            [queues.queue(stage, connection)],
            connection=connection,
            name=name,
            job_monitoring_interval=JOB_MONITORING_INTERVAL,
            maintenance_interval=MAINTENANCE_INTERVAL,
            worker_ttl=WORKER_TTL,
        )
        log.info("worker starting", worker=name, queue=stage, redis=mask_url(cfg.redis_url), burst=burst)
        begun = time.monotonic()
        error = None
        try:
            result = worker.work(burst=burst, with_scheduler=True, logging_level=cfg.log_level) or result
        except REDIS_DOWN as exc:  # e.g. RQ's teardown cannot reach Redis
            error = exc
        if burst or worker.stop_requested:
            break
        log.error(
            "worker loop ended unexpectedly; restarting when Redis answers",
            worker=name,
            error=f"{type(error).__name__}: {error}" if error else None,
        )
        if not _wait_for_redis(connection, first_delay=1.0 if time.monotonic() - begun > 60 else 5.0):
            break
    log.info("worker stopped", worker=base_name, seconds=round(time.monotonic() - started, 1))
    return result


def _wait_for_redis(connection: redis.Redis, first_delay: float, max_delay: float = 30.0) -> bool:
    """Sleep with backoff until Redis answers a ping; False if SIGTERM/SIGINT arrives meanwhile."""
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    delay = first_delay
    while not stop.wait(delay):
        try:
            connection.ping()
            return True
        except REDIS_DOWN as exc:
            log.warning("Redis unavailable, waiting", retry_in=min(delay * 2, max_delay), error=str(exc))
        delay = min(delay * 2, max_delay)
    return False
