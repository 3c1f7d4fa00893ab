"""The daily batch: one run per schedule slot over the landing directory.

The scheduler service (services/scheduler/cron.py) has RQ's cron scheduler enqueue `run_slot` on
the setup queue at every slot of SCHEDULE_CRON (UTC); the setup worker runs it:

1. the slot is the latest time of the schedule at or before the job was enqueued, and its run id
   is a name-based uuid of the slot, so every scheduler computes the same run for one slot;
2. the run covers every .csv / .csv.gz file in LANDING_DIR (inside DATA_DIR): files whose content
   was loaded before are skipped by the ingest (content idempotency), so a day without new files
   gives a run that loads nothing and says so (`pipeline schedule`);
3. the run and the slot's row in meta.scheduled_runs are written in one transaction; only the
   transaction that inserted the slot enqueues the run, so a restarted or duplicated scheduler
   cannot start a slot twice.

A slot that passes while no scheduler runs is not made up later: the next slot's run picks up
every file that landed meanwhile.
"""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import sqlalchemy as sa
import structlog
from croniter import croniter
from rq import get_current_job
from sqlalchemy.engine import Connection

from shared import db, ledger, queues
from shared.config import Settings, settings
from shared.errors import BadInputError
from shared.sources import SOURCE_SUFFIXES, confine
from shared.sqlfile import load_queries

Q = {name: sa.text(sql) for name, sql in load_queries(Path(__file__).with_name("schedule.sql")).items()}

QUEUE = "setup"  # the slot's job plans and enqueues a run, as the first stage of every run does
CRON_JOB_NAME = "carsales-daily-batch"
# Run ids of schedule slots are uuid5(SLOT_NAMESPACE, slot in ISO 8601 UTC).
SLOT_NAMESPACE = uuid.UUID("5a0d9c1e-64b1-4d2e-9a55-2f1d6c0b7e16")

log = structlog.get_logger("shared.schedule")


def slot_at(cron: str, at: datetime) -> datetime:
    """The schedule's latest slot at or before `at`, in UTC."""
    at = at.astimezone(UTC) + timedelta(microseconds=1)  # croniter's get_prev excludes `at` itself
    return croniter(cron, at).get_prev(datetime).astimezone(UTC)


def next_slot(cron: str, after: datetime) -> datetime:
    """The schedule's first slot after `after`, in UTC."""
    return croniter(cron, after.astimezone(UTC)).get_next(datetime).astimezone(UTC)


def slot_run_id(slot: datetime) -> str:
    return str(uuid.uuid5(SLOT_NAMESPACE, slot.astimezone(UTC).isoformat()))


def landing_files(cfg: Settings) -> list[str]:
    """The source files in the landing directory, sorted; an error names a missing directory."""
    landing = confine(cfg.landing_dir, cfg.data_dir)
    if not landing.is_dir():
        raise BadInputError(f"{landing}: the landing directory (LANDING_DIR) does not exist")
    return sorted(
        str(confine(path, cfg.data_dir))
        for path in landing.iterdir()
        if path.is_file() and path.name.endswith(SOURCE_SUFFIXES)
    )


def run_slot(slot: str | None = None) -> dict:
    """Start the run of one schedule slot (the job rq cron enqueues); `slot` (ISO 8601) defaults to
    the slot the job was enqueued for. Returns the slot, its run id and whether this call started it."""
    cfg = settings()
    if slot is None:
        job = get_current_job()
        fired = job.enqueued_at if job is not None and job.enqueued_at else datetime.now(UTC)
        slot_time = slot_at(cfg.schedule_cron, fired.replace(tzinfo=fired.tzinfo or UTC))
    else:
        parsed = datetime.fromisoformat(slot)
        slot_time = parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    spec = queues.RunSpec(run_id=slot_run_id(slot_time), sources=landing_files(cfg))
    plan = queues.plan_run(spec)
    outcome = {"slot": slot_time.isoformat(), "run_id": spec.run_id, "files": len(spec.sources)}
    with db.engine().begin() as conn:
        ledger.create_run(conn, spec.run_id, spec.sources, plan)  # a no-op when the slot has its run
        claimed = conn.execute(
            Q["claim_slot"],
            {
                "slot": slot_time,
                "run_id": spec.run_id,
                "schedule": cfg.schedule_cron,
                "landing_dir": str(cfg.landing_dir),
                "files": len(spec.sources),
            },
        ).scalar()
    if claimed is None:
        log.info("schedule slot already has its run", **outcome)
        return {**outcome, "started": False}
    try:
        queues.enqueue_plan(spec, plan)
    except redis.exceptions.RedisError as exc:
        with db.engine().begin() as conn:
            ledger.fail_stage(conn, spec.run_id, plan[0].stage, plan[0].task, f"could not enqueue: {exc}")
        raise
    log.info("scheduled run enqueued", **outcome)
    return {**outcome, "started": True}


def recent(conn: Connection, limit: int) -> list[dict]:
    """The last `limit` scheduled runs, newest slot first."""
    return [dict(row) for row in conn.execute(Q["recent"], {"limit": limit}).mappings()]
