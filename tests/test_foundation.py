"""Foundation: settings, logs, the ledger through the queue chain, failures, retries, the CLI."""

import json
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from shared.config import load_settings, mask_url
from shared.dataset import HEADER_LINE
from shared.errors import ConfigError
from tests.conftest import GOOD, PIPELINE, run_cli, wait_for_run

# --- configuration -------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    cfg = load_settings({})
    assert cfg.database_url == "postgresql://postgres@localhost:5432/carsales"
    assert cfg.redis_url == "redis://localhost:6379/0"
    assert (cfg.log_level, cfg.log_format, cfg.quarantine_max_rate) == ("INFO", "json", 0.01)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "mysql://x@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://user@host:5432/"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h:notaport/db"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"QUARANTINE_MAX_RATE": "2"}, "QUARANTINE_MAX_RATE"),
        ({"RETRY_INTERVALS": "1,soon"}, "RETRY_INTERVALS"),
        ({"JOB_TIMEOUT": ""}, "JOB_TIMEOUT"),
    ],
)
def test_a_bad_setting_is_named(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_the_cli_fails_at_start_naming_the_bad_setting():
    proc = run_cli("runs", env={"LOG_LEVEL": "LOUD"})
    assert proc.returncode == 2
    assert "LOG_LEVEL" in proc.stderr and "expected one of" in proc.stderr


def test_passwords_are_masked():
    assert (
        mask_url("postgresql://pipeline:s3cret@db:5432/carsales")
        == "postgresql://pipeline:***@db:5432/carsales"
    )
    assert mask_url("redis://localhost:6379/0") == "redis://localhost:6379/0"
    proc = run_cli("health", env={"DATABASE_URL": "postgresql://nobody:s3cret@127.0.0.1:1/carsales"})
    assert proc.returncode == 1
    assert "s3cret" not in proc.stdout + proc.stderr and "***" in proc.stderr


def test_secrets_stay_out_of_tracebacks_and_printed_settings():
    """An empty user name (redis://:pw@host), a URL deep inside a rendered exception and a
    password in a failing frame's local variables are all kept out of the log line; printing the
    settings shows none of them either."""
    import io

    import structlog

    from shared.logging import configure_logging

    stream = io.StringIO()
    configure_logging("test", stream=stream)
    password = "s3cret-local"  # noqa: F841 (a local of the failing frame)
    try:
        raise ConnectionError("cannot reach redis://:s3cret-redis@redis:6379/0")
    except ConnectionError:
        structlog.get_logger().exception("stage failed")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["exception"][0]["exc_value"] == "cannot reach redis://:***@redis:6379/0"
    assert "s3cret" not in stream.getvalue()

    cfg = load_settings(
        {
            "DATABASE_URL": "postgresql://pipeline:s3cret-db@db:5432/carsales",
            "REDIS_URL": "redis://:s3cret-redis@redis:6379/0",
            "PIPELINE_DB_PASSWORD": "s3cret-db",
            "ANALYST_DB_PASSWORD": "s3cret-analyst",
        }
    )
    assert "s3cret" not in repr(cfg) and "pipeline:***@db" in repr(cfg)
    assert cfg.pipeline_db_password == "s3cret-db"


# --- the chain through real workers --------------------------------------------------------------


def test_a_run_without_sources_runs_setup_only(workers):
    workers.start_all()
    proc = run_cli("run", "--wait", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["status"] == "succeeded"
    assert [s["stage"] for s in status["stages"]] == ["setup"]
    # status --json is the ledger, field for field
    again = json.loads(run_cli("status", status["run_id"], "--json", check=True).stdout)
    assert again == status
    assert {"run_id", "status", "error", "stages"} <= again.keys()
    assert {
        "stage",
        "status",
        "attempt",
        "rows_in",
        "rows_out",
        "rows_rejected",
        "started_at",
        "finished_at",
        "error",
    } <= again["stages"][0].keys()


def test_logs_are_json_lines_with_context(workers, data_dir):
    workers.start_all()
    path = data_dir / "one.csv"
    path.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    run_id = json.loads(run_cli("run", "--json", "--source", str(path), check=True).stdout)["run_id"]
    wait_for_run(run_id, timeout=120)
    time.sleep(0.5)
    lines = workers.logs()
    assert not [line for line in lines if "unparsed" in line], "every line is JSON"
    for stage in ("setup", "ingest"):
        events = [e for e in lines if e.get("run_id") == run_id and e.get("stage") == stage]
        names = [e["event"] for e in events]
        assert "stage started" in names and "stage finished" in names, (stage, names)
        for event in events:
            assert {"service", "stage", "run_id", "job_id", "event", "level", "timestamp"} <= event.keys()
            assert event["service"] == stage
        finished = next(e for e in events if e["event"] == "stage finished")
        assert "seconds" in finished and "rows_out" in finished


def test_rq_registry_cleaning_is_logged_at_debug_only(workers):
    """RQ's periodic maintenance lines fill the logs every few seconds; at INFO they are not shown."""

    def cleaning(stage: str) -> list[dict]:
        return [e for e in workers.logs(stage) if "cleaning registries" in str(e.get("event"))]

    workers.start("ingest", env={"LOG_LEVEL": "DEBUG"})
    workers.start("setup")  # LOG_LEVEL=INFO
    deadline = time.monotonic() + 60
    while len(cleaning("ingest")) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    debug_lines = cleaning("ingest")
    assert len(debug_lines) >= 2, "the DEBUG worker shows its maintenance, once per interval"
    assert {e["level"] for e in debug_lines} == {"debug"}
    assert cleaning("setup") == [], "the INFO worker cleaned its registries too, without a line"
    assert any("Listening on setup" in str(e.get("event")) for e in workers.logs("setup"))


def test_a_failed_stage_fails_the_run_and_later_stages_are_not_run(workers, data_dir, redis_conn):
    workers.start_all()
    bad = data_dir / "bad.csv"
    bad.write_text("not,the,header\n")
    proc = run_cli("run", "--wait", "--json", "--source", str(bad), timeout=120)
    assert proc.returncode == 1
    status = json.loads(proc.stdout)
    assert status["status"] == "failed" and status["failed_stage"] == "ingest"
    assert "bad.csv" in status["error"] and "header" in status["error"]
    by_stage = {s["stage"]: s for s in status["stages"]}
    assert by_stage["setup"]["status"] == "succeeded"
    assert by_stage["ingest"]["status"] == "failed" and by_stage["ingest"]["attempt"] == 1
    assert by_stage["transform"]["status"] == "not_run"
    # ... and RQ does not keep the transform job deferred forever
    from rq.job import Job

    job = Job.fetch(f"run-{status['run_id']}-transform", connection=redis_conn)
    assert job.get_status() == "canceled"


def test_a_lost_database_connection_is_retried(workers, engine, data_dir):
    """pg_terminate_backend in the middle of a COPY: RQ retries the job and it loads exactly once."""
    workers.start_all()
    path = data_dir / "big.csv"
    path.write_text(HEADER_LINE + "\n" + (GOOD + "\n") * 400_000)
    run_id = json.loads(run_cli("run", "--json", "--source", str(path), check=True).stdout)["run_id"]
    killed = []

    def terminate_copy():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            with engine.connect() as conn:
                pids = (
                    conn.execute(
                        sa.text(
                            'SELECT pid FROM pg_stat_activity WHERE query LIKE \'COPY "raw"."car_prices_b%\' '
                            "AND state = 'active' AND datname = current_database()"
                        )
                    )
                    .scalars()
                    .all()
                )
                for pid in pids:
                    conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=terminate_copy)
    thread.start()
    thread.join()
    assert killed, "the COPY was seen and terminated"
    status = _ingested(run_id)
    ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert ingest["status"] == "succeeded" and ingest["attempt"] == 2
    assert ingest["rows_out"] == 400_000
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM raw.car_prices")).scalar() == 400_000
    events = [e for e in workers.logs("ingest") if e.get("event") == "stage will retry"]
    assert events and events[0]["run_id"] == run_id


def _ingested(run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = wait_for_run(run_id, until=("queued", "running", "succeeded", "failed"))
        ingest = next(s for s in status["stages"] if s["stage"] == "ingest")
        if ingest["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"ingest of run {run_id} did not end")


def test_redis_down_fails_the_cli_clearly_and_enqueues_nothing(engine, clean_db, data_dir):
    path = data_dir / "one.csv"
    path.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    proc = run_cli("run", "--source", str(path), env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert proc.returncode == 3
    assert "Redis is unavailable" in proc.stderr and "nothing was enqueued" in proc.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM meta.pipeline_runs")).scalar() == 0


def test_a_missing_source_is_refused_at_enqueue_when_the_cli_sees_data_dir(
    engine, clean_db, data_dir, redis_conn
):
    good = data_dir / "one.csv"
    good.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    typo = data_dir / "typo.csv"
    proc = run_cli("run", "--source", str(good), "--source", str(typo))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{typo}: no such file" in proc.stderr and proc.stdout == ""
    outside = run_cli("run", "--source", "/nonexistent/typo.csv")  # confinement is checked first
    assert outside.returncode == 2 and "outside the data directory" in outside.stderr, outside.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM meta.pipeline_runs")).scalar() == 0
    assert redis_conn.keys("rq:job:*") == [], "nothing was enqueued"


def test_a_cli_that_cannot_see_data_dir_leaves_the_check_to_the_worker(
    engine, clean_db, redis_conn, tmp_path
):
    elsewhere = tmp_path / "only-the-workers-see-this"  # DATA_DIR of the workers, not on this machine
    source = str(elsewhere / "typo.csv")
    proc = run_cli("run", "--json", "--source", source, env={"DATA_DIR": str(elsewhere)})
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    with engine.connect() as conn:
        sources = conn.execute(
            sa.text("SELECT sources FROM meta.pipeline_runs WHERE run_id = :r"), {"r": run_id}
        ).scalar()
    assert sources == [source]


def test_every_command_has_help():
    commands = ["run", "status", "runs", "worker", "setup", "retry", "cancel", "rebuild", "sample", "health"]
    for command in commands:
        proc = subprocess.run([PIPELINE, command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Usage: pipeline" in proc.stdout, command


def test_runs_lists_recent_runs(workers):
    workers.start_all()
    ids = [json.loads(run_cli("run", "--wait", "--json", check=True).stdout)["run_id"] for _ in range(2)]
    listed = json.loads(run_cli("runs", "--limit", "5", "--all", "--json", check=True).stdout)
    assert [r["run_id"] for r in listed][:2] == ids[::-1]


def test_runs_leaves_setup_only_runs_out_unless_asked(workers, data_dir):
    """The bootstrap's setup step is not a run of 0 files in the default listing."""
    workers.start_all()
    setup_only = json.loads(run_cli("setup", "--json", check=True).stdout)["run_id"]
    path = data_dir / "one.csv"
    path.write_text(HEADER_LINE + "\n" + GOOD + "\n")
    loaded = json.loads(run_cli("run", "--wait", "--json", "--source", str(path), check=True).stdout)[
        "run_id"
    ]
    default = json.loads(run_cli("runs", "--json", check=True).stdout)
    assert [r["run_id"] for r in default] == [loaded]
    assert default[0]["n_sources"] == 1
    listed = json.loads(run_cli("runs", "--all", "--json", check=True).stdout)
    assert [r["run_id"] for r in listed] == [loaded, setup_only]
    text = run_cli("runs", check=True).stdout
    assert loaded in text and setup_only not in text


def test_the_committed_env_is_the_example_with_a_header():
    """.env (local placeholders, committed) and .env.example (the documented contract) say the same."""
    from tests.conftest import ROOT

    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    committed = (ROOT / ".env").read_text(encoding="utf-8")
    header, _, rest = committed.partition("\n\n")
    assert all(line.startswith("#") for line in header.splitlines()), header
    assert rest == example


def test_setup_url_lends_credentials_but_never_changes_the_database():
    cfg = load_settings(
        {
            "DATABASE_URL": "postgresql://pipeline:pw@db:5432/carsales_test",
            "SETUP_DATABASE_URL": "postgresql://postgres:admin@db:5432/carsales",
        }
    )
    assert cfg.setup_database_url == "postgresql://postgres:admin@db:5432/carsales_test"
    # A stale admin URL naming another server (an old .env) cannot make setup migrate that server.
    cfg = load_settings(
        {
            "DATABASE_URL": "postgresql://pipeline:pw@127.0.0.1:5433/carsales_test",
            "SETUP_DATABASE_URL": "postgresql://postgres:admin@localhost:5432/carsales",
        }
    )
    assert cfg.setup_database_url == "postgresql://postgres:admin@127.0.0.1:5433/carsales_test"
