"""The container stack started for real, as a user runs it (`make e2e`, through .ci/e2e.sh).

One scenario, in order, on the compose project `carsales-e2e` (its own containers and volumes):
up --build, the bootstrap's sample run succeeds; one scheduler runs; the web UI (profile ops)
shows the run; scale out; a generated 50k-line file run with
`--wait --json` gives the generator's counts; each worker service logs JSON lines with its name
and the run id; an ingest container killed mid-COPY of a larger file still ends in exact counts
(restart policy, sweeper, `pipeline retry`); down then up keeps every run and row; down -v
removes it all.

Needs a Docker engine and Compose (v2 `docker compose`, else v1 `docker-compose`); .ci/e2e.sh
provides both and the base images, and publishes the stack on ports of its own
(POSTGRES_PORT, REDIS_PORT) so a PostgreSQL or Redis on the host is left alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from dotenv import dotenv_values

from tests.polling import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "carsales-e2e"
WORKER_SERVICES = ("setup", "ingest", "transform")
SMALL_ROWS, SMALL_SEED = 50_000, 7
BIG_ROWS, BIG_SEED = 600_000, 11  # COPY runs for seconds: long enough to be hit mid-way


@functools.cache
def compose_cmd() -> list[str]:
    """Compose v2 where present, else v1 (E2E_COMPOSE overrides). Looked up when the test runs, so
    collecting the suite without Docker (`make test` deselects this module) does not fail."""
    if os.environ.get("E2E_COMPOSE"):
        return shlex.split(os.environ["E2E_COMPOSE"])
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (.ci/e2e.sh installs them)")


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} e2e: {message}", file=sys.stderr, flush=True)


def compose(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    """`docker compose -p carsales-e2e ARGS` in the repository root, as a user types it there."""
    cmd = [*compose_cmd(), "-p", PROJECT, *args]
    log("$ " + " ".join(cmd))
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def cli(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    return compose("run", "--rm", "cli", "pipeline", *args, timeout=timeout, check=check)


def cli_json(*args: str, timeout: float = 900):
    out = cli(*args, "--json", timeout=timeout).stdout
    return json.loads(out[out.index(next(c for c in out if c in "[{")) :])


class Stack:
    """The settings compose uses (.env, overridden by the environment) and a connection to its
    PostgreSQL on the published port."""

    def __init__(self) -> None:
        env = {**dotenv_values(ROOT / ".env"), **os.environ}
        self.dsn = (
            f"host=127.0.0.1 port={env.get('POSTGRES_PORT', '5432')} "
            f"dbname={env.get('POSTGRES_DB', 'carsales')} user={env.get('POSTGRES_USER', 'postgres')} "
            f"password={env['POSTGRES_PASSWORD']}"
        )

    def query(self, sql: str, *params):
        conn = psycopg2.connect(self.dsn, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return cur.fetchall()
        finally:
            conn.close()

    def run_status(self, run_id: str) -> str | None:
        rows = self.query("SELECT status FROM meta.pipeline_runs WHERE run_id = %s", run_id)
        return rows[0][0] if rows else None

    def wait_run(self, run_id: str, until: tuple[str, ...], timeout: float) -> str:
        return wait_until(
            lambda: (s := self.run_status(run_id)) in until and s, timeout, f"run {run_id} {until}"
        )

    def file_counts(self, sha256: str) -> tuple[int, int, int, int]:
        """(raw rows, raw batches, facts, quarantined) of one file's content."""
        raw, batches = self.query(
            "SELECT count(*), count(DISTINCT _batch_id) FROM raw.car_prices_lineage "
            "WHERE _source_sha256 = %s",
            sha256,
        )[0]
        facts = self.query("SELECT count(*) FROM staging.fact_car_sales WHERE source_sha256 = %s", sha256)[0][
            0
        ]
        quarantined = self.query(
            "SELECT count(*) FROM staging.quarantined_sales WHERE source_sha256 = %s", sha256
        )[0][0]
        return raw, batches, facts, quarantined

    def totals(self) -> dict:
        runs = self.query("SELECT run_id::text, status FROM meta.pipeline_runs ORDER BY created_at")
        counts = {
            table: self.query(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 (fixed table names)
            for table in (
                "raw.car_prices",
                "raw.rejected_lines",
                "staging.fact_car_sales",
                "staging.quarantined_sales",
            )
        }
        return {"runs": runs, **counts}


def generate(directory: Path, name: str, rows: int, seed: int) -> tuple[Path, dict, str]:
    """A data file written by the project's own generator, its counts, and its SHA-256."""
    path = directory / name
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "pipeline"),
            "sample",
            "--rows",
            str(rows),
            "--seed",
            str(seed),
            "--out",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    counts = json.loads(proc.stdout)
    path.chmod(0o644)  # the workers run as UID 10001
    return path, counts, hashlib.sha256(path.read_bytes()).hexdigest()


