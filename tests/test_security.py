"""Security promises: least-privilege roles, no SQL built from data, confined sources, secrets.

And hostile input end to end: files built to break a CSV loader, each either refused with a clear
error naming the file, or loaded with its bad lines in the rejects, with counts that reconcile.
"""

import ast
import gzip
import io
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa

from shared.dataset import HEADER_LINE
from shared.errors import BadInputError
from shared.sources import confine, expand_sources
from tests.conftest import DATA_DIR, GOOD, PG_BASE, ROOT, TEST_DB, run_cli, wait_for_run
from tests.test_reliability import SpareRedis

CODE_DIRS = ("shared", "services")


def has_transform() -> bool:
    return (ROOT / "services" / "transform" / "job.py").exists()


def connect_as(role: str):
    host = PG_BASE.split("@", 1)[1]
    conn = psycopg2.connect(f"postgresql://{role}@{host}/{TEST_DB}")
    conn.autocommit = True
    return conn


def start_run(*sources: str, env: dict | None = None) -> str:
    proc = run_cli("run", "--json", *(["--source", *sources] if sources else []), env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["run_id"]


def wait_ingested(run_id: str, timeout: float = 120) -> dict:
    from shared import db, ledger

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine().connect() as conn:
            status = ledger.get_status(conn, run_id)
        ingest = [s for s in status["stages"] if s["stage"] == "ingest"] if status else []
        if ingest and all(s["status"] in ("succeeded", "failed", "not_run") for s in ingest):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the ingest of run {run_id} did not end: {status}")


# --- roles: pipeline owns everything, analyst reads staging only ------------------------------------


def staging_tables(engine) -> list[str]:
    with engine.connect() as conn:
        return (
            conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'staging' ORDER BY 1"))
            .scalars()
            .all()
        )


PIPELINE_SCHEMAS = ("raw", "staging", "meta", "work")


def owners(engine) -> list[str]:
    """The owners of the pipeline's schemas and of every table and function in them."""
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    "SELECT DISTINCT owner FROM ("
                    " SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = ANY (:s)"
                    " UNION ALL SELECT tableowner FROM pg_tables WHERE schemaname = ANY (:s)"
                    " UNION ALL SELECT p.proowner::regrole::text FROM pg_proc p"
                    "  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY (:s)"
                    ") o"
                ),
                {"s": list(PIPELINE_SCHEMAS)},
            )
            .scalars()
            .all()
        )


def test_pipeline_owns_the_schemas_and_is_no_superuser(engine):
    with engine.connect() as conn:
        role = conn.execute(
            sa.text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = :r"
            ),
            {"r": "pipeline"},
        ).one()
    assert set(owners(engine)) == {"pipeline"}
    assert tuple(role) == (False, False, False, True)


