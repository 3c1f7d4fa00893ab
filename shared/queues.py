"""RQ queues and how a run becomes a chain of jobs: setup -> ingest (one job per file) -> transform.

Job ids are derived from the run id, so the ledger knows every job of a run before it is
enqueued, and retries of a run get new, predictable ids.
"""

import contextlib
from dataclasses import dataclass

import redis
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from shared.config import settings
from shared.ledger import PlannedJob

# The function each stage's job runs, by dotted path: the CLI enqueues them without importing
# the services (each container image holds only its own service).
JOB_FUNCTIONS = {
    "setup": "services.setup.job.setup_run",
    "ingest": "services.ingest.job.ingest_file",
    "transform": "services.transform.job.transform_run",
}
REBUILD_FUNCTION = "services.transform.job.rebuild_staging"
ON_FAILURE = "shared.worker.abandoned_jobs_are_not_retried"  # every job's: a dead worker's job is not retried

_redis: dict[str, redis.Redis] = {}


def redis_connection(url: str | None = None) -> redis.Redis:
    url = url or settings().redis_url
    if url not in _redis:
        _redis[url] = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    return _redis[url]


def queue(stage: str, connection: redis.Redis | None = None) -> Queue:
    return Queue(stage, connection=connection or redis_connection(), default_timeout=settings().job_timeout)


def retry_policy() -> Retry | None:
    """Transient failures (lost connections) are retried with backoff; see shared.stage."""
    cfg = settings()
    if cfg.retry_max == 0:
        return None
    return Retry(max=cfg.retry_max, interval=list(cfg.retry_intervals))


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    sources: list[str]
    force: bool = False
    kind: str = "run"


def plan_run(spec: RunSpec, attempt: int = 0) -> list[PlannedJob]:
    """The jobs of a run in chain order, with their RQ job ids."""
    suffix = f"-r{attempt}" if attempt else ""
    if spec.kind == "rebuild":
        return [PlannedJob("transform", "", f"run-{spec.run_id}-rebuild{suffix}")]
    plan = [PlannedJob("setup", "", f"run-{spec.run_id}-setup{suffix}")]
    if spec.sources:
        plan += [
            PlannedJob("ingest", src, f"run-{spec.run_id}-ingest-{i}{suffix}")
            for i, src in enumerate(spec.sources)
        ]
        plan.append(PlannedJob("transform", "", f"run-{spec.run_id}-transform{suffix}"))
    return plan


def enqueue_plan(spec: RunSpec, plan: list[PlannedJob], connection: redis.Redis | None = None) -> list[Job]:
    """Enqueue the planned jobs, each stage depending on all jobs of the stage before it.

    If Redis fails part-way, the jobs already created are deleted again, so a run is either
    fully enqueued or not at all (the CLI reports the error).
    """
    conn = connection or redis_connection()
    created: list[Job] = []
    previous: list[Job] = []
    try:
        for stage in ("setup", "ingest", "transform"):
            stage_jobs = [job for job in plan if job.stage == stage]
            current = []
            for planned in stage_jobs:
                func = REBUILD_FUNCTION if spec.kind == "rebuild" else JOB_FUNCTIONS[stage]
                kwargs = (
                    {
                        "run_id": spec.run_id,
                        "plan": [p.as_dict() for p in plan],
                        "force": spec.force,
                        "sources": spec.sources,
                    }
                    if stage == "setup"
                    else {"run_id": spec.run_id}
                )
                if stage == "ingest":
                    kwargs.update(path=planned.task, force=spec.force)
                job = queue(stage, conn).enqueue_call(
                    func,
                    kwargs=kwargs,
                    job_id=planned.job_id,
                    depends_on=previous or None,
                    retry=retry_policy(),
                    on_failure=Callback(ON_FAILURE),
                    timeout=settings().job_timeout,
                    result_ttl=7 * 24 * 3600,
                    failure_ttl=30 * 24 * 3600,
                    description=f"{stage} {planned.task}".strip() + f" (run {spec.run_id})",
                    meta={"run_id": spec.run_id, "stage": stage, "task": planned.task},
                )
                created.append(job)
                current.append(job)
            if current:
                previous = current
    except redis.exceptions.RedisError:
        for job in created:
            with contextlib.suppress(redis.exceptions.RedisError):
                job.delete()
        raise
    return created


def cancel_jobs(job_ids: list[str], connection: redis.Redis | None = None) -> int:
    """Cancel queued or deferred jobs so RQ never runs them; returns how many were cancelled."""
    conn = connection or redis_connection()
    cancelled = 0
    for job_id in job_ids:
        try:
            job = Job.fetch(job_id, connection=conn)
        except NoSuchJobError:
            continue
        if job.get_status() in ("queued", "deferred", "scheduled"):
            job.cancel()
            cancelled += 1
    return cancelled
