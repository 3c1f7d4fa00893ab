"""The run ledger: what every run and every job of it did, in meta.pipeline_runs / meta.stage_runs.

Each function takes an open SQLAlchemy connection and writes inside the caller's transaction,
so a stage records its success in the same transaction as its work.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.sqlfile import load_queries

Q = {name: sa.text(sql) for name, sql in load_queries(Path(__file__).with_name("ledger.sql")).items()}

STAGES = ("setup", "ingest", "transform")


@dataclass(frozen=True)
class PlannedJob:
    """One job of a run: its stage, its task (the source file for ingest) and its RQ job id."""

    stage: str
    task: str
    job_id: str

    def as_dict(self) -> dict:
        return {"stage": self.stage, "task": self.task, "job_id": self.job_id}


def create_run(
    conn: Connection,
    run_id: str,
    sources: list[str],
    plan: list[PlannedJob],
    kind: str = "run",
    force: bool = False,
) -> None:
    """Record a run and its planned jobs; idempotent, so the CLI and the setup job may both call it."""
    conn.execute(
        Q["insert_run"], {"run_id": run_id, "kind": kind, "sources": json.dumps(sources), "force": force}
    )
    for position, job in enumerate(plan):
        conn.execute(
            Q["insert_stage"],
            {
                "run_id": run_id,
                "stage": job.stage,
                "task": job.task,
                "position": position,
                "job_id": job.job_id,
            },
        )


def add_jobs(conn: Connection, run_id: str, jobs: list[PlannedJob]) -> None:
    """Record jobs a running job adds to its run (the transform's chunks and publish), after the
    run's jobs so far; idempotent, like create_run."""
    position = conn.execute(Q["last_position"], {"run_id": run_id}).scalar()
    for offset, job in enumerate(jobs, start=1):
        conn.execute(
            Q["insert_stage"],
            {
                "run_id": run_id,
                "stage": job.stage,
                "task": job.task,
                "position": position + offset,
                "job_id": job.job_id,
            },
        )


def run_status(conn: Connection, run_id: str) -> str | None:
    return conn.execute(Q["run_status"], {"run_id": run_id}).scalar()


def lock_run_status(conn: Connection, run_id: str) -> str | None:
    """The run's status, its row locked until the caller's transaction ends (see StageContext.succeed)."""
    return conn.execute(Q["lock_run_status"], {"run_id": run_id}).scalar()


def stage_state(conn: Connection, run_id: str, stage: str, task: str) -> dict | None:
    """Status, attempt and RQ job id of one job of a run."""
    row = conn.execute(Q["stage_state"], {"run_id": run_id, "stage": stage, "task": task}).mappings().first()
    return dict(row) if row else None


def start_stage(conn: Connection, run_id: str, stage: str, task: str, job_id: str, worker_name: str) -> int:
    """Mark the job running (attempt + 1) and the run running; returns the attempt number."""
    attempt = conn.execute(
        Q["start_stage"],
        {"run_id": run_id, "stage": stage, "task": task, "job_id": job_id, "worker_name": worker_name},
    ).scalar()
    if attempt is None:
        raise LookupError(f"run {run_id} has no {stage} job {task!r} in the ledger")
    conn.execute(Q["start_run"], {"run_id": run_id})
    return attempt


def finish_stage(
    conn: Connection,
    run_id: str,
    stage: str,
    task: str,
    rows_in: int,
    rows_out: int,
    rows_rejected: int,
    details: dict | None = None,
) -> bool:
    """Mark the job succeeded; the run succeeds when it was its last open job. True if the run ended."""
    conn.execute(
        Q["finish_stage"],
        {
            "run_id": run_id,
            "stage": stage,
            "task": task,
            "rows_in": rows_in,
            "rows_out": rows_out,
            "rows_rejected": rows_rejected,
            "details": json.dumps(details or {}, default=str),
        },
    )
    return conn.execute(Q["complete_run_if_done"], {"run_id": run_id}).scalar() is not None


def retrying_stage(conn: Connection, run_id: str, stage: str, task: str, error: str) -> None:
    conn.execute(Q["retrying_stage"], {"run_id": run_id, "stage": stage, "task": task, "error": error})


def fail_stage(conn: Connection, run_id: str, stage: str, task: str, error: str) -> list[str]:
    """Mark the job and its run failed and the later jobs not run; returns their RQ job ids.

    Idempotent: a job already marked failed (by its worker or by the sweeper) changes nothing.
    """
    position = conn.execute(
        Q["fail_stage"], {"run_id": run_id, "stage": stage, "task": task, "error": error}
    ).scalar()
    if position is None:
        return []
    label = f"{stage} {task}".strip()
    conn.execute(Q["fail_run"], {"run_id": run_id, "stage": stage, "error": f"{label}: {error}"})
    rows = conn.execute(
        Q["mark_later_not_run"], {"run_id": run_id, "failed_stage": stage, "position": position}
    )
    return [job_id for (job_id,) in rows if job_id]


def cancel_stage(conn: Connection, run_id: str, stage: str, task: str, error: str) -> None:
    conn.execute(Q["cancel_stage"], {"run_id": run_id, "stage": stage, "task": task, "error": error})


def cancel_run(conn: Connection, run_id: str) -> list[str] | None:
    """Cancel a queued or running run; returns the RQ job ids of its open jobs (None if not open)."""
    if conn.execute(Q["cancel_run"], {"run_id": run_id}).scalar() is None:
        return None
    return [job_id for (job_id,) in conn.execute(Q["cancel_open_stages"], {"run_id": run_id}) if job_id]


def requeue_run(conn: Connection, run_id: str, jobs: list[PlannedJob]) -> bool:
    """Put a failed or cancelled run back to queued with new job ids for the jobs to run again."""
    if conn.execute(Q["requeue_run"], {"run_id": run_id}).scalar() is None:
        return False
    for job in jobs:
        conn.execute(
            Q["requeue_stage"], {"run_id": run_id, "stage": job.stage, "task": job.task, "job_id": job.job_id}
        )
    return True


def get_status(conn: Connection, run_id: str) -> dict | None:
    """The run, its jobs and its quality results, as `pipeline status --json` prints them."""
    run = conn.execute(Q["get_run"], {"run_id": run_id}).mappings().first()
    if run is None:
        return None
    stages = [
        {
            "stage": s["stage"],
            "task": s["task"],
            "status": s["status"],
            "attempt": s["attempt"],
            "worker": s["worker_name"],
            "rows_in": s["rows_in"],
            "rows_out": s["rows_out"],
            "rows_rejected": s["rows_rejected"],
            "started_at": _iso(s["started_at"]),
            "finished_at": _iso(s["finished_at"]),
            "error": s["error"],
            "details": s["details"],
        }
        for s in conn.execute(Q["get_stages"], {"run_id": run_id}).mappings()
    ]
    quality = [
        {
            "check": q["check_name"],
            "status": q["status"],
            "observed": _num(q["observed"]),
            "threshold": _num(q["threshold"]),
            "blocking": q["blocking"],
            "details": q["details"],
        }
        for q in conn.execute(Q["get_quality"], {"run_id": run_id}).mappings()
    ]
    return {
        "run_id": str(run["run_id"]),
        "kind": run["kind"],
        "status": run["status"],
        "sources": run["sources"],
        "created_at": _iso(run["created_at"]),
        "started_at": _iso(run["started_at"]),
        "finished_at": _iso(run["finished_at"]),
        "failed_stage": run["failed_stage"],
        "error": run["error"],
        "stages": stages,
        "quality": quality,
    }


def list_runs(conn: Connection, limit: int, with_setup_only: bool = False) -> list[dict]:
    """The latest runs, newest first; runs that only ran setup (no sources) if asked for."""
    params = {"limit": limit, "with_setup_only": with_setup_only}
    return [dict(row) for row in conn.execute(Q["list_runs"], params).mappings()]


def open_stages(conn: Connection, older_than_seconds: float) -> list[dict]:
    return [dict(r) for r in conn.execute(Q["open_stages"], {"older_than": older_than_seconds}).mappings()]


def _iso(value):
    return value.isoformat() if value is not None else None


def _num(value):
    return float(value) if value is not None else None
