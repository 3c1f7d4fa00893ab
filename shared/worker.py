"""The RQ worker every stage container runs, plus the ledger sweeper.

RQ finds a dead worker's job only when its heartbeat expires and some worker cleans the
registry, by default every 10 minutes. Our workers heartbeat every 5 s and run maintenance
every 15 s, and the sweeper then brings the ledger in line with RQ: a job RQ reports failed,
abandoned or lost fails its stage and run, so nothing shows `running` forever.
"""

import os
import socket
import time

import redis
import structlog
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from shared import db, ledger, queues
from shared.config import settings

JOB_MONITORING_INTERVAL = 5  # seconds between work-horse heartbeats
MAINTENANCE_INTERVAL = 15  # seconds between registry cleanups and ledger sweeps
WORKER_TTL = 35  # a dead worker's key expires after this
SWEEP_GRACE = 10  # leave jobs the ledger touched in the last seconds to their workers

log = structlog.get_logger("shared.worker")


def _last_error(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result and result.exc_string else "") or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error recorded by RQ"


def _mark_abandoned(connection: redis.Redis) -> None:
    """Jobs whose worker died (heartbeat expired) are failed, not retried: an operator resumes the run
    with `pipeline retry`, because a job that kills its worker may do it again."""
    for stage in ledger.STAGES:
        registry = StartedJobRegistry(stage, connection=connection)
        for job_id in registry.get_expired_job_ids():
            try:
                job = Job.fetch(job_id, connection=connection)
            except NoSuchJobError:
                continue
            if job.get_status() == JobStatus.STARTED:
                job.retries_left = 0
                job.save()
                log.warning("job abandoned", job_id=job_id, stage=stage, worker=job.worker_name)
        registry.cleanup()


def sweep(connection: redis.Redis | None = None, grace: float = SWEEP_GRACE) -> int:
    """Fail the ledger entries of jobs RQ no longer runs; returns how many were failed."""
    connection = connection or queues.redis_connection()
    _mark_abandoned(connection)
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
            if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED):
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
    """An RQ worker whose periodic maintenance also sweeps the ledger."""

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        try:
            sweep(self.connection)
        except Exception as exc:  # never let bookkeeping kill the worker
            log.error("ledger sweep failed", error=f"{type(exc).__name__}: {exc}")

    def clean_registries(self):
        # RQ's own maintenance lock lasts the maintenance interval; ours is short, so clean directly.
        for queue in self.queues:
            StartedJobRegistry(queue.name, connection=self.connection).cleanup()
        super().clean_registries()


def run_worker(stage: str, burst: bool = False) -> bool:
    cfg = settings()
    connection = queues.redis_connection()
    name = f"{stage}-{socket.gethostname()}-{os.getpid()}"
    worker = PipelineWorker(
        [queues.queue(stage, connection)],
        connection=connection,
        name=name,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
    )
    log.info("worker starting", worker=name, queue=stage, redis=cfg.redis_url, burst=burst)
    started = time.monotonic()
    result = worker.work(burst=burst, with_scheduler=True, logging_level=cfg.log_level)
    log.info("worker stopped", worker=name, seconds=round(time.monotonic() - started, 1))
    return result
