"""The daily batch's cron configuration, loaded by RQ's cron scheduler:

    rq cron --url "$REDIS_URL" services.scheduler.cron

At every slot of SCHEDULE_CRON (default `0 2 * * *`, 02:00 UTC) it enqueues shared.schedule.run_slot
on the setup queue; the setup worker then records and enqueues that slot's run over LANDING_DIR.

Run exactly one scheduler. `rq cron` has no leader lock: every scheduler process enqueues every
slot, on its own clock. The slot's deterministic run id and its row in meta.scheduled_runs make the
extra copies no-ops (the test suite runs two schedulers to prove it), but they are still extra jobs,
and two schedulers with different SCHEDULE_CRON values would start the runs of both schedules. So
compose runs one `scheduler` container, which must not be scaled.
"""

import logging
import os
import time
from datetime import UTC, datetime

import structlog
from rq import cron

from shared import schedule
from shared.config import settings
from shared.logging import configure_logging

# rq cron matches cron strings against the process's local time: the schedule is in UTC.
os.environ["TZ"] = "UTC"
time.tzset()

cfg = settings()
configure_logging("scheduler", cfg.log_level, cfg.log_format)
# rq cron gave its logger handlers of its own before loading this file: log through ours instead.
rq_log = logging.getLogger("rq.cron")
rq_log.handlers.clear()
rq_log.propagate = True
cron.register(
    schedule.run_slot,
    queue_name=schedule.QUEUE,
    cron=cfg.schedule_cron,
    name=schedule.CRON_JOB_NAME,
    job_timeout=300,  # planning and enqueueing a run takes a second; the run's own jobs do the work
    result_ttl=7 * 24 * 3600,
    failure_ttl=30 * 24 * 3600,
)
structlog.get_logger("services.scheduler").info(
    "schedule registered",
    schedule=cfg.schedule_cron,
    landing_dir=str(cfg.landing_dir),
    next_slot=schedule.next_slot(cfg.schedule_cron, datetime.now(UTC)).isoformat(),
)
