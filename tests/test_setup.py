"""Setup stage: creates everything, is idempotent, and two setups at once do not collide."""

import json
import subprocess

import pytest
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


def test_upgrading_raw_to_batch_partitions_keeps_every_loaded_row(monkeypatch):
    """A database set up before migration 0005 (raw.car_prices one table, lineage on every row)
    keeps every row and its lineage when raw becomes partitioned by batch, and loads new batches
    into partitions of their own afterwards."""
    import io
    import uuid

    import psycopg2
    import structlog

    from services.ingest import partition
    from services.setup import migrate
    from tests.conftest import PG_BASE, _psql_admin

    name = f"carsales_upgrade_{uuid.uuid4().hex[:8]}"
    url = f"{PG_BASE}/{name}"
    log = structlog.get_logger()
    every_migration = migrate.migrations()
    try:
        monkeypatch.setattr(migrate, "migrations", lambda: [m for m in every_migration if m.version < "0005"])
        migrate.migrate(url, {}, log)
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            for source_file, makes in (("old-1.csv", ("Kia", "Ford")), ("old-2.csv", ("BMW",))):
                cur.execute(
                    "INSERT INTO meta.ingested_files (run_id, source_file, source_path, sha256, size_bytes, "
                    "records, rows_loaded, rows_rejected) VALUES (%s, %s, %s, %s, 1, %s, %s, 0) "
                    "RETURNING batch_id",
                    (
                        str(uuid.uuid4()),
                        source_file,
                        "/data/" + source_file,
                        source_file * 2,
                        len(makes),
                        len(makes),
                    ),
                )
                batch_id = cur.fetchone()[0]
                cur.execute(
                    "INSERT INTO raw.car_prices (make, _line_number, _batch_id, _run_id, _source_file, "
                    "_source_sha256) SELECT make, n + 1, %s, f.run_id, f.source_file, f.sha256 "
                    "FROM unnest(%s::text[]) WITH ORDINALITY AS m(make, n), meta.ingested_files f "
                    "WHERE f.batch_id = %s",
                    (batch_id, list(makes), batch_id),
                )
        monkeypatch.undo()
        result = migrate.migrate(url, {}, log)
        assert result.applied == [f"{m.version}_{m.name}" for m in every_migration if m.version >= "0005"]
        assert result.applied[0] == "0005_raw_batch_partitions"
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT _batch_id, _source_file, _line_number, make FROM raw.car_prices_lineage ORDER BY 1, 3"
            )
            assert cur.fetchall() == [
                (1, "old-1.csv", 2, "Kia"),
                (1, "old-1.csv", 3, "Ford"),
                (2, "old-2.csv", 2, "BMW"),
            ]
            cur.execute(
                "INSERT INTO meta.ingested_files (run_id, source_file, source_path, sha256, size_bytes, "
                "records, rows_loaded, rows_rejected) "
                "VALUES (%s, 'new.csv', '/data/new.csv', 'ab', 1, 1, 1, 0) RETURNING batch_id",
                (str(uuid.uuid4()),),
            )
            batch_id = cur.fetchone()[0]
            table = partition.create(cur, batch_id)
            cur.copy_expert(partition.copy_statement(table), io.StringIO("2,2015,Audi" + "," * 14 + "\n"))
            partition.attach(cur, batch_id)
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT tableoid::regclass::text FROM raw.car_prices ORDER BY _batch_id, _line_number"
            )
            assert [row[0] for row in cur.fetchall()] == ["raw.car_prices_before_batches"] * 3 + [
                f"raw.car_prices_b{batch_id}"
            ]
            # migration 0006: the 17th-field column reaches the old rows' partition and the new one
            cur.execute(
                "SELECT tableoid::regclass::text, count(*), count(_extra_field) "
                "FROM raw.car_prices GROUP BY 1"
            )
            assert sorted(cur.fetchall()) == [
                (f"raw.car_prices_b{batch_id}", 1, 0),
                ("raw.car_prices_before_batches", 3, 0),
            ]
        conn.close()
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrading_to_the_extra_field_names_the_repairs_published_before(monkeypatch):
    """Migration 0006 on a database with published sales: every repaired sale and quarantined line
    so far was a 16-field one (17-field lines were rejected), and says so."""
    import uuid

    import psycopg2
    import structlog

    from services.setup import migrate
    from tests.conftest import PG_BASE, _psql_admin

    name = f"carsales_upgrade_{uuid.uuid4().hex[:8]}"
    url = f"{PG_BASE}/{name}"
    log = structlog.get_logger()
    every_migration = migrate.migrations()
    try:
        monkeypatch.setattr(migrate, "migrations", lambda: [m for m in every_migration if m.version < "0006"])
        migrate.migrate(url, {}, log)
        conn = psycopg2.connect(url)
        state, seller = uuid.uuid4(), uuid.uuid4()
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO staging.dim_state VALUES (%s, 'CA', 'California')", (str(state),))
            cur.execute("INSERT INTO staging.dim_seller VALUES (%s, 'volkswagen credit inc')", (str(seller),))
            for line, repaired in ((2, False), (3, True)):
                cur.execute(
                    "INSERT INTO staging.fact_car_sales (sale_id, vin, state_id, mmr, selling_price, "
                    "sale_date, seller_id, model_year, repaired, run_id, source_sha256, line_number) "
                    "VALUES (%s, '3VWD17AJ3FM227143', %s, 1, 1, CASE WHEN %s THEN NULL ELSE now() END, "
                    "%s, 2015, %s, %s, 'ab', %s)",
                    (str(uuid.uuid4()), str(state), repaired, str(seller), repaired, str(uuid.uuid4()), line),
                )
            cur.execute(
                "INSERT INTO staging.quarantined_sales (source_sha256, line_number, run_id, batch_id, "
                "source_file, repaired, reasons) VALUES ('ab', 4, %s, 1, 'a.csv', true, '{mmr_missing}')",
                (str(uuid.uuid4()),),
            )
        monkeypatch.undo()
        assert "0006_raw_extra_field" in migrate.migrate(url, {}, log).applied
        with conn, conn.cursor() as cur:
            cur.execute("SELECT line_number, repaired, repair FROM staging.fact_car_sales ORDER BY 1")
            assert cur.fetchall() == [(2, False, None), (3, True, "shifted_16_fields")]
            cur.execute("SELECT repair, extra_field FROM staging.quarantined_sales")
            assert cur.fetchall() == [("shifted_16_fields", None)]
            with pytest.raises(psycopg2.errors.CheckViolation):
                cur.execute(
                    "UPDATE staging.fact_car_sales SET repair = 'split_trim_17_fields' WHERE NOT repaired"
                )
        conn.close()
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
