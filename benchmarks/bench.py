"""`make bench [SCALE=10]`: how fast and how lean the pipeline is, measured side by side with
PostgreSQL's own loading speed and with the method of the project it replaces.

What it measures, in one invocation, on one scratch database (`carsales_bench`, dropped and
recreated; Redis db 14, flushed; files in benchmarks/scratch/):

0. sample: `pipeline sample` writes SCALE x 558,837 data lines (the size of the real data set).
1. floor: `psql \\copy` of that file into a table of 16 text columns: an UNLOGGED one (the
   database's raw loading speed) and a logged one (the "durable floor": what any crash-safe load
   pays for WAL, as our raw table must).
2. naive: benchmarks/naive.py, the original pandas scripts (read_csv + to_sql, then read_sql_table,
   title-case, merges, to_sql), one subprocess per phase so each phase's peak RSS is its own.
3. ours: `pipeline run --source FILE --wait --json` through the real queue with real
   `pipeline worker setup|ingest|transform` processes. Stage seconds are RQ's start and end of each
   job; peak RSS is the largest VmHWM in each worker's process tree (the work horses included).
   The transform stage is included as soon as services/transform/job.py exists.
   With --transform-workers N (`make bench WORKERS=N`), N transform workers share its chunk jobs.
   CPU seconds per stage: in the worker processes (their work horses included) and in the
   PostgreSQL backends serving them (harness.CpuMeter); the transform's wall time split into its
   plan, its chunk jobs (the parallel part) and its publish (the serial part).
4. transform floor: right after ours, on the run the last of them published,
   benchmarks/transform_floor.sql: one parallel read of the run's raw lines into an unlogged table,
   and the published facts written again into a logged copy of the fact table (INSERT ... SELECT);
   the floor is the two added up: what any transform of the run pays at the least.
5. scaling: the file cut into 4 parts, ingested with 1 and then with 2 ingest workers
   (a fresh database each time); the ingest stage's wall time is first job start to last job end.
   At 1x, also the whole file with 1 and then 2 transform workers (the transform's wall time).

Other engineers' processes share this machine, and noise only ever adds time, so every timed step
is repeated (--repeat: 3 at 1x and 1 at larger scales by default; the cheap floors at least 3 times)
and the best time is reported; peak RSS is the largest seen in any repeat. Each timed step starts
after a CHECKPOINT, so it does not pay for the previous step's dirty pages. The load of the machine
(load average, CPU pressure) is recorded at the start and the end.

At SCALE > 1 the 1x figures (needed for the linearity and flat-memory targets) come from
benchmarks/results/scale-1.json when it was measured with the same pipeline stages, otherwise 1x is
measured first. The naive baseline is skipped at SCALE > 1 when it took over 60 s at 1x (it would
take over 10 minutes) or would need over half the machine's RAM (it holds the whole file: 21 GB
at 10x).

Results: a table on stdout with each target's PASS/MISS, benchmarks/results/latest.json and
benchmarks/results/scale-<N>.json. Worker logs: benchmarks/scratch/logs/.
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import harness
import report

BASE_LINES = 558_837  # data lines of the real car_prices.csv
PARTS = 4  # the file is cut into this many parts for the scaling measurement
FLOOR_REPEATS = 3  # the floors are cheap and noisy, so they are always timed at least 3 times
NAIVE_SKIP_SECONDS = 60  # naive at 1x slower than this would take over 10 minutes at 10x
RESULTS = harness.ROOT / "benchmarks" / "results"


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --- the machine -----------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict:
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])  # MemTotal is the first line
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / (1 << 20), 1),
        "postgresql": harness.server_facts(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_at_start": load(),
    }


def load() -> dict:
    """How busy the machine is besides us: load average and CPU pressure (share of time some task
    waited for a CPU, over the last 10 and 60 s). Other engineers share this machine."""
    found = {"load_average": Path("/proc/loadavg").read_text().split()[:3]}
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        some = pressure.read_text().splitlines()[0].split()
        found["cpu_pressure"] = " ".join(some[1:3])  # "avg10=... avg60=..."
    return found


def git_head() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=harness.ROOT).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "changed_files": len(git("status", "--porcelain").splitlines()),
    }


# --- the measurements ------------------------------------------------------------------------------


def best(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return round(min(known), 3) if known else None


def measure_floor(path: Path, repeat: int) -> dict:
    log(f"floor: psql \\copy into an unlogged and a logged table, {repeat} time(s) each")
    path = harness.floor_file(path)
    harness.create_database()
    unlogged = [harness.time_floor_copy(path, logged=False) for _ in range(repeat)]
    logged = [harness.time_floor_copy(path, logged=True) for _ in range(repeat)]
    return {
        "unlogged_seconds": best(unlogged),
        "logged_seconds": best(logged),
        "samples": {"unlogged": [round(s, 3) for s in unlogged], "logged": [round(s, 3) for s in logged]},
    }


def measure_transform_floor(ours: dict, repeat: int) -> dict:
    """The transform floor on what the last measured run left in the database (measure_ours's runs
    end there; the next step drops the database): best read + best logged write."""
    if not ours["transform_included"]:
        return {"skipped": "no transform stage in the repository yet"}
    last = ours["runs"][-1]
    if last["status"] != "succeeded":
        return {"skipped": f"the last measured run failed ({last['error']}): nothing published to read"}
    log(f"transform floor: benchmarks/transform_floor.sql on run {last['run_id']}, {repeat} time(s) each")
    found = harness.time_transform_floor(repeat)
    read, write = best(found["samples"]["read"]), best(found["samples"]["write"])
    return {
        "read_seconds": read,
        "write_seconds": write,
        "seconds": round(read + write, 3),
        "raw_lines": found["raw_lines"],
        "facts": found["facts"],
        "fact_bytes": found["fact_bytes"],
        "samples": {step: [round(s, 3) for s in values] for step, values in found["samples"].items()},
    }


def measure_naive(path: Path, repeat: int) -> dict:
    """The naive method `repeat` times (ingest then transform, on a fresh database each time).

    Each phase reports its fastest run (with that run's own step timings) and its largest peak RSS."""
    runs = []
    for n in range(repeat):
        log(f"naive: run {n + 1}/{repeat}: pandas read_csv + to_sql, then the pandas transform (about 75 s)")
        harness.create_database()
        runs.append(
            {"ingest": harness.run_naive("ingest", str(path)), "transform": harness.run_naive("transform")}
        )
    result = {}
    for phase in ("ingest", "transform"):
        fastest = min((run[phase] for run in runs), key=lambda r: r["seconds"])
        result[phase] = {**fastest, "peak_rss": max(run[phase]["peak_rss"] for run in runs)}
    totals = [run["ingest"]["seconds"] + run["transform"]["seconds"] for run in runs]
    result["total_seconds"] = round(min(totals), 3)
    result["samples"] = [{phase: run[phase]["seconds"] for phase in ("ingest", "transform")} for run in runs]
    return result


def peaks_by_stage(runs: list[dict], stages=("setup", "ingest", "transform")) -> dict[str, int]:
    """Largest peak RSS per stage over runs whose workers are named `<stage>-<n>`."""
    peaks: dict[str, int] = {}
    for run in runs:
        for worker, peak in run["peak_rss"].items():
            stage = worker.rsplit("-", 1)[0]
            if stage in stages:
                peaks[stage] = max(peaks.get(stage, 0), peak)
    return peaks


def measure_ours(path: Path, scale: int, repeat: int, transform_workers: int = 1) -> dict:
    with_transform = harness.transform_available()
    stages = "setup, ingest, transform" if with_transform else "setup, ingest (no transform yet)"
    runs = []
    for n in range(repeat):
        log(
            f"ours: run {n + 1}/{repeat} through the queue with real workers: {stages} "
            f"({transform_workers} transform worker(s))"
        )
        run = harness.run_pipeline(f"ours-{scale}x-{n + 1}", [path], 1, with_transform, transform_workers)
        if run["status"] != "succeeded":
            log(f"ours: run {run['run_id']} FAILED: {run['error']}")
        runs.append(run)
    if not any(r["status"] == "succeeded" for r in runs):
        log("ours: no run succeeded; one more attempt (the failures stay listed under problems)")
        runs.append(
            harness.run_pipeline(f"ours-{scale}x-retry", [path], 1, with_transform, transform_workers)
        )
    # A stage's time counts when the ledger says its jobs succeeded, even if a later stage failed;
    # the whole run's time only when the run succeeded.
    ok = [r for r in runs if r["status"] == "succeeded"]
    seconds = {stage: best([r["seconds"][stage] for r in runs]) for stage in harness.STAGES}
    seconds["whole"] = best([r["wall_seconds"] for r in ok])
    ingest_details = [s["details"] for r in runs for s in r["ledger"] if s["stage"] == "ingest"]
    first = (ok or runs)[0]
    fastest = min(ok, key=lambda r: r["wall_seconds"]) if ok else None
    return {
        "transform_included": with_transform,
        "transform_workers": transform_workers,
        "status": "succeeded"
        if len(ok) == len(runs)
        else f"{len(runs) - len(ok)} of {len(runs)} runs failed",
        "errors": sorted({r["error"] for r in runs if r["error"]}),
        "rq_failed_jobs": sorted({f"{f['stage']}: {f['error']}" for r in runs for f in r["rq_failed_jobs"]}),
        "wall_covers": first["wall_covers"],
        "seconds": seconds,
        # hash + COPY as the ingest job times itself (its stage time adds fork, ledger and ANALYZE)
        "ingest_job_seconds": best([d.get("seconds") for d in ingest_details]),
        # the transform's own step timings, from its fastest run
        "transform_steps": transform_steps(fastest) if fastest and with_transform else {},
        "between_stages_seconds": between_stages(fastest) if fastest else None,
        # CPU seconds per stage (workers, PostgreSQL) and the transform's split, of the fastest run
        "cpu_seconds": fastest["cpu_seconds"] if fastest else None,
        "transform_split": fastest.get("transform_split") if fastest else None,
        "rows_loaded": first["rows_loaded"],
        "rows_rejected": first["rows_rejected"],
        "transform_rows_in": first["transform_rows_in"],
        "transform_rows_out": first["transform_rows_out"],
        "wal_bytes": min(r["wal_bytes"] for r in runs),  # server-wide, so the least is the closest
        "peak_rss": peaks_by_stage(runs),
        "runs": runs,
    }


def between_stages(run: dict) -> float | None:
    """A run's wall time not spent inside any job: CLI start, queue hand-offs, polling."""
    stage_seconds = [s for s in run["seconds"].values() if s is not None]
    return round(run["wall_seconds"] - sum(stage_seconds), 3)


def transform_steps(run: dict) -> dict[str, float]:
    """The transform jobs' seconds per step (their ledger details; the chunks' steps added up over
    the chunks, prefixed `chunks`), slowest first."""
    steps: dict[str, float] = {}
    for job in (s for s in run["ledger"] if s["stage"] == "transform"):
        prefix = "chunks " if job["task"].startswith("chunk ") else ""
        for name, seconds in ((job["details"] or {}).get("step_seconds") or {}).items():
            steps[prefix + name] = round(steps.get(prefix + name, 0.0) + seconds, 3)
    return dict(sorted(steps.items(), key=lambda item: -item[1]))


def measure_transform_scaling(path: Path, scale: int, repeat: int) -> dict:
    """The whole file with 1 and then 2 transform workers: the transform stage's wall time."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for n in range(repeat):
        for workers in (1, 2):
            log(f"transform scaling: {workers} transform worker(s), run {n + 1}/{repeat}")
            run = harness.run_pipeline(f"tscaling-{scale}x-{workers}w-{n + 1}", [path], 1, True, workers)
            if run["status"] != "succeeded":
                raise harness.BenchError(f"transform scaling run failed: {run['error']}")
            runs[workers].append(run)
    one = best([r["seconds"]["transform"] for r in runs[1]])
    two = best([r["seconds"]["transform"] for r in runs[2]])
    return {
        "one_worker_seconds": one,
        "two_workers_seconds": two,
        "speedup": round(one / two, 3) if one and two else None,
        "peak_rss": {
            "1 worker": peaks_by_stage(runs[1], ("transform",)).get("transform"),
            "2 workers": peaks_by_stage(runs[2], ("transform",)).get("transform"),
        },
        "runs": runs[1] + runs[2],
    }


def measure_scaling(path: Path, scale: int, repeat: int) -> dict:
    parts = harness.split_file(path, PARTS, harness.SCRATCH / f"parts-{scale}x")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for n in range(repeat):
        for workers in (1, 2):
            log(f"scaling: {PARTS} parts with {workers} ingest worker(s), run {n + 1}/{repeat}")
            run = harness.run_pipeline(f"scaling-{scale}x-{workers}w-{n + 1}", parts, workers, False)
            if run["status"] != "succeeded":
                raise harness.BenchError(f"scaling run failed: {run['error']}")
            runs[workers].append(run)
    one = best([r["seconds"]["ingest"] for r in runs[1]])
    two = best([r["seconds"]["ingest"] for r in runs[2]])
    return {
        "parts": PARTS,
        "one_worker_seconds": one,
        "two_workers_seconds": two,
        "speedup": round(one / two, 3) if one and two else None,
        "peak_rss": {
            "1 worker": peaks_by_stage(runs[1], ("ingest",)).get("ingest"),
            "2 workers": peaks_by_stage(runs[2], ("ingest",)).get("ingest"),
        },
        "runs": runs[1] + runs[2],
    }


def naive_decision(scale: int, naive_mode: str, base: dict | None) -> str | None:
    """None to run the naive baseline, else the reason it is skipped."""
    if naive_mode == "never":
        return "skipped: --naive never"
    if scale == 1 or naive_mode == "always" or base is None or "skipped" in base["naive"]:
        return None
    seconds = base["naive"]["total_seconds"]
    memory = base["naive"]["transform"]["peak_rss"] * scale
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # It holds the whole file in memory: more than half the RAM risks the OOM killer on the machine.
    if seconds > NAIVE_SKIP_SECONDS or memory > ram / 2:
        return (
            f"skipped at {scale}x: it took {seconds:.0f} s at 1x, so it would take about "
            f"{seconds * scale / 60:.0f} minutes here, and it holds the whole file in memory "
            f"({memory / (1 << 30):.0f} GB at {scale}x, of {ram / (1 << 30):.0f} GB)"
        )
    return None


def measure_scale(
    scale: int, repeat: int, naive_mode: str, base: dict | None = None, transform_workers: int = 1
) -> dict:
    """Everything at one scale: sample, floor, ours, transform floor, scaling, naive (last: it is
    the slowest)."""
    lines = BASE_LINES * scale
    path = harness.SCRATCH / f"car_prices_{scale}x.csv"
    log(f"=== {scale}x: generating {lines:,} lines into {path.relative_to(harness.ROOT)}")
    sample = harness.generate_sample(path, lines)
    result = {"scale": scale, "lines": lines, "repeats": repeat, "sample": sample}
    result["floor"] = measure_floor(path, max(repeat, FLOOR_REPEATS))
    result["ours"] = measure_ours(path, scale, repeat, transform_workers)
    result["transform_floor"] = measure_transform_floor(result["ours"], max(repeat, FLOOR_REPEATS))
    result["scaling"] = measure_scaling(path, scale, repeat)
    if scale == 1 and harness.transform_available():
        result["transform_scaling"] = measure_transform_scaling(path, scale, repeat)
    skip = naive_decision(scale, naive_mode, base)
    if skip:
        log(f"naive: {skip}")
    result["naive"] = {"skipped": skip} if skip else measure_naive(path, repeat)
    harness.drop_database()
    return result


# --- results ---------------------------------------------------------------------------------------


def _tag() -> str:
    """BENCH_TAG keeps a run against another server (BENCH_PG_PORT) apart: latest-<tag>.json."""
    return f"-{os.environ['BENCH_TAG']}" if os.environ.get("BENCH_TAG") else ""


def previous_base() -> dict | None:
    """The 1x figures of the last `make bench`, if they were measured with the same stages."""
    path = RESULTS / f"scale-1{_tag()}.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    base = document["runs"]["1"]
    if base["ours"]["transform_included"] != harness.transform_available():
        log("the last 1x results were measured with other stages: measuring 1x again")
        return None
    log(f"using the 1x figures of {path.relative_to(harness.ROOT)} ({document['date']})")
    return base


def write_results(document: dict, scale: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    scale_doc = {**document, "runs": {str(scale): document["runs"][str(scale)]}}
    tag = _tag()
    names = (f"scale-{scale}{tag}.json", f"latest{tag}.json")
    for name, content in zip(names, (scale_doc, document), strict=True):
        (RESULTS / name).write_text(json.dumps(content, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS.relative_to(harness.ROOT)}/{names[1]} and {names[0]}")


def problems(runs: dict[int, dict]) -> list[str]:
    """Failures seen while measuring, for the reader of the table (also in the JSON)."""
    found = []
    for scale, result in runs.items():
        ours = result["ours"]
        found += [f"{scale}x ours: {error}" for error in ours["errors"]]
        found += [
            f"{scale}x: RQ marked jobs failed although the ledger recorded success: {failure}"
            for failure in ours["rq_failed_jobs"]
        ]
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=1, help="multiple of 558,837 lines (default 1)")
    parser.add_argument("--repeat", type=int, help="timed repeats of each step (default 3 at 1x, 1 above)")
    parser.add_argument(
        "--naive",
        choices=("auto", "always", "never"),
        default="auto",
        help="above 1x, run the naive baseline only if it took under 60 s at 1x and fits in half the RAM",
    )
    parser.add_argument("--remeasure-1x", action="store_true", help="at SCALE > 1, measure 1x again")
    parser.add_argument(
        "--transform-workers", type=int, default=1, help="transform workers of the measured runs (default 1)"
    )
    args = parser.parse_args()
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through every `finally`, so workers are stopped


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/bench.py", *sys.argv[1:]]),
        "git": git_head(),
        "machine": machine(),
        "runs": {},
    }
    try:
        base = None
        if args.scale > 1:
            base = None if args.remeasure_1x else previous_base()
            if base is None:
                base = measure_scale(1, args.repeat or 3, args.naive, None, args.transform_workers)
            document["runs"]["1"] = base
        repeat = args.repeat or (3 if args.scale == 1 else 1)
        document["runs"][str(args.scale)] = measure_scale(
            args.scale, repeat, args.naive, base, args.transform_workers
        )
    except harness.BenchError as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        harness.flush_redis()
    runs = {int(scale): result for scale, result in document["runs"].items()}
    document["targets"] = report.evaluate(runs)
    document["problems"] = problems(runs)
    document["machine"]["load_at_end"] = load()
    document["bench_seconds"] = round(time.perf_counter() - started, 1)
    write_results(document, args.scale)
    print()
    for result in runs.values():
        print("\n".join(report.scale_table(result)), end="\n\n")
    for result in runs.values():
        if "skipped" in result["naive"] and result["scale"] > 1:
            print(f"note: naive {result['naive']['skipped']}")
    print("\n".join(report.targets_table(document["targets"])))
    for line in problems(runs):
        print(f"problem: {line}")
    m, pg = document["machine"], document["machine"]["postgresql"]
    print(
        f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, "
        f"PostgreSQL {pg['server_version']} (shared_buffers {pg['shared_buffers']}, "
        f"max_wal_size {pg['max_wal_size']}), Python {m['python']}"
    )
    print(f"bench took {document['bench_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
