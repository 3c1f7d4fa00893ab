"""Setup stage: creates everything, is idempotent, and two setups at once do not collide."""

import json
import os
import subprocess

import pytest
import sqlalchemy as sa

from tests.conftest import PIPELINE, database_before_migration, run_cli


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


def _scalar(database: str, query: str, *params):
    import psycopg2

    from tests.conftest import PG_BASE

    conn = psycopg2.connect(f"{PG_BASE}/{database}")
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


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
        encoding = "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s"
        assert _scalar("postgres", encoding, name) == "UTF8"
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_setup_refuses_a_database_that_is_not_utf8():
    """A SQL_ASCII database (what a server initialized without a locale gives) would fail later on the
    first non-ASCII character; setup refuses it at once, naming it and its encoding, and writes nothing."""
    import uuid

    from tests.conftest import PG_BASE, _psql_admin

    name = f"carsales_ascii_{uuid.uuid4().hex[:8]}"
    _psql_admin(f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0")
    try:
        proc = run_cli("setup", env={"DATABASE_URL": f"{PG_BASE}/{name}"})
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert f"database {name} has encoding SQL_ASCII" in proc.stderr
        assert "Traceback" not in proc.stderr and '"traceback"' not in proc.stderr, proc.stderr
        assert "ledger update failed" not in proc.stderr, proc.stderr  # there is no ledger to update
        assert _scalar(name, "SELECT count(*) FROM pg_namespace WHERE nspname = 'meta'") == 0
    finally:
        _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrading_raw_to_batch_partitions_keeps_every_loaded_row():
    """A database set up before migration 0005 (raw.car_prices one table, lineage on every row)
    keeps every row and its lineage when raw becomes partitioned by batch, and loads new batches
    into partitions of their own afterwards."""
    import io
    import uuid

    import psycopg2
    import structlog

    from services.ingest import partition
    from services.setup import migrate

    with database_before_migration("0005") as url:
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
        result = migrate.migrate(url, {}, structlog.get_logger())
        # 0005 and every migration after it (later ones leave raw.car_prices as 0005 made it).
        assert result.applied == [
            f"{m.version}_{m.name}" for m in migrate.migrations() if m.version >= "0005"
        ]
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


def test_upgrading_to_the_extra_field_names_the_repairs_published_before():
    """Migration 0006 on a database with published sales: every repaired sale and quarantined line
    so far was a 16-field one (17-field lines were rejected), and says so."""
    import uuid

    import psycopg2
    import structlog

    from services.setup import migrate

    with database_before_migration("0006") as url:
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
                    "%s, 2015, %s, %s, repeat('ab', 32), %s)",
                    (str(uuid.uuid4()), str(state), repaired, str(seller), repaired, str(uuid.uuid4()), line),
                )
            cur.execute(
                "INSERT INTO staging.quarantined_sales (source_sha256, line_number, run_id, batch_id, "
                "source_file, repaired, reasons) "
                "VALUES (repeat('ab', 32), 4, %s, 1, 'a.csv', true, '{mmr_missing}')",
                (str(uuid.uuid4()),),
            )
        assert "0006_raw_extra_field" in migrate.migrate(url, {}, structlog.get_logger()).applied
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


def test_upgrading_to_0010_moves_every_file_s_sales_into_a_partition_of_its_own():
    """The sales published before migration 0010 keep every value, each file's in its partition
    (named after the file, bounded by its sale id range), readable by the analyst; the foreign
    and primary keys hold on the partitioned table."""
    import uuid

    import psycopg2
    import structlog

    from services.setup import migrate
    from services.transform import rules, work

    with database_before_migration("0010") as url:
        conn = psycopg2.connect(url)
        state, seller = uuid.uuid4(), uuid.uuid4()
        files = {"a" * 64: (2, 3), "b" * 64: (2,)}  # a's ids of the SQL transform's days: random
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO staging.dim_state VALUES (%s, 'CA', 'California')", (str(state),))
            cur.execute("INSERT INTO staging.dim_seller VALUES (%s, 'kia motors')", (str(seller),))
            for sha, lines in files.items():
                for line in lines:
                    cur.execute(
                        "INSERT INTO staging.fact_car_sales (sale_id, vin, state_id, mmr, selling_price, "
                        "sale_date, seller_id, model_year, run_id, source_sha256, line_number) "
                        "VALUES (%s, '3VWD17AJ3FM227143', %s, 1, %s, now(), %s, 2015, %s, %s, %s)",
                        (
                            str(rules.sale_uuid(sha, line)),
                            str(state),
                            line,
                            str(seller),
                            str(uuid.uuid4()),
                            sha,
                            line,
                        ),
                    )
        assert "0010_fact_partitions" in migrate.migrate(url, {}, structlog.get_logger()).applied
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT tableoid::regclass::text, sale_id, source_sha256, line_number, selling_price"
                " FROM staging.fact_car_sales ORDER BY 3, 4"
            )
            assert cur.fetchall() == [
                (f"staging.{work.fact_partition(sha)}", str(rules.sale_uuid(sha, line)), sha, line, line)
                for sha, lines in sorted(files.items())
                for line in lines
            ]
            cur.execute(
                "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = %s",
                (work.fact_partition("a" * 64),),
            )
            first, end = work.sale_id_range("a" * 64)
            assert cur.fetchone()[0] == f"FOR VALUES FROM ('{first}') TO ('{end}')"
            with pytest.raises(psycopg2.errors.ForeignKeyViolation):
                cur.execute("UPDATE staging.fact_car_sales SET seller_id = %s", (str(uuid.uuid4()),))
        with conn, conn.cursor() as cur, pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute("INSERT INTO staging.fact_car_sales SELECT * FROM staging.fact_car_sales LIMIT 1")
        conn.close()


def test_setups_of_several_databases_on_one_server_at_once_all_succeed():
    """Roles belong to the whole server: setups of different databases, started together, each
    set the role passwords; none may die on another's update of the same role."""
    import uuid

    from tests.conftest import PG_BASE, _psql_admin

    names = [f"carsales_par_{uuid.uuid4().hex[:8]}" for _ in range(4)]
    env = {
        "PIPELINE_DB_PASSWORD": "pw-pipeline",
        "ANALYST_DB_PASSWORD": "pw-analyst",
        "UI_DB_PASSWORD": "pw-ui",
    }
    try:
        for _round in range(2):
            procs = [
                subprocess.Popen(
                    [PIPELINE, "setup", "--json"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, **env, "DATABASE_URL": f"{PG_BASE}/{name}"},
                )
                for name in names
            ]
            for proc in procs:
                out, err = proc.communicate(timeout=240)
                assert proc.returncode == 0, err[-2000:]
    finally:
        for name in names:
            _psql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