def _http(url: str) -> str | None:
    """The page's text, or None while the server does not answer yet."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def stage(status: dict, name: str, task: str = "") -> dict:
    (found,) = [s for s in status["stages"] if s["stage"] == name and (s["task"] == task or name == "ingest")]
    return found


def quarantined(counts: dict) -> int:
    """Lines the transform must quarantine: no price and date, no market estimate, no VIN (the
    generator puts each on lines of their own)."""
    return counts["saledate_blank"] + counts["mmr_blank"] + counts["vin_blank"]


def assert_exact(status: dict, counts: dict, attempt: int = 1) -> None:
    """The run's ingest and transform counts are the generator's: every line lands in raw, and the
    publish job counts every line once, as a sale or as quarantined."""
    rows, held = counts["rows"], quarantined(counts)
    assert status["status"] == "succeeded", status
    ingest, publish = stage(status, "ingest"), stage(status, "transform", "publish")
    assert (ingest["rows_in"], ingest["rows_out"], ingest["rows_rejected"]) == (rows, rows, 0), ingest
    assert ingest["attempt"] == attempt, ingest
    assert (publish["rows_in"], publish["rows_out"], publish["rows_rejected"]) == (
        rows,
        rows - held,
        held,
    ), publish
    chunks = [s for s in status["stages"] if s["stage"] == "transform" and s["task"].startswith("chunk ")]
    assert chunks and sum(s["rows_in"] for s in chunks) == rows, chunks
    expected_repairs = counts.get("vw_split_trim", 0) + counts.get("vw_shifted", 0)
    assert publish["details"]["repaired_lines"] == expected_repairs, publish["details"]


def inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", template, container], capture_output=True, text=True, check=True
    ).stdout.strip()


def containers(service: str) -> list[str]:
    return compose("ps", "-q", service).stdout.split()


def running(service: str) -> list[str]:
    ids = containers(service)
    if not ids:
        return []
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}} {{.State.Running}}", *ids], capture_output=True, text=True
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.endswith(" true")]


@pytest.fixture(scope="module")
def data_files():
    """Generated files in a temporary folder inside ./data (mounted at /data); removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="e2e-", dir=ROOT / "data"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def stack():
    compose(
        "--profile", "ops", "down", "-v", "--remove-orphans", check=False
    )  # what an interrupted earlier run left
    try:
        yield Stack()
    finally:
        compose("--profile", "ops", "down", "-v", "--remove-orphans", check=False, timeout=300)