def test_analyst_reads_staging_and_nothing_else(engine):
    tables = staging_tables(engine)
    assert tables, "staging has tables to read"
    conn = connect_as("analyst")
    try:
        with conn.cursor() as cur:
            for table in tables:
                cur.execute(f"SELECT count(*) FROM staging.{table}")  # noqa: S608 (names from pg_tables)
                assert cur.fetchone()[0] >= 0
            for forbidden in (
                "raw.car_prices",
                "raw.rejected_lines",
                "meta.pipeline_runs",
                "meta.stage_runs",
                "work.quarantine",
                "work.chunks",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
                    cur.execute(f"SELECT 1 FROM {forbidden} LIMIT 1")  # noqa: S608 (constant names)
            writes = [
                "INSERT INTO staging.dim_color (color_id, color_name) VALUES (gen_random_uuid(), 'mauve')",
                "UPDATE staging.fact_car_sales SET odometer = 0",
                "DELETE FROM staging.dim_make",
                "TRUNCATE staging.dim_seller",
                "CREATE TABLE staging.mine (x int)",
                "CREATE TABLE public.mine (x int)",
            ]
            for statement in writes:
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()


# Give every function of the pipeline's schemas to a role, as if that role had created them all.
AS_PIPELINE = {"DATABASE_URL": f"postgresql://pipeline@{PG_BASE.split('@', 1)[1]}/{TEST_DB}"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_entirely_as_the_pipeline_role_works_end_to_end(workers, engine, data_dir):
    """Workers and CLI connect as `pipeline` (only setup's migrations use the admin URL, as in
    docker-compose.yml); every server session the stages open runs as `pipeline`; the analyst can
    read what the pipeline role published."""
    as_pipeline = AS_PIPELINE
    no_admin = {**as_pipeline, "SETUP_DATABASE_URL": ""}
    workers.start("setup", env=as_pipeline)
    workers.start("ingest", env=no_admin)
    if has_transform():
        workers.start("transform", env=no_admin)
    path = data_dir / "as pipeline.csv"
    from tools.sample import write_sample

    write_sample(path, 20_000, seed=3)
    users: set[tuple[str, str]] = set()

    def sessions():
        with engine.connect() as conn:
            users.update(
                conn.execute(
                    sa.text(
                        "SELECT application_name, usename FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name LIKE 'carsales-%'"
                    )
                ).all()
            )

    run_id = start_run(str(path), env=no_admin)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        sessions()
        status = wait_for_run(run_id, until=("queued", "running", "succeeded", "failed", "cancelled"))
        ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
        if status["status"] in ("succeeded", "failed") or (
            not has_transform() and ingest["status"] in ("succeeded", "failed")
        ):
            break
        time.sleep(0.05)
    ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert ingest["status"] == "succeeded", status
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT count(*) FROM raw.car_prices")).scalar()
        rejected = conn.execute(sa.text("SELECT count(*) FROM raw.rejected_lines")).scalar()
    assert raw + rejected == 20_000 and ingest["rows_out"] == raw
    stage_sessions = {(app, user) for app, user in users if app in ("carsales-ingest", "carsales-transform")}
    assert ("carsales-ingest", "pipeline") in stage_sessions
    assert {user for _, user in stage_sessions} == {"pipeline"}, users
    if has_transform():
        assert status["status"] == "succeeded", status
        conn = connect_as("analyst")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM staging.fact_car_sales")
                facts = cur.fetchone()[0]
                cur.execute("SELECT count(*) FROM staging.quarantined_sales")
                quarantined = cur.fetchone()[0]
        finally:
            conn.close()
        assert facts + quarantined == raw and facts > 0


@pytest.mark.timeout(180)
def test_a_transform_as_pipeline_works_after_one_as_the_superuser(workers, engine, data_dir):
    """`make run` transforms as the local superuser, docker compose as `pipeline`, on the same
    database: what the first transform creates (its work partitions) belongs to `pipeline`, so the
    second can use and drop what it finds."""
    if not has_transform():
        pytest.skip("services/transform/job.py does not exist yet (transform stage being written)")
    workers.start("setup")
    workers.start("ingest")
    superuser = workers.start("transform")  # the tests' DATABASE_URL: the superuser
    first = data_dir / "as superuser.csv"
    first.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    done = wait_for_run(start_run(str(first)), timeout=120)
    assert done["status"] == "succeeded", done["error"]
    superuser.terminate()
    superuser.wait(timeout=30)
    assert set(owners(engine)) == {"pipeline"}

    workers.start("transform", env={**AS_PIPELINE, "SETUP_DATABASE_URL": ""})
    second = data_dir / "as pipeline.csv"
    second.write_text(HEADER_LINE + "\n" + GOOD.replace("16639", "16640") + "\n")
    status = wait_for_run(start_run(str(second)), timeout=120)
    assert status["status"] == "succeeded", status["error"]


# --- no SQL built by string formatting ---------------------------------------------------------------

SQL_SINKS = {
    "execute",
    "executemany",
    "exec_driver_sql",
    "text",
    "copy_expert",
    "copy_from",
    "copy_to",
    "mogrify",
}
COMPOSABLE = {"SQL", "Identifier", "Literal", "Composed", "Placeholder"}  # psycopg2.sql
SQL_WORDS = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|ROLE|SCHEMA|DATABASE)"
    r"|DROP\s+(TABLE|SCHEMA|DATABASE|ROLE)|ALTER\s+(TABLE|ROLE)|TRUNCATE|COPY\s+\S+\s+(FROM|TO)|GRANT\s|REVOKE\s)",
    re.S,
)


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _composable(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) in COMPOSABLE


