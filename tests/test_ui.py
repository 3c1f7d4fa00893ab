"""The web UI in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright)
against `pipeline ui` serving real runs that real workers made of real files.

Every page visit fails on a console error, an uncaught page error, a failed request or an HTTP
error response, and leaves a screenshot in the test's tmp_path (screenshots/). With
UI_DOCS_SCREENSHOT=1 the sample run's page is also saved as docs/ui-run.png (the README's).
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa

from shared import ledger
from shared.dataset import HEADER_LINE
from tests.conftest import GOOD, PG_BASE, PIPELINE, ROOT, TEST_DB, run_cli, wait_for_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SAMPLE = ROOT / "data" / "sample.csv"
HOSTILE = "<script>alert(1)</script>"
# A file name cannot hold a slash: the classic tags that run script without one.
HOSTILE_FILE = "<script>alert(2)<script><img src=x onerror=alert(3)>.csv"


def with_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


SELLER, STATE = 12, 7
# The UI reads as its own role (a .env of the developer's must not point it elsewhere).
UI_URL = f"postgresql://ui@{PG_BASE.split('@', 1)[1]}/{TEST_DB}"
UI_ENV = {"UI_DATABASE_URL": UI_URL}


def ui_cli(*args: str, check: bool = False):
    return run_cli(*args, check=check, env=UI_ENV)


# --- the server and the browser ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(log: Path, env: dict, ready: str = "/healthz"):
    """`pipeline ui` (default host) on a free port; yields its base URL once `ready` answers."""
    port = free_port()
    proc = subprocess.Popen(
        [PIPELINE, "ui", "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                http_status(base + ready)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, f"pipeline ui exited {proc.returncode}: {log.read_text()}"
                assert time.monotonic() < deadline, f"pipeline ui did not answer: {log.read_text()}"
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def ui_server(test_database, tmp_path_factory):
    """The UI reading the test database as the `ui` role, listening where it does by default."""
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    with serving(log, UI_ENV) as base:
        assert http_status(f"{base}/healthz") == 200
        assert f"Uvicorn running on {base}" in log.read_text(), "bound to 127.0.0.1 by default"
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Never skipped: without the browser these tests fail (.ci/run installs it).
    assert Path(CHROMIUM).exists(), "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Visitor:
    """One browser page that records every problem a visit shows and screenshots each page."""

    def __init__(self, browser, shots: Path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.shots = shots
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}")
        )

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", dialog)

    def visit(self, url: str, shot: str):
        self.page.goto(url, wait_until="load")
        self.check(shot)
        return self.page

    def check(self, shot: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=self.shots / f"{shot}.png", full_page=True)
        assert not self.problems, f"{shot}: {self.problems}"
        assert not self.dialogs, f"{shot}: a script ran: {self.dialogs}"

    def marks(self, selector: str) -> int:
        """The chart's data marks that the browser drew with an area (not an empty chart)."""
        chart = self.page.locator(selector)
        assert chart.count() == 1, f"{selector}: no chart drawn"
        drawn = 0
        for box in chart.locator(".mark").evaluate_all(
            "marks => marks.map(m => { const r = m.getBoundingClientRect(); return [r.width, r.height]; })"
        ):
            drawn += box[0] > 0 and box[1] > 0
        return drawn


@pytest.fixture
def visitor(browser, tmp_path):
    v = Visitor(browser, tmp_path / "screenshots")
    yield v
    v.page.close()


# --- helpers -------------------------------------------------------------------------------------


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def start_run(path: Path) -> str:
    proc = run_cli("run", "--source", str(path), check=True)
    return proc.stdout.strip().splitlines()[-1]


def status_of(engine, run_id: str) -> dict:
    with engine.connect() as conn:
        return ledger.get_status(conn, run_id)


