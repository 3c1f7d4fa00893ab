"""The setup stage as an RQ job: migrate, record the run's plan in the ledger, report."""

from services.setup.migrate import migrate
from shared import ledger
from shared.ledger import PlannedJob
from shared.stage import StageContext, stage_job


def _prepare(
    ctx: StageContext,
    run_id: str,
    plan: list[dict],
    sources: list[str],
    force: bool = False,
    kind: str = "run",
) -> None:
    """Before the ledger exists it cannot be written: migrate first, then record the run."""
    cfg = ctx.settings
    ctx.result = migrate(
        cfg.setup_database_url,
        {
            "pipeline": cfg.pipeline_db_password,
            "analyst": cfg.analyst_db_password,
            "ui": cfg.ui_db_password,
        },
        ctx.log,
    ).__dict__
    with ctx.engine.begin() as conn:
        ledger.create_run(conn, run_id, sources, [PlannedJob(**p) for p in plan], kind=kind, force=force)


@stage_job("setup", prepare=_prepare)
def setup_run(
    ctx: StageContext,
    run_id: str,
    plan: list[dict],
    sources: list[str],
    force: bool = False,
    kind: str = "run",
) -> None:
    outcome = ctx.result
    with ctx.engine.begin() as conn:
        ctx.succeed(
            conn,
            rows_in=0,
            rows_out=len(outcome["applied"]),
            rows_rejected=0,
            migrations_applied=outcome["applied"],
            schema_version=outcome["version"],
            database_created=outcome["database_created"],
            roles_created=outcome["roles_created"],
        )
