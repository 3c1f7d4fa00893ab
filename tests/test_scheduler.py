"""The daily batch: slots and their run ids, the registered job called for given slots (new files
load, old ones are skipped, a day without new files says so, a slot never runs twice), and two real
`rq cron` schedulers firing every minute that start one run per slot."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from rq.cron import get_cron_job_ids
from rq.job import Job

from shared import schedule
from shared.config import settings
from tests.conftest import GOOD, ROOT, run_cli, wait_for_run

RQ = str(os.path.join(os.path.dirname(sys.executable), "rq"))
SAMPLE = ROOT / "data" / "sample.csv"


def test_a_slot_is_the_latest_schedule_time_and_names_its_run():
    daily = "0 2 * * *"
    slot = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert schedule.slot_at(daily, slot) == slot  # fired on time
    assert schedule.slot_at(daily, slot + timedelta(seconds=0.4)) == slot  # enqueued a moment later
    assert schedule.slot_at(daily, slot - timedelta(seconds=1)) == slot - timedelta(days=1)
    assert schedule.next_slot(daily, slot) == slot + timedelta(days=1)
    assert schedule.next_slot(daily, slot - timedelta(minutes=1)) == slot
    # Same slot, same run, whoever computes it and in whatever time zone it is written.
    assert schedule.slot_run_id(slot) == schedule.slot_run_id(slot.astimezone(UTC))
    assert schedule.slot_run_id(datetime.fromisoformat("2026-12-01T03:00:00+01:00")) == schedule.slot_run_id(
        slot
    )
    assert schedule.slot_run_id(slot) != schedule.slot_run_id(slot + timedelta(days=1))


def test_schedule_settings_are_validated():
    from shared.config import load_settings
    from shared.errors import ConfigError

    cfg = load_settings({"DATA_DIR": "/srv/data"})
    assert cfg.schedule_cron == "0 2 * * *"
    assert str(cfg.landing_dir) == "/srv/data/landing"
    cfg = load_settings({"DATA_DIR": "/srv/data", "SCHEDULE_CRON": "30  4 * * 1-5", "LANDING_DIR": "/srv/x"})
    assert (cfg.schedule_cron, str(cfg.landing_dir)) == ("30 4 * * 1-5", "/srv/x")
    for bad in ("every day", "0 2 * *", "61 2 * * *", "0 2 * * * *"):
        with pytest.raises(ConfigError, match="SCHEDULE_CRON"):
            load_settings({"SCHEDULE_CRON": bad})


@pytest.fixture
def landing(data_dir, monkeypatch):
    """A landing directory for this test, in the settings of this process and of its workers."""
    folder = data_dir / "landing"
    folder.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(folder))
    settings.cache_clear()
    yield folder
    monkeypatch.delenv("LANDING_DIR")
    settings.cache_clear()


def start_workers(workers):
    for stage in ("setup", "ingest", "transform"):
        workers.start(stage)


def small_file(path, seller: str, lines: int = 40):
    fields = GOOD.split(",")
    fields[12] = seller
    rows = [",".join(fields[:6] + [f"5xyktca69fg5{n:05d}"] + fields[7:]) for n in range(lines)]
    path.write_text(SAMPLE.read_text(encoding="utf-8").splitlines()[0] + "\n" + "\n".join(rows) + "\n")
    return path


def recent(engine) -> list[dict]:
    with engine.connect() as conn:
        return schedule.recent(conn, 10)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_each_slot_loads_the_new_files_skips_the_old_and_never_runs_twice(workers, engine, landing):
    start_workers(workers)
    monday = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)

    # Day 1: one file has landed.
    small_file(landing / "day1.csv", "first day motors")
    first = schedule.run_slot(monday.isoformat())
    assert first == {
        "slot": monday.isoformat(),
        "run_id": schedule.slot_run_id(monday),
        "files": 1,
        "started": True,
    }
    assert wait_for_run(first["run_id"])["status"] == "succeeded"

    # Day 2: a second file; the first is still there and its content is skipped.
    small_file(landing / "day2.csv", "second day motors")
    (landing / "notes.txt").write_text("not a source file\n")
    second = schedule.run_slot((monday + timedelta(days=1)).isoformat())
    status = wait_for_run(second["run_id"])
    assert status["status"] == "succeeded"
    ingests = {s["task"].rsplit("/", 1)[-1]: s for s in status["stages"] if s["stage"] == "ingest"}
    assert set(ingests) == {"day1.csv", "day2.csv"}
    assert ingests["day1.csv"]["details"]["reason"] == "already ingested"
    assert ingests["day2.csv"]["rows_out"] == 40

    # Day 3: nothing new. The run loads nothing and publishes nothing, and says so.
    third = schedule.run_slot((monday + timedelta(days=2)).isoformat())
    assert wait_for_run(third["run_id"])["status"] == "succeeded"
    by_slot = {r["slot"]: r for r in recent(engine)}
    assert [(r["files"], r["loaded"], r["skipped"], r["sales_published"]) for r in by_slot.values()] == [
        (2, 0, 2, 0),
        (2, 1, 1, 40),
        (1, 1, 0, 40),
    ]

    # The same slot again (a second scheduler, a restarted one): its run already exists.
    again = schedule.run_slot((monday + timedelta(days=2)).isoformat())
    assert again == {**third, "started": False}
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM meta.pipeline_runs")).scalar()
        sales = conn.execute(sa.text("SELECT count(*) FROM staging.fact_car_sales")).scalar()
    assert (runs, sales, len(recent(engine))) == (3, 80, 3)

    shown = run_cli("schedule", check=True, env={"LANDING_DIR": str(landing)}).stdout
    assert "0 2 * * * (UTC)" in shown and "(2 file(s))" in shown
    assert third["run_id"] in shown and "no new files" in shown
    assert "none running" in shown  # no `rq cron` in this test
    as_json = json.loads(run_cli("schedule", "--json", check=True, env={"LANDING_DIR": str(landing)}).stdout)
    assert datetime.fromisoformat(as_json["next_slot"]) > datetime.now(UTC)
    assert [r["run_id"] for r in as_json["runs"]] == [third["run_id"], second["run_id"], first["run_id"]]


def test_a_missing_landing_directory_is_an_error_naming_it(clean_db, landing):
    landing.rmdir()
    with pytest.raises(Exception, match=r"landing.*LANDING_DIR.*does not exist"):
        schedule.run_slot("2026-12-01T02:00:00+00:00")
    assert recent(clean_db) == []


def start_scheduler(tmp_path, number: int, env: dict) -> subprocess.Popen:
    log = (tmp_path / f"scheduler-{number}.log").open("w")
    return subprocess.Popen(
        [RQ, "cron", "--url", os.environ["REDIS_URL"], "services.scheduler.cron"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_real_schedulers_firing_every_minute_start_one_run_per_slot(
    workers, engine, landing, redis_conn, tmp_path
):
    """rq cron has no leader lock: both schedulers enqueue the slot's job; one of them starts the
    slot's run, the other finds it started."""
    shutil.copy(SAMPLE, landing / "sample.csv")
    env = {"LANDING_DIR": str(landing), "SCHEDULE_CRON": "* * * * *"}
    for stage in ("setup", "ingest", "transform"):
        workers.start(stage, env=env)
    schedulers = [start_scheduler(tmp_path, n, env) for n in range(2)]
    try:
        deadline = time.monotonic() + 150
        fired: list[str] = []
        while time.monotonic() < deadline:
            fired = get_cron_job_ids(schedule.CRON_JOB_NAME, redis_conn)
            done = [Job.fetch(i, connection=redis_conn).get_status() in ("finished", "failed") for i in fired]
            if len(fired) >= 2 and all(done):
                break
            time.sleep(0.5)
        shown = run_cli("schedule", check=True, env=env).stdout
    finally:
        for proc in schedulers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in schedulers:
            proc.wait(timeout=30)
    logs = "".join(p.read_text() for p in tmp_path.glob("scheduler-*.log"))
    assert len(fired) >= 2, f"the schedulers enqueued {fired}\n{logs}"
    outcomes = [Job.fetch(i, connection=redis_conn).return_value() for i in fired]
    assert all(outcomes), f"a slot job failed: {outcomes}\n{logs}"
    slots = {o["slot"] for o in outcomes}
    for slot in slots:
        of_slot = [o for o in outcomes if o["slot"] == slot]
        assert [o["started"] for o in of_slot].count(True) == 1, of_slot
        assert {o["run_id"] for o in of_slot} == {schedule.slot_run_id(datetime.fromisoformat(slot))}
    rows = recent(engine)
    assert sorted(r["slot"].astimezone(UTC).isoformat() for r in rows) == sorted(slots)
    first = wait_for_run(str(rows[-1]["run_id"]))
    assert first["status"] == "succeeded", first
    assert "more than one scheduler" in shown, shown


def test_compose_runs_one_scheduler_with_rq_cron_in_utc():
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    scheduler = services["scheduler"]
    assert scheduler["command"] == ["rq", "cron", "services.scheduler.cron"]
    env = scheduler["environment"]
    assert env["TZ"] == "UTC" and env["LANDING_DIR"] == "/data/landing"
    assert env["SCHEDULE_CRON"].startswith("${SCHEDULE_CRON")
    assert env["RQ_REDIS_URL"] == env["REDIS_URL"]
    assert (scheduler.get("deploy") or {}).get("replicas", 1) == 1
    assert scheduler["build"]["args"]["STAGE"] == "scheduler"
    assert (ROOT / "services" / "scheduler" / "cron.py").is_file()
