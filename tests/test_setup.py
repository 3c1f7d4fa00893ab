"""Setup stage: creates everything, is idempotent, and two setups at once do not collide."""

import json
import subprocess

import sqlalchemy as sa

from tests.conftest import PIPELINE, run_cli


def _objects(engine):
    with engine.connect() as conn:
        schemas = set(
            conn.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname IN ('raw','staging','meta')")
            ).scalars()
        )
        tables = set(
            conn.execute(
                sa.text(
                    "SELECT schemaname || '.' || tablename FROM pg_tables "
                    "WHERE schemaname IN ('raw','staging','meta')"
                )
            ).scalars()
        )
        migrations = conn.execute(sa.text("SELECT version, checksum FROM meta.schema_migrations")).all()
    return schemas, tables, sorted(migrations)


def test_setup_creates_schemas_ledger_and_roles(engine):
    schemas, tables, migrations = _objects(engine)
    assert schemas == {"raw", "staging", "meta"}
    assert {"meta.pipeline_runs", "meta.stage_runs", "meta.schema_migrations", "raw.car_prices"} <= tables
    assert migrations, "migrations are recorded"
    with engine.connect() as conn:
        roles = set(
            conn.execute(
                sa.text("SELECT rolname FROM pg_roles WHERE rolname IN ('pipeline','analyst')")
            ).scalars()
        )
        owner = conn.execute(
            sa.text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname='raw'")
        ).scalar()
    assert roles == {"pipeline", "analyst"}
    assert owner == "pipeline"


def test_setup_twice_changes_nothing(engine):
    before = _objects(engine)
    proc = run_cli("setup", "--json", check=True)
    status = json.loads(proc.stdout)
    assert status["status"] == "succeeded"
    assert status["stages"][0]["details"]["migrations_applied"] == []
    assert _objects(engine) == before


def test_two_setups_at_once_both_succeed(engine):
    before = _objects(engine)
    procs = [
        subprocess.Popen([PIPELINE, "setup", "--json"], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert all(json.loads(out)["status"] == "succeeded" for out in outputs)
    assert _objects(engine) == before


def test_setup_creates_a_missing_database(tmp_path):
    """On an empty server, setup creates the database itself (the role may create databases)."""
    import uuid

    from tests.conftest import PG_BASE, _psql_admin

    name = f"carsales_fresh_{uuid.uuid4().hex[:8]}"
    try:
        proc = run_cli("setup", "--json", env={"DATABASE_URL": f"{PG_BASE}/{name}"})
        assert proc.returncode == 0, proc.stderr
        details = json.loads(proc.stdout)["stages"][0]["details"]
        assert details["database_created"] is True
        assert len(details["migrations_applied"]) >= 3
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