@pytest.mark.timeout(1800)
def test_the_stack_as_a_user_runs_it(stack: Stack, data_files: Path) -> None:
    timings = {}
    began = time.monotonic()

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - began, 1)

    small, small_counts, small_sha = generate(data_files, "sales-50k.csv", SMALL_ROWS, SMALL_SEED)
    big, big_counts, big_sha = generate(data_files, "sales-600k.csv", BIG_ROWS, BIG_SEED)
    lap("generated")

    # --- up --build; the bootstrap's run on the bundled sample succeeds --------------------------
    compose("up", "-d", "--build")
    lap("up --build")
    exit_code = wait_until(
        lambda: (
            (
                out := subprocess.run(
                    [
                        "docker",
                        "inspect",
                        "--format",
                        "{{.State.Status}} {{.State.ExitCode}}",
                        *containers("bootstrap"),
                    ],
                    capture_output=True,
                    text=True,
                ).stdout.split()
            )[:1]
            == ["exited"]
            and out[1]
        ),
        300,
        "bootstrap to exit",
    )
    assert exit_code == "0", compose("logs", "--no-color", "bootstrap").stdout[-3000:]
    sample_run = wait_until(
        lambda: stack.query(
            "SELECT run_id::text FROM meta.pipeline_runs WHERE sources = '[\"/data/sample.csv\"]'::jsonb "
            "ORDER BY created_at DESC LIMIT 1"
        ),
        60,
        "the bootstrap's sample run in the ledger",
    )[0][0]
    assert stack.wait_run(sample_run, ("succeeded", "failed", "cancelled"), 300) == "succeeded"
    assert sample_run in cli("runs").stdout
    lap("sample run succeeded")

    # --- the daily batch's scheduler runs, exactly one ------------------------------------------
    assert len(running("scheduler")) == 1
    schedule = wait_until(
        lambda: (shown := cli_json("schedule"))["schedulers"] and shown, 120, "the scheduler to register"
    )
    assert isinstance(schedule["schedulers"], list) and len(schedule["schedulers"]) == 1, schedule
    assert schedule["landing_dir"] == "/data/landing", schedule

    # --- the web UI (profile ops) shows the sample run ------------------------------------------
    compose("--profile", "ops", "up", "-d", "ui")
    ui_port = os.environ.get("UI_PORT", "8080")
    page = wait_until(lambda: _http(f"http://127.0.0.1:{ui_port}/runs"), 120, "the UI to answer")
    assert sample_run in page, page[:2000]
    assert sample_run in _http(f"http://127.0.0.1:{ui_port}/runs/{sample_run}")
    lap("scheduler and ui")

    # --- scale out -------------------------------------------------------------------------------
    compose("up", "-d", "--scale", "ingest=3", "--scale", "transform=2")
    wait_until(
        lambda: len(running("ingest")) == 3 and len(running("transform")) == 2, 120, "3 ingest, 2 transform"
    )
    lap("scaled")

    # --- a 50k-line file, waited for: the generator's counts ------------------------------------
    status = cli_json("run", "--source", f"/data/{data_files.name}/{small.name}", "--wait")
    assert_exact(status, small_counts)
    run_id = status["run_id"]
    raw, batches, facts, held = stack.file_counts(small_sha)
    assert (raw, batches) == (small_counts["rows"], 1)
    assert (facts, held) == (small_counts["rows"] - quarantined(small_counts), quarantined(small_counts))
    lap("50k run")

    # --- each worker service's logs: JSON lines with its name, and the run's id ------------------
    for service in WORKER_SERVICES:
        lines = [
            line
            for line in compose("logs", "--no-color", "--no-log-prefix", service).stdout.splitlines()
            if line.strip() and not line.startswith("Attaching to ")  # Compose v1's own first line
        ]
        assert lines, f"{service} logged nothing"
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"{service} logged a line that is not JSON: {line!r}") from None
        assert {r.get("service") for r in records} == {service}, (
            f"{service}: {set(r.get('service') for r in records)}"
        )
        assert any(r.get("run_id") == run_id for r in records), (
            f"{service} logged nothing with run_id {run_id}"
        )

    # --- an ingest container killed mid-COPY; the run still ends with exact counts ---------------
    queued = cli_json("run", "--source", f"/data/{data_files.name}/{big.name}")
    big_run = queued["run_id"]
    copying = wait_until(
        lambda: stack.query(
            "SELECT host(client_addr) FROM pg_stat_activity WHERE state = 'active' "
            'AND query LIKE \'COPY "raw"."car_prices_b%\''
        ),
        180,
        "the COPY of the big file to start",
        interval=0.1,
    )[0][0]
    addresses = {}
    for cid in running("ingest"):
        out = subprocess.run(
            [
                "docker",
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                cid,
            ],
            capture_output=True,
            text=True,
        ).stdout
        for address in out.split():
            addresses[address] = cid
    victim = addresses[copying]
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    log(f"killed ingest container {victim[:12]} mid-COPY")
    lap("killed")
    # `docker kill` is a manual stop to Docker: the restart policy leaves the container down, and the
    # other replicas carry on. The job died with its worker: either RQ's registry cleanup re-runs it
    # on another replica (it has retries left), or the sweeper, finding it abandoned first, fails the
    # run and `pipeline retry` resumes it. Either way nothing of the killed COPY stays and the file
    # is loaded exactly once, by a second attempt.
    wait_until(lambda: victim not in running("ingest"), 30, "the killed container to stop")
    final = stack.wait_run(big_run, ("succeeded", "failed", "cancelled"), 300)
    log(f"the killed run ended {final} on its own")
    if final == "failed":
        failed = cli_json("status", big_run)
        assert "abandoned" in (failed["error"] or ""), failed
        assert stack.file_counts(big_sha)[:2] == (0, 0), "nothing of the killed COPY is visible"
        cli("retry", big_run)
        assert stack.wait_run(big_run, ("succeeded", "failed", "cancelled"), 600) == "succeeded"
    status = cli_json("status", big_run)
    assert_exact(status, big_counts, attempt=2)
    raw, batches, facts, held = stack.file_counts(big_sha)
    assert (raw, batches) == (big_counts["rows"], 1)
    assert (facts, held) == (big_counts["rows"] - quarantined(big_counts), quarantined(big_counts))
    lap("retried run exact")

    # The killed replica comes back with `up --scale`; a worker that crashes (its process killed,
    # not the container stopped) is brought back by the restart policy.
    compose("up", "-d", "--scale", "ingest=3", "--scale", "transform=2")
    wait_until(lambda: len(running("ingest")) == 3, 120, "3 ingest containers again")
    crashed = running("ingest")[0]
    restarts = int(inspect(crashed, "{{.RestartCount}}"))
    subprocess.run(["docker", "exec", crashed, "sh", "-c", "kill -KILL -1"], capture_output=True)
    wait_until(
        lambda: int(inspect(crashed, "{{.RestartCount}}")) > restarts and crashed in running("ingest"),
        120,
        "the restart policy to restart the crashed worker",
    )
    lap("restart policy")

    # --- down, then up: every run and row is still there -----------------------------------------
    before = stack.totals()
    compose("--profile", "ops", "down")
    assert not containers("ingest")
    compose("up", "-d")
    wait_until(lambda: len(running("setup")) == 1, 300, "the workers after up")
    # The bootstrap enqueued the sample again (a no-op run): let it finish, then compare.
    wait_until(
        lambda: (
            not stack.query(
                "SELECT 1 FROM meta.pipeline_runs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
            )
        ),
        300,
        "the bootstrap's new run to finish",
    )
    after = stack.totals()
    assert after["runs"][: len(before["runs"])] == before["runs"]
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    lap("down/up kept everything")

    # --- down -v removes containers, network and volumes -----------------------------------------
    compose("--profile", "ops", "down", "-v")
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert (leftovers, volumes) == ([], [])
    lap("down -v")
    log(f"timings (s since start): {json.dumps(timings)}")
