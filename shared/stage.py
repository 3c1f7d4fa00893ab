"""What every stage job does around its own work: context, ledger, logs, retries, failure.

    @stage_job("ingest", task_arg="path")
    def ingest_file(ctx: StageContext, run_id: str, path: str, force: bool = False) -> None:
        with ctx.engine.begin() as conn:
            ...                                   # the work
            ctx.succeed(conn, rows_in=..., rows_out=..., rows_rejected=...)  # same transaction

On an exception: a transient one (lost connection) is left to RQ's Retry while retries remain;
anything else fails the job at once (no retry), marks the run failed and the later jobs not run,
and cancels those jobs in RQ so nothing stays silently deferred.

A run cancelled while one of its jobs works (`pipeline cancel`): `succeed` finds it cancelled,
so the job's transaction, holding all of its work, is rolled back and the job marked cancelled.
"""

import contextlib
import functools
import os
import socket
import time
import traceback
from dataclasses import dataclass, field

import structlog
from rq import get_current_job
from sqlalchemy.engine import Connection, Engine

from shared import db, ledger, queues
from shared.config import Settings, settings
from shared.errors import ConfigError, RunCancelled, is_transient
from shared.logging import bind_context


@dataclass
class StageContext:
    stage: str
    run_id: str
    task: str
    job_id: str
    worker_name: str
    settings: Settings
    engine: Engine
    log: structlog.typing.FilteringBoundLogger
    attempt: int = 0
    result: dict = field(default_factory=dict)
    _succeeded: bool = False

    def succeed(
        self, conn: Connection, rows_in: int, rows_out: int, rows_rejected: int = 0, **details
    ) -> None:
        """Record the job's success inside the caller's transaction (the one holding the work).

        Raises RunCancelled, so that the caller's transaction and its work roll back, if an operator
        cancelled the run meanwhile; the run's row stays locked until the work commits, so a cancel
        that comes later waits for it and finds the job done.
        """
        if ledger.lock_run_status(conn, self.run_id) == "cancelled":
            raise RunCancelled(
                f"run {self.run_id} was cancelled while this job ran; its work was rolled back"
            )
        self.result = {"rows_in": rows_in, "rows_out": rows_out, "rows_rejected": rows_rejected, **details}
        ledger.finish_stage(
            conn, self.run_id, self.stage, self.task, rows_in, rows_out, rows_rejected, details
        )
        self._succeeded = True


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 2000 else text[:2000] + " ..."


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


def _success_committed(ctx: StageContext) -> bool:
    """True if the ledger shows this very attempt succeeded, i.e. the work's transaction committed."""
    try:
        with db.engine().connect() as conn:
            state = ledger.stage_state(conn, ctx.run_id, ctx.stage, ctx.task)
    except Exception:
        return False
    return bool(state) and (state["status"], state["attempt"], state["job_id"]) == (
        "succeeded",
        ctx.attempt,
        ctx.job_id,
    )


def stage_job(stage: str, task_arg: str | None = None, prepare=None):
    """Wrap a stage function so it runs as an RQ job with ledger, logging and retry policy.

    `prepare(ctx, **kwargs)` runs before the ledger is touched: setup uses it to create the ledger.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def run(run_id: str, **kwargs):
            cfg = settings()
            job = get_current_job()
            job_id = job.id if job else f"inline-{stage}-{os.getpid()}"
            task = str(kwargs.get(task_arg, "")) if task_arg else ""
            worker = (
                getattr(job, "worker_name", None) if job else None
            ) or f"{socket.gethostname()}:{os.getpid()}"
            bind_context(stage=stage, run_id=run_id, job_id=job_id, source=task or None)
            log = structlog.get_logger(f"services.{stage}")
            ctx = StageContext(stage, run_id, task, job_id, worker, cfg, db.engine(), log)
            started = time.perf_counter()
            prepared = prepare is None
            try:
                if prepare is not None:
                    prepare(ctx, run_id=run_id, **kwargs)
                    prepared = True
                with ctx.engine.begin() as conn:
                    status = ledger.run_status(conn, run_id)
                    if status in ("cancelled", "failed"):
                        log.warning("stage skipped", reason=f"run is {status}")
                        return {"skipped": f"run is {status}"}
                    done = ledger.stage_state(conn, run_id, stage, task)
                    if done and done["status"] == "succeeded":
                        # Delivered again (RQ retried a job whose work had committed): the work and
                        # its counts are in the ledger already; doing it again could only re-count it.
                        log.warning("stage skipped", reason="it already succeeded in this run")
                        return {"skipped": "already succeeded in this run"}
                    ctx.attempt = ledger.start_stage(conn, run_id, stage, task, job_id, worker)
                log.info("stage started", attempt=ctx.attempt, worker=worker)
                fn(ctx, run_id=run_id, **kwargs)
                if not ctx._succeeded:
                    with ctx.engine.begin() as conn:
                        ctx.succeed(conn, 0, 0, 0)
            except RunCancelled as exc:
                with db.engine().begin() as conn:
                    ledger.cancel_stage(conn, run_id, stage, task, str(exc))
                log.warning(
                    "stage cancelled", reason=str(exc), seconds=round(time.perf_counter() - started, 3)
                )
                return {"cancelled": str(exc)}
            except Exception as exc:
                seconds = round(time.perf_counter() - started, 3)
                error = _error_text(exc)
                if ctx._succeeded and _success_committed(ctx):
                    # The work and its ledger entry are committed; what failed came after (statistics,
                    # logging). Failing the job now would leave the later stages deferred in RQ forever,
                    # and a retry would redo committed work.
                    log.warning("error after the work was committed; the job is done", error=error)
                    return {**ctx.result, "seconds": seconds}
                will_retry = bool(job and is_transient(exc) and job.retries_left)
                if job and not is_transient(exc):
                    job.retries_left = 0  # bad input or a bug: retrying cannot help
                # Setup's prepare() creates the ledger: after a configuration error there (a database
                # that is not UTF8) there may be none to update; the sweeper fails a queued run from RQ.
                try:
                    if prepared or not isinstance(exc, ConfigError):
                        with db.engine().begin() as conn:
                            if will_retry:
                                ledger.retrying_stage(conn, run_id, stage, task, error)
                                later = []
                            else:
                                later = ledger.fail_stage(conn, run_id, stage, task, error)
                        if later:
                            queues.cancel_jobs(later)
                except Exception as ledger_exc:  # the database may be the thing that is down
                    log.error("ledger update failed", error=_error_text(ledger_exc))
                if will_retry:
                    log.warning(
                        "stage will retry",
                        error=error,
                        seconds=seconds,
                        retries_left=job.retries_left,
                        attempt=ctx.attempt,
                    )
                else:
                    # The traceback as plain text: a rendered exc_info would carry every frame's local
                    # variables, settings with their connection URLs (and passwords) among them. A
                    # configuration error is no bug: its message says what to change.
                    where = {} if isinstance(exc, ConfigError) else {"traceback": _traceback(exc)}
                    log.error("stage failed", error=error, seconds=seconds, attempt=ctx.attempt, **where)
                raise
            outcome = {**ctx.result, "seconds": round(time.perf_counter() - started, 3)}
            # Nothing after the commit may raise: RQ would fail or retry a job whose work is done.
            with contextlib.suppress(Exception):
                log.info("stage finished", **outcome)
            return outcome

        run.stage = stage
        return run

    return decorate