def _built(node: ast.expr) -> bool:
    """A string made at run time from pieces: f-string, %, +, .format() or .join() on text."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            return not _composable(node.func.value)
        if node.func.attr == "join":
            return isinstance(node.func.value, ast.Constant)
    return False


def _literal_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) + " " + _literal_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _literal_text(node.func.value)
    return ""


def sql_formatting_violations(source: str, filename: str = "<code>") -> list[str]:
    """Places where SQL text is built by formatting: a SQL call whose statement is built at run time
    (directly or through a local variable), or any built string whose literal parts read as SQL."""
    tree = ast.parse(source, filename)
    found = []
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in SQL_SINKS and node.args:
            statement = node.args[0]
            candidates = assigned.get(statement.id, []) if isinstance(statement, ast.Name) else [statement]
            if any(_built(c) for c in candidates):
                found.append(f"{filename}:{node.lineno}: SQL statement built by formatting")
        elif _built(node) and SQL_WORDS.search(_literal_text(node)):
            found.append(f"{filename}:{node.lineno}: SQL text built by formatting")
    return sorted(set(found))


def test_the_sql_scanner_catches_each_forbidden_pattern():
    bad = {
        "fstring": "cur.execute(f\"SELECT * FROM raw.car_prices WHERE _source_file = '{name}'\")",
        "percent": 'cur.execute("DELETE FROM t WHERE id = %s" % row_id)',
        "plus": 'conn.execute(sa.text("SELECT * FROM " + table))',
        "format": 'cur.execute("DROP TABLE {}".format(name))',
        "variable": 'q = f"UPDATE t SET a = {v}"\ncur.execute(q)',
        "built_elsewhere": 'QUERY = "INSERT INTO raw.x VALUES (" + value + ")"',
        "join": 'cur.execute(" ".join(["TRUNCATE", name]))',
    }
    for label, code in bad.items():
        assert sql_formatting_violations(code), label
    good = [
        'cur.execute("SELECT * FROM t WHERE a = %(a)s", {"a": a})',
        'conn.execute(sa.text("SELECT 1 WHERE x = :x"), {"x": x})',
        'cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))',
        'cur.execute(Q["copy_rows"])',
        'log.info(f"loaded {n} rows from {path}")',
        'raise BadInputError(f"{source}: line 1: the header is not the expected one")',
    ]
    for code in good:
        assert not sql_formatting_violations(code), code


def test_no_sql_is_built_by_string_formatting():
    violations = []
    files = [p for d in CODE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 10
    for path in files:
        violations += sql_formatting_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        assert "noqa: S608" not in path.read_text(encoding="utf-8"), f"{path}: S608 silenced"
    assert not violations, "\n".join(violations)
    # SQL kept in .sql files is never a Python template: values travel as parameters.
    for path in [p for d in CODE_DIRS for p in sorted((ROOT / d).rglob("*.sql"))]:
        templated = re.findall(
            r"\{[A-Za-z_]\w*\}|%s\b|\bformat\(\s*'[^']*%[sI]", path.read_text(encoding="utf-8")
        )
        assert not templated, f"{path}: {templated}"


def test_ruff_finds_no_string_built_sql():
    ruff = Path(ROOT / ".venv" / "bin" / "ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in .venv")
    proc = subprocess.run(
        [str(ruff), "check", "--select", "S608", "--no-cache", *CODE_DIRS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- sources confined to DATA_DIR ---------------------------------------------------------------------


def test_sources_outside_the_data_directory_are_refused(data_dir, tmp_path):
    root = DATA_DIR
    inside = data_dir / "ok.csv"
    inside.write_text(HEADER_LINE + "\n")
    sibling = Path(f"{root}-sibling")  # shares the data directory's name as a prefix
    sibling.mkdir(exist_ok=True)
    (sibling / "x.csv").write_text(HEADER_LINE + "\n")
    outside_dir = tmp_path / "elsewhere"
    outside_dir.mkdir()
    (outside_dir / "secret.csv").write_text("root:x:0:0\n")
    (data_dir / "linked_dir").symlink_to(outside_dir)
    (data_dir / "alias.csv").symlink_to(inside)  # a link that stays inside is fine
    try:
        assert confine(inside, root) == inside
        assert confine(data_dir / "alias.csv", root) == data_dir / "alias.csv"
        refused = [
            "/etc/passwd",
            f"{data_dir}/../../../etc/passwd",
            str(sibling / "x.csv"),
            str(data_dir / "linked_dir" / "secret.csv"),
        ]
        for path in refused:
            with pytest.raises(BadInputError, match="outside the data directory"):
                confine(path, root)
        with pytest.raises(BadInputError, match="outside the data directory"):
            expand_sources([str(data_dir / "linked_dir")], root)
        with pytest.raises(BadInputError, match="outside the data directory"):
            expand_sources([str(data_dir / "linked_dir" / "*.csv")], root)
    finally:
        (sibling / "x.csv").unlink()
        sibling.rmdir()


@pytest.mark.timeout(120)
def test_a_job_enqueued_around_the_cli_cannot_read_outside_the_data_directory(workers, engine, tmp_path):
    """Defense in depth: the ingest worker confines the path itself, whoever enqueued the job."""
    from shared import db, ledger, queues

    workers.start("ingest")
    outside = tmp_path / "passwd.csv"
    outside.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    spec = queues.RunSpec(run_id=str(uuid.uuid4()), sources=[str(outside)])
    plan = [job for job in queues.plan_run(spec) if job.stage == "ingest"]
    with db.engine().begin() as conn:
        ledger.create_run(conn, spec.run_id, spec.sources, plan)
    queues.enqueue_plan(spec, plan)
    status = wait_ingested(spec.run_id, timeout=60)
    ingest = status["stages"][0]
    assert ingest["status"] == "failed" and "outside the data directory" in ingest["error"], ingest
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM raw.car_prices")).scalar() == 0


# --- secrets: from the environment only, never logged ----------------------------------------------


def test_no_secret_is_written_in_the_code():
    literal_password = re.compile(r"""(password|passwd|secret)\s*[=:]\s*["'][^"'{$]+["']""", re.I)
    url_with_password = re.compile(r"\w+://[^/\s:@'\"]*:[^@\s'\"$]+@")
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".sql", ".yml")]
    files.append(ROOT / "docker-compose.yml")
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not literal_password.search(text), path
        assert not url_with_password.search(text), path


@pytest.fixture
def spare_redis(tmp_path):
    spare = SpareRedis(tmp_path)
    yield spare
    spare.stop()


SERVER_LOGS = sorted(Path("/var/log/postgresql").glob("postgresql-*.log"))


@pytest.mark.skipif(
    not SERVER_LOGS or not all(os.access(p, os.R_OK) for p in SERVER_LOGS),
    reason="the PostgreSQL server log is not readable here",
)
def test_role_passwords_do_not_reach_the_server_log(clean_db):
    """Setup sets the roles' passwords with statements the server may log (log_statement = all
    here): they carry a SCRAM verifier computed on the client, never the password."""
    secret = f"pw-{uuid.uuid4().hex[:12]}"
    before = {p: p.stat().st_size for p in SERVER_LOGS}
    proc = run_cli(
        "setup",
        env={
            "PIPELINE_DB_PASSWORD": secret,
            "ANALYST_DB_PASSWORD": secret,
            "PGOPTIONS": "-c log_statement=all",
        },
    )
    assert proc.returncode == 0, proc.stderr
    with psycopg2.connect(f"{PG_BASE}/{TEST_DB}") as conn, conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'pipeline'")
        assert cur.fetchone()[0].startswith("SCRAM-SHA-256$")
    time.sleep(0.5)  # the server's stderr reaches its log file asynchronously
    logged = b"".join(p.read_bytes()[before.get(p, 0) :] for p in SERVER_LOGS)
    assert b"ALTER ROLE" in logged, "log_statement = all logged the setup's statements"
    assert secret.encode() not in logged


@pytest.mark.timeout(180)
def test_passwords_never_reach_logs_ledger_or_queue(workers, engine, spare_redis, data_dir):
    """Every connection carries a password (trust authentication ignores PostgreSQL's; Redis checks
    its own): none of them appears in worker logs, CLI output, the ledger or the queue."""
    secrets = {name: f"{name}-{uuid.uuid4().hex[:10]}" for name in ("pipeline", "analyst", "admin", "redis")}
    queue = spare_redis.start(password=secrets["redis"])
    host = PG_BASE.split("@", 1)[1]
    env = {
        "DATABASE_URL": f"postgresql://pipeline:{secrets['pipeline']}@{host}/{TEST_DB}",
        "SETUP_DATABASE_URL": f"postgresql://postgres:{secrets['admin']}@{host}/{TEST_DB}",
        "PIPELINE_DB_PASSWORD": secrets["pipeline"],
        "ANALYST_DB_PASSWORD": secrets["analyst"],
        "REDIS_URL": spare_redis.url,
    }
    workers.start("setup", env=env)
    workers.start("ingest", env=env)
    good = data_dir / "good.csv"
    good.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    bad = data_dir / "bad.csv"
    bad.write_text("not,a,header\n")
    outputs, run_ids = [], []
    for path in (good, bad):
        run_ids.append(start_run(str(path), env=env))
        wait_ingested(run_ids[-1])
        for args in (("status", run_ids[-1]), ("status", run_ids[-1], "--json"), ("runs",)):
            proc = run_cli(*args, env=env)
            outputs += [proc.stdout, proc.stderr]
    # Failing commands name the URL they could not use: masked.
    broken_db = {**env, "DATABASE_URL": f"postgresql://pipeline:{secrets['pipeline']}@127.0.0.1:1/{TEST_DB}"}
    broken_redis = {**env, "REDIS_URL": f"redis://:{secrets['redis']}@127.0.0.1:1/0"}
    for broken, commands in ((broken_db, ("runs", "health")), (broken_redis, ("run", "health", "cancel"))):
        for command in commands:
            proc = run_cli(command, *([str(uuid.uuid4())] if command == "cancel" else []), env=broken)
            assert proc.returncode != 0, (command, proc.stdout)
            outputs += [proc.stdout, proc.stderr]
            assert "***" in proc.stderr, (command, proc.stderr)

    with engine.connect() as conn:
        for table in ("meta.pipeline_runs", "meta.stage_runs"):
            rows = conn.execute(sa.text(f"SELECT t::text FROM {table} t")).scalars()  # noqa: S608
            outputs += list(rows)
    outputs.append(json.dumps(workers.logs()))
    outputs += [str(queue.dump(key)) for key in queue.keys("*")]
    haystack = "\n".join(outputs)
    for run_id in run_ids:
        assert haystack.count(run_id) > 10, "the places searched hold the runs"
    assert "worker starting" in haystack
    for name, secret in secrets.items():
        at = haystack.find(secret)
        assert at < 0, f"the {name} password leaked: ...{haystack[max(0, at - 300) : at + 50]}"


# --- hostile input end to end ------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_a_latin1_file_loads_its_ascii_lines_and_rejects_the_rest_by_line(workers, engine, data_dir):
    workers.start_all(transform=1 if has_transform() else 0)
    lines = [
        GOOD,
        GOOD.replace("Kia,Sorento", "Citroën,C4"),
        GOOD.replace("kia motors america  inc", "société générale"),
        GOOD,
        GOOD.replace("white", "crème"),
    ]
    path = data_dir / "latin1.csv"
    path.write_bytes((HEADER_LINE + "\r\n" + "\r\n".join(lines) + "\r\n").encode("latin-1"))
    run_id = start_run(str(path))
    status = wait_for_run(run_id, timeout=180) if has_transform() else wait_ingested(run_id)
    ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert (ingest["status"], ingest["rows_in"], ingest["rows_out"], ingest["rows_rejected"]) == (
        "succeeded",
        5,
        2,
        3,
    )
    with engine.connect() as conn:
        rejects = conn.execute(
            sa.text(
                "SELECT line_number, reason, raw_line FROM raw.rejected_lines "
                "WHERE source_file = 'latin1.csv' ORDER BY 1"
            )
        ).all()
    assert [(r.line_number, r.reason.split(":")[0]) for r in rejects] == [
        (3, "not valid UTF-8"),
        (4, "not valid UTF-8"),
        (6, "not valid UTF-8"),
    ]
    assert "byte 0xeb at column 11" in rejects[0].reason  # the ë of "2015,Citroën"
    assert bytes(rejects[1].raw_line) == lines[2].encode("latin-1"), "the original bytes are kept"
    if has_transform():
        assert status["status"] == "succeeded", status
        with engine.connect() as conn:
            facts, quarantined = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM staging.fact_car_sales), "
                    "(SELECT count(*) FROM staging.quarantined_sales)"
                )
            ).one()
        assert facts + quarantined == 2


@pytest.mark.timeout(120)
def test_a_truncated_gzip_fails_at_once_naming_the_file(workers, engine, data_dir):
    workers.start("setup")
    workers.start("ingest")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write((HEADER_LINE + "\n" + (GOOD + "\n") * 5000).encode())
    path = data_dir / "cut short.csv.gz"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    status = wait_ingested(start_run(str(path)), timeout=60)
    ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM raw.car_prices")).scalar() == 0
    assert ingest["status"] == "failed"
    assert "cut short.csv.gz" in ingest["error"], ingest["error"]
    assert ingest["attempt"] == 1, "bad input is not retried"