def cells(row) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def shown(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def assert_jobs_as_in_ledger(page, status: dict) -> None:
    rows = page.locator("#jobs tbody tr")
    assert rows.count() == len(status["stages"])
    for row, job in zip(rows.all(), status["stages"], strict=True):
        stage, task, worker, attempt, state, rows_in, rows_out, rejected, *_ = cells(row)
        assert (stage, task, state) == (job["stage"], job["task"], job["status"])
        assert (worker, int(attempt)) == (job["worker"] or "-", job["attempt"])
        assert (rows_in, rows_out, rejected) == tuple(
            shown(job[k]) for k in ("rows_in", "rows_out", "rows_rejected")
        )


def assert_checks_as_in_ledger(page, status: dict) -> None:
    rows = {row.get_attribute("data-check"): cells(row) for row in page.locator("#quality tbody tr").all()}
    assert set(rows) == {q["check"] for q in status["quality"]}
    for check in status["quality"]:
        _, result, observed, threshold, blocking, _ = rows[check["check"]]
        assert result == check["status"]
        assert float(observed.replace(",", "")) == pytest.approx(check["observed"], rel=1e-3, abs=1e-9)
        assert float(threshold.replace(",", "")) == pytest.approx(check["threshold"], rel=1e-3, abs=1e-9)
        assert blocking == ("yes" if check["blocking"] else "no")


def summary(page) -> dict[str, str]:
    fields = page.locator("#summary [data-field]")
    return {f.get_attribute("data-field"): f.inner_text() for f in fields.all()}


def ledger_counts(status: dict) -> dict[str, str]:
    ingest = [s for s in status["stages"] if s["stage"] == "ingest"]
    publish = [s for s in status["stages"] if s["stage"] == "transform"][-1]
    return {
        "files": str(len(status["sources"])),
        "lines": shown(sum(s["rows_in"] for s in ingest)),
        "raw_rows": shown(sum(s["rows_out"] for s in ingest)),
        "rejected": shown(sum(s["rows_rejected"] for s in ingest)),
        "facts": shown(publish["rows_out"]),
        "quarantined": shown(publish["rows_rejected"]),
    }


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_the_sample_run_as_the_ledger_has_it(workers, engine, data_dir, ui_server, visitor, tmp_path):
    # The sample, and its first 2,000 lines as a second file: two ingest workers load them at once.
    shutil.copy(SAMPLE, data_dir / "sample.csv")
    head = SAMPLE.read_bytes().split(b"\n")[:2001]
    (data_dir / "sample-head.csv").write_bytes(b"\n".join(head) + b"\n")
    workers.start_all(ingest=2)
    run_id = start_run(data_dir)
    status = wait_for_run(run_id, timeout=180)
    assert status["status"] == "succeeded", status

    # Runs: the run, newest first, with its counts.
    page = visitor.visit(f"{ui_server}/runs", "runs")
    row = page.locator(f'#runs tr[data-run-id="{run_id}"]')
    assert row.count() == 1
    assert "succeeded" in row.inner_text()
    listed = {c.get_attribute("data-field"): c.inner_text() for c in row.locator("[data-field]").all()}
    expected = ledger_counts(status)
    assert listed == {k: v for k, v in expected.items() if k != "files"}

    # The run: every job, every check, the counts, a Gantt bar per job.
    row.locator("a").first.click()
    page.wait_for_load_state("load")
    visitor.check("run")
    assert page.locator("#run-status").inner_text() == "succeeded"
    assert summary(page) == expected
    assert_jobs_as_in_ledger(page, status)
    assert_checks_as_in_ledger(page, status)
    assert page.locator("#run-error").count() == 0
    assert visitor.marks("#timeline svg.chart") == len(status["stages"])
    if os.environ.get("UI_DOCS_SCREENSHOT"):
        page.screenshot(path=ROOT / "docs" / "ui-run.png", full_page=True)

    # Each quarantine reason links to its lines, with their raw values.
    with engine.connect() as conn:
        quarantined = conn.execute(
            sa.text(
                "SELECT reason, count(*) FROM staging.quarantined_sales, unnest(reasons) reason "
                "WHERE run_id = :r GROUP BY 1"
            ),
            {"r": run_id},
        ).all()
        facts, days, makes = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT CAST(sale_date AT TIME ZONE 'UTC' AS date)), "
                "count(DISTINCT make_id) FROM staging.fact_car_sales"
            )
        ).one()
    assert quarantined, "the sample has quarantined lines"
    reasons = page.locator("#quarantine tbody tr")
    assert {r.get_attribute("data-reason"): cells(r)[1] for r in reasons.all()} == {
        reason: shown(n) for reason, n in quarantined
    }
    first = reasons.first.get_attribute("data-reason")
    reasons.first.locator("a").click()
    page.wait_for_load_state("load")
    visitor.check("quarantine-sample")
    sample = page.locator("table.sample tbody tr")
    assert sample.count() == min(dict(quarantined)[first], 50)
    for line in sample.all():
        assert cells(line)[0] in ("sample.csv", "sample-head.csv") and first in cells(line)[2]

    # Data: every chart drew its data.
    page = visitor.visit(f"{ui_server}/data", "data")
    assert page.locator("#total-facts").inner_text() == shown(facts)
    assert visitor.marks("#chart-days svg.chart") == days
    assert visitor.marks("#chart-prices svg.chart") >= 10
    assert visitor.marks("#chart-makes svg.chart") == min(15, makes)
    assert visitor.marks("#chart-funnel svg.chart") == 4

    # The report: the same page in one file that loads nothing from anywhere.
    out = tmp_path / "report.html"
    assert ui_cli("report", run_id, "--out", str(out), check=True).stdout.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and '<link rel="stylesheet"' not in html
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", html), "the report refers to nothing outside"
    report = visitor.page
    fetched: list[str] = []

    def offline(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        fetched.append(route.request.url)
        return route.abort()

    report.route("**/*", offline)
    report.goto(out.as_uri())
    assert not fetched, f"the report fetched {fetched}"
    visitor.check("report")
    assert summary(report) == expected
    assert_checks_as_in_ledger(report, status)
    assert visitor.marks("#timeline svg.chart") == len(status["stages"])
    report.locator("#quarantine tbody tr a").first.click()
    assert report.locator("table.sample tbody tr").count() >= 1, "the report holds the sample itself"
    report.unroute("**/*")


@pytest.mark.timeout(240)
def test_a_failed_run_names_its_failing_check(workers, engine, data_dir, ui_server, visitor):
    """5 of 100 lines quarantined (a state that does not exist) fail the blocking quarantine_rate check."""
    source = data_dir / "too_many_bad_states.csv"
    source.write_text(
        HEADER_LINE + "\n" + "\n".join([GOOD] * 95 + [with_field(GOOD, STATE, "zz")] * 5) + "\n"
    )
    workers.start_all()
    run_id = start_run(source)
    status = wait_for_run(run_id, timeout=180)
    assert status["status"] == "failed", status

    page = visitor.visit(f"{ui_server}/runs", "runs-all")
    page.select_option("#status", "failed")
    page.locator("form.filter button").click()
    page.wait_for_load_state("load")
    visitor.check("runs-failed")
    assert page.url.endswith("/runs?status=failed")
    listed = [r.get_attribute("data-run-id") for r in page.locator("#runs tbody tr").all()]
    assert listed == [run_id]
    assert "transform" in page.locator(f'#runs tr[data-run-id="{run_id}"]').inner_text()
    page = visitor.visit(f"{ui_server}/runs?status=succeeded", "runs-succeeded")
    assert page.locator(f'#runs tr[data-run-id="{run_id}"]').count() == 0

    page = visitor.visit(f"{ui_server}/runs/{run_id}", "run-failed")
    assert page.locator("#run-status").inner_text() == "failed"
    error = page.locator("#run-error").inner_text()
    assert "transform failed" in error
    assert "quality check quarantine_rate failed: observed 0.05, threshold 0.01" in error
    failing = page.locator('#quality tr[data-check="quarantine_rate"]')
    assert failing.get_attribute("data-result") == "fail"
    assert cells(failing)[1:4] == ["fail", "0.05", "0.01"]
    assert_jobs_as_in_ledger(page, status)
    assert_checks_as_in_ledger(page, status)
    publish_status = page.locator('#jobs tr[data-stage="transform"][data-task="publish"] .status')
    assert publish_status.inner_text() == "failed"
    assert visitor.marks("#timeline svg.chart") == len(status["stages"])


@pytest.mark.timeout(240)
def test_a_hostile_file_name_and_seller_render_as_text(workers, engine, data_dir, ui_server, visitor):
    hostile_seller = with_field(GOOD, SELLER, HOSTILE)
    lines = [GOOD] * 300 + [
        hostile_seller,
        with_field(hostile_seller, STATE, "zz"),
        hostile_seller + ",extra",
    ]
    source = data_dir / HOSTILE_FILE
    source.write_text(HEADER_LINE + "\n" + "\n".join(lines) + "\n")
    workers.start_all()
    run_id = start_run(source)
    status = wait_for_run(run_id, timeout=180)
    assert status["status"] == "succeeded", status

    page = visitor.visit(f"{ui_server}/runs/{run_id}", "run-hostile")
    jobs = page.locator("#jobs").inner_text()
    assert HOSTILE_FILE in jobs, "the file name is shown as the text it is"
    assert HOSTILE_FILE in page.locator("#files").inner_text()
    assert HOSTILE_FILE in page.locator("#timeline").inner_text()

    page.locator("#rejects tbody tr a").first.click()
    page.wait_for_load_state("load")
    visitor.check("rejected-hostile")
    rejected = page.locator("table.sample tbody tr")
    assert rejected.count() == 1
    assert HOSTILE in rejected.inner_text() and HOSTILE_FILE in rejected.inner_text()
    assert cells(rejected)[1] == "304", "the line number in the file (header is line 1)"

    page = visitor.visit(f"{ui_server}/runs/{run_id}", "run-hostile-again")
    page.locator("#quarantine tbody tr a").first.click()
    page.wait_for_load_state("load")
    visitor.check("quarantined-hostile")
    assert HOSTILE.lower() in page.locator("table.sample").inner_text().lower()

    for url in (f"/runs/{run_id}", "/runs"):
        page = visitor.visit(ui_server + url, "dom" + url.replace("/", "-"))
        assert page.locator("script, img, iframe, object").count() == 0, "no markup came from the data"

    out = visitor.shots.parent / "hostile-report.html"
    ui_cli("report", run_id, "--out", str(out), check=True)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_jobs_of_any_kind_show_up_as_the_ledger_records_them(clean_db, ui_server, visitor):
    """A transform fanned out into chunk jobs and a publish (as the ledger records them through its
    public functions): every row is a job on the page and a bar on the timeline, chunks that ran at
    once overlap, and the run's counts come from its last transform job, the publish."""
    engine, run_id = clean_db, str(uuid.uuid4())
    chunks = [f"chunk-{n}" for n in range(1, 4)]
    plan = [ledger.PlannedJob("setup", "", "j-setup"), ledger.PlannedJob("ingest", "/data/a.csv", "j-a")]
    plan += [ledger.PlannedJob("transform", c, f"j-{c}") for c in chunks]
    plan.append(ledger.PlannedJob("transform", "publish", "j-publish"))
    with engine.begin() as conn:
        ledger.create_run(conn, run_id, ["/data/a.csv"], plan)

    def run(job, worker, rows, retried=False):
        with engine.begin() as conn:
            ledger.start_stage(conn, run_id, job.stage, job.task, job.job_id, worker)
            if retried:
                ledger.start_stage(conn, run_id, job.stage, job.task, job.job_id, worker)
        return lambda: finish(job, rows)

    def finish(job, rows):
        with engine.begin() as conn:
            ledger.finish_stage(conn, run_id, job.stage, job.task, *rows)

    run(plan[0], "setup-1", (0, 0, 0))()
    run(plan[1], "ingest-1", (300, 298, 2))()
    first, second = run(plan[2], "transform-1", (100, 99, 1)), run(plan[3], "transform-2", (100, 100, 0))
    page = visitor.visit(f"{ui_server}/runs/{run_id}", "run-chunked-running")
    assert page.locator("#run-status").inner_text() == "running"
    assert page.locator('meta[http-equiv="refresh"]').count() == 1, "a running run's page refreshes itself"
    assert page.locator("#timeline .mark.job-running").count() == 2, "running jobs are drawn up to now"
    first(), second()
    run(plan[4], "transform-1", (98, 98, 0), retried=True)()
    run(plan[5], "transform-2", (298, 297, 1))()
    status = status_of(engine, run_id)
    assert status["status"] == "succeeded"

    page = visitor.visit(f"{ui_server}/runs/{run_id}", "run-chunked")
    assert [r.get_attribute("data-task") for r in page.locator("#jobs tbody tr").all()] == [
        "", "/data/a.csv", *chunks, "publish"
    ]  # fmt: skip
    assert_jobs_as_in_ledger(page, status)
    assert summary(page) == ledger_counts(status)
    assert summary(page)["facts"] == "297" and summary(page)["quarantined"] == "1"
    assert visitor.marks("#timeline svg.chart") == 6
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    bars = page.locator("#timeline .mark").evaluate_all(
        "marks => marks.map(m => [m.x.baseVal.value, m.x.baseVal.value + m.width.baseVal.value])"
    )
    (start_1, end_1), (start_2, end_2) = bars[2], bars[3]
    assert start_2 < end_1 and start_1 < end_2, "the two chunks that ran at once overlap on the timeline"
    assert "transform chunk-3" in page.locator("#timeline").inner_text()
    assert cells(page.locator('#jobs tr[data-task="chunk-3"]'))[3] == "2", "the retried chunk's attempt"


def test_pages_of_an_empty_ledger_say_so(clean_db, ui_server, visitor):
    page = visitor.visit(f"{ui_server}/runs", "runs-empty")
    assert "No runs in the ledger yet" in page.locator("main").inner_text()
    page = visitor.visit(f"{ui_server}/data", "data-empty")
    assert page.locator("svg.chart").count() == 0
    assert page.locator("p.empty").count() == 4


def test_a_database_that_does_not_answer_gives_a_clear_page(tmp_path):
    secret = uuid.uuid4().hex
    env = {"UI_DATABASE_URL": f"postgresql://ui:{secret}@127.0.0.1:1/{TEST_DB}"}
    with serving(tmp_path / "ui.log", env, ready="/runs") as base:
        try:
            urllib.request.urlopen(f"{base}/runs", timeout=10)
            raise AssertionError("the page answered without its database")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            body = exc.read().decode()
    assert "Database unavailable" in body and "postgresql://ui:***@127.0.0.1:1/" in body
    assert secret not in body and secret not in (tmp_path / "ui.log").read_text()


def test_malformed_or_unknown_run_ids_and_filters_are_refused(ui_server):
    assert http_status(f"{ui_server}/runs/{uuid.uuid4()}") == 404
    for bad in ("not-a-run", "1%20OR%201=1", "%27%3B%20DROP%20TABLE%20meta.pipeline_runs%3B--"):
        assert http_status(f"{ui_server}/runs/{bad}") == 400, bad
        assert http_status(f"{ui_server}/runs/{bad}/rejects?reason=x") == 400, bad
    assert http_status(f"{ui_server}/runs?status=done%27--") == 400
    assert http_status(f"{ui_server}/runs?status=failed") == 200
    for path in ("/runs", "/static/ui.css", "/healthz"):
        with urllib.request.urlopen(ui_server + path, timeout=10) as answer:
            policy = answer.headers["Content-Security-Policy"]
            assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "default-src 'none'" in policy and "script-src" not in policy, path
    proc = ui_cli("report", "not-a-run", "--out", "/tmp/never.html")
    assert proc.returncode == 2 and "not a run id" in proc.stderr
    proc = ui_cli("report", str(uuid.uuid4()), "--out", "/tmp/never.html")
    assert proc.returncode == 2 and "no run" in proc.stderr


def test_the_ui_listens_on_localhost_by_default():
    from shared.config import load_settings

    cfg = load_settings({"DATABASE_URL": "postgresql://pipeline:pw@db:5432/carsales", "UI_DB_PASSWORD": "s3"})
    assert (cfg.ui_host, cfg.ui_port) == ("127.0.0.1", 8080)
    assert cfg.ui_database_url == "postgresql://ui:s3@db:5432/carsales"
    assert "s3" not in repr(cfg)


def test_the_ui_role_reads_the_ledger_and_staging_and_writes_nothing(test_database):
    conn = psycopg2.connect(UI_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for table in (
                "meta.pipeline_runs",
                "meta.stage_runs",
                "meta.quality_results",
                "meta.ingested_files",
                "staging.fact_car_sales",
                "staging.quarantined_sales",
                "staging.dim_make",
                "raw.rejected_lines",
            ):
                cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (constant names)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT 1 FROM raw.car_prices LIMIT 1")
            for statement in (
                "INSERT INTO meta.pipeline_runs (run_id, status) VALUES (gen_random_uuid(), 'queued')",
                "UPDATE meta.stage_runs SET status = 'failed'",
                "DELETE FROM staging.dim_make",
                "TRUNCATE meta.quality_results",
                "CREATE TABLE meta.mine (x int)",
                "CREATE TABLE public.mine (x int)",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
