"""The benchmark's targets (PASS / MISS / n/a) and the tables it prints.

`evaluate(runs)` takes the measured scales ({1: result, 10: result}, as bench.py builds them) and
returns one dict per target. The targets come from the benchmark issue and are checked on this
machine, with all compared figures measured side by side in the same invocation.
"""

MB = 1 << 20
INGEST_FLOOR_MAX_RATIO = 1.5  # our ingest at most 1.5x the unlogged \copy floor
TRANSFORM_FLOOR_MAX_RATIO = 2  # the transform with 1 worker at most 2x the transform floor
WHOLE_MIN_SPEEDUP = 20  # whole pipeline at least 20x faster than the naive baseline (issue 6)
WHOLE_MIN_SPEEDUP_ISSUE_15 = 12  # the same, as issue 15 set it for the transform in the workers
RSS_MAX_BYTES = 400 * MB  # peak RSS of any worker
RSS_MAX_GROWTH = 0.10  # peak RSS at 10x within 10% of 1x
LINEARITY_SLACK = 1.2  # transform at Nx may take at most 1.2 * N times as long as at 1x
SCALING_MIN_SPEEDUP = 1.5  # 2 ingest workers vs 1 on the file split into 4 parts
TRANSFORM_MIN_WORKER_CPU_SHARE = 0.5  # at least half of the transform's CPU in its workers
TRANSFORM_MAX_SERIAL_SHARE = 0.3  # the publish (serial) at most 30% of the transform's wall time
TRANSFORM_MIN_SPEEDUP = 1.0  # 2 transform workers no slower than 1


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _target(name: str, goal: str, measured: str | None, passed: bool | None, note: str = "") -> dict:
    status = "n/a" if passed is None else ("PASS" if passed else "MISS")
    return {"target": name, "goal": goal, "measured": measured or "-", "status": status, "note": note}


def worker_peak(result: dict) -> int | None:
    """Largest peak RSS of any worker at this scale, over the full runs and the scaling runs."""
    peaks = list(result["ours"]["peak_rss"].values()) + list(result["scaling"]["peak_rss"].values())
    peaks += list((result.get("transform_scaling") or {}).get("peak_rss", {}).values())
    peaks = [p for p in peaks if p]
    return max(peaks) if peaks else None


def ingest_vs_floor(base: dict) -> dict:
    ratio = _ratio(base["ours"]["seconds"]["ingest"], base["floor"]["unlogged_seconds"])
    durable = _ratio(base["ours"]["seconds"]["ingest"], base["floor"]["logged_seconds"])
    return _target(
        "ingest of the 1x file vs psql \\copy into an unlogged table",
        f"<= {INGEST_FLOOR_MAX_RATIO}x",
        f"{ratio:.2f}x" if ratio else None,
        ratio <= INGEST_FLOOR_MAX_RATIO if ratio else None,
        f"vs the durable (logged) floor: {durable:.2f}x" if durable else "",
    )


def one_worker_transform(base: dict) -> tuple[float | None, str]:
    """The transform's seconds with 1 transform worker, and where they come from: the measured runs
    (make bench), else the transform scaling's 1-worker runs (make bench WORKERS=2)."""
    if base["ours"].get("transform_workers", 1) == 1:
        return base["ours"]["seconds"]["transform"], "measured runs"
    return (base.get("transform_scaling") or {}).get("one_worker_seconds"), "transform scaling, 1 worker"


def transform_vs_floor(base: dict) -> dict:
    name = "transform of the 1x file with 1 worker vs the transform floor"
    goal = f"<= {TRANSFORM_FLOOR_MAX_RATIO}x"
    floor = base.get("transform_floor") or {"skipped": "not measured"}
    if "skipped" in floor:
        return _target(name, goal, None, None, floor["skipped"])
    seconds, source = one_worker_transform(base)
    ratio = _ratio(seconds, floor["seconds"])
    note = (
        f"transform {seconds} s ({source}) / floor {floor['seconds']} s "
        f"(read {floor['read_seconds']} s + write {floor['write_seconds']} s)"
    )
    return _target(
        name,
        goal,
        f"{ratio:.2f}x" if ratio else None,
        ratio <= TRANSFORM_FLOOR_MAX_RATIO if ratio else None,
        note,
    )


def whole_vs_naive(base: dict, minimum: int, issue: int) -> dict:
    ours, naive = base["ours"], base["naive"]
    goal = f">= {minimum}x (issue {issue})"
    name = "whole pipeline at 1x vs the naive pandas method (naive / ours)"
    if "skipped" in naive:
        return _target(name, goal, None, None, naive["skipped"])
    if not ours["transform_included"]:
        partial = _ratio(naive["ingest"]["seconds"], ours["seconds"]["ingest"])
        note = "transform stage not in the repository yet; ingest alone: " + (
            f"{partial:.1f}x" if partial else "-"
        )
        return _target(name, goal, None, None, note)
    if ours["seconds"]["whole"] is None:
        return _target(name, goal, "run failed", False, "; ".join(ours["errors"]))
    speedup = _ratio(naive["total_seconds"], ours["seconds"]["whole"])
    return _target(
        name, goal, f"{speedup:.1f}x" if speedup else None, speedup >= minimum if speedup else None
    )


def rss_limit(runs: dict) -> dict:
    peaks = {scale: worker_peak(result) for scale, result in runs.items()}
    measured = ", ".join(f"{scale}x: {peak / MB:.0f} MB" for scale, peak in peaks.items() if peak)
    known = [peak for peak in peaks.values() if peak]
    return _target(
        "peak RSS of any worker (worker + work horses)",
        f"< {RSS_MAX_BYTES // MB} MB",
        measured,
        max(known) < RSS_MAX_BYTES if known else None,
    )


def rss_flat(base: dict, big: dict | None) -> dict:
    name = "peak RSS per worker flat from 1x to the large scale"
    goal = f"within {RSS_MAX_GROWTH:.0%}"
    if big is None:
        return _target(name, goal, None, None, "needs the large scale: make bench SCALE=10")
    growth = {}
    for stage, peak in base["ours"]["peak_rss"].items():
        large = big["ours"]["peak_rss"].get(stage)
        if peak and large:
            growth[stage] = large / peak - 1
    if not growth:
        return _target(name, goal, None, None, "no worker peaks measured")
    measured = ", ".join(f"{stage} {change:+.1%}" for stage, change in growth.items())
    return _target(name, goal, measured, max(abs(g) for g in growth.values()) <= RSS_MAX_GROWTH)


def transform_linear(base: dict, big: dict | None) -> dict:
    name = "transform seconds grow linearly with rows"
    if big is None:
        return _target(name, "-", None, None, "needs the large scale: make bench SCALE=10")
    factor = big["scale"] / base["scale"]
    goal = f"<= {LINEARITY_SLACK * factor:.0f}x for {factor:.0f}x rows"
    small, large = base["ours"]["seconds"]["transform"], big["ours"]["seconds"]["transform"]
    if not (small and large):
        return _target(name, goal, None, None, "transform not measured at both scales")
    ratio = large / small
    measured = f"{small:.1f} s -> {large:.1f} s = {ratio:.1f}x"
    return _target(name, goal, measured, ratio <= LINEARITY_SLACK * factor)


def ingest_scaling(base: dict) -> dict:
    scaling = base["scaling"]
    speedup = scaling["speedup"]
    return _target(
        "ingest of the 1x file in 4 parts: 2 workers vs 1 worker",
        f">= {SCALING_MIN_SPEEDUP}x",
        f"{speedup:.2f}x" if speedup else None,
        speedup >= SCALING_MIN_SPEEDUP if speedup else None,
        f"{scaling['one_worker_seconds']} s -> {scaling['two_workers_seconds']} s",
    )


def transform_cpu_in_workers(base: dict) -> dict:
    cpu = (base["ours"].get("cpu_seconds") or {}).get("transform")
    name = "share of the transform's CPU seconds spent in its workers (vs PostgreSQL)"
    goal = f">= {TRANSFORM_MIN_WORKER_CPU_SHARE:.0%}"
    if not cpu or not (cpu["workers"] + cpu["postgres"]):
        return _target(name, goal, None, None, "not measured")
    share = cpu["workers"] / (cpu["workers"] + cpu["postgres"])
    note = f"workers {cpu['workers']:.2f} s, PostgreSQL backends {cpu['postgres']:.2f} s"
    return _target(name, goal, f"{share:.0%}", share >= TRANSFORM_MIN_WORKER_CPU_SHARE, note)


def transform_serial_share(base: dict) -> dict:
    split = base["ours"].get("transform_split") or {}
    name = "the transform's publish (its serial part) in its wall time"
    goal = f"<= {TRANSFORM_MAX_SERIAL_SHARE:.0%}"
    share = split.get("serial_share")
    if share is None:
        return _target(name, goal, None, None, "not measured")
    note = (
        f"plan {split['plan_seconds']} s, {split['chunks']} chunks {split['chunks_seconds']} s, "
        f"publish {split['publish_seconds']} s"
    )
    return _target(name, goal, f"{share:.0%}", share <= TRANSFORM_MAX_SERIAL_SHARE, note)


def transform_scaling(base: dict) -> dict:
    scaling = base.get("transform_scaling")
    name = "transform of the 1x file: 2 transform workers vs 1"
    goal = f">= {TRANSFORM_MIN_SPEEDUP:.1f}x"
    if not scaling:
        return _target(name, goal, None, None, "not measured")
    speedup = scaling["speedup"]
    return _target(
        name,
        goal,
        f"{speedup:.2f}x" if speedup else None,
        speedup >= TRANSFORM_MIN_SPEEDUP if speedup else None,
        f"{scaling['one_worker_seconds']} s -> {scaling['two_workers_seconds']} s",
    )


def evaluate(runs: dict[int, dict]) -> list[dict]:
    base = runs[1]
    big = runs[max(runs)] if max(runs) > 1 else None
    return [
        ingest_vs_floor(base),
        transform_vs_floor(base),
        whole_vs_naive(base, WHOLE_MIN_SPEEDUP, 6),
        whole_vs_naive(base, WHOLE_MIN_SPEEDUP_ISSUE_15, 15),
        rss_limit(runs),
        rss_flat(base, big),
        transform_linear(base, big),
        ingest_scaling(base),
        transform_cpu_in_workers(base),
        transform_serial_share(base),
        transform_scaling(base),
    ]


# --- printing --------------------------------------------------------------------------------------


def _seconds(value) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _rate(rows, seconds) -> str:
    return f"{rows / seconds:,.0f}" if rows and seconds else "-"


def _mb(value) -> str:
    return f"{value / MB:,.0f} MB" if value else "-"


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        # first column left-aligned, numbers right-aligned
        parts = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _row(label: str, seconds: float | None, rows: int | None = None, peak: int | None = None) -> tuple:
    """One line of the per-scale table: label, seconds, rows per second, peak RSS."""
    return (label, _seconds(seconds), _rate(rows, seconds), _mb(peak))


def scale_table(result: dict) -> list[str]:
    lines, floor, naive = result["lines"], result["floor"], result["naive"]
    ours, scaling = result["ours"], result["scaling"]
    seconds, peaks = ours["seconds"], ours["peak_rss"]
    rows = [
        _row("floor   psql \\copy, unlogged table", floor["unlogged_seconds"], lines),
        _row("floor   psql \\copy, logged table (durable)", floor["logged_seconds"], lines),
    ]
    transform_floor = result.get("transform_floor") or {"skipped": "not measured"}
    if "skipped" in transform_floor:
        rows.append(_row("floor   transform: not measured (see the targets' notes)", None))
    else:
        raw_lines, facts = transform_floor["raw_lines"], transform_floor["facts"]
        rows += [
            _row(
                "floor   transform: read raw (CREATE UNLOGGED TABLE AS)",
                transform_floor["read_seconds"],
                raw_lines,
            ),
            _row(
                "floor   transform: write facts (INSERT .. SELECT, logged)",
                transform_floor["write_seconds"],
                facts,
            ),
            _row("floor   transform: read + write", transform_floor["seconds"], raw_lines),
        ]
    if "skipped" in naive:
        rows.append(_row("naive   skipped (see note below)", None))
    else:
        ingest, transform = naive["ingest"], naive["transform"]
        rows += [
            _row("naive   ingest: read_csv + to_sql", ingest["seconds"], lines, ingest["peak_rss"]),
            _row(
                "naive   transform: read_sql_table .. to_sql",
                transform["seconds"],
                lines,
                transform["peak_rss"],
            ),
            _row("naive   whole", naive["total_seconds"], lines),
        ]
    if ours["transform_included"]:
        transform_label = "ours    transform (+ checks, publish)"
    else:
        transform_label = "ours    transform: not in the repository yet"
    rows += [
        _row("ours    setup", seconds["setup"], None, peaks.get("setup")),
        _row("ours    ingest", seconds["ingest"], ours["rows_loaded"], peaks.get("ingest")),
        _row(transform_label, seconds["transform"], ours["transform_rows_in"], peaks.get("transform")),
        _row(f"ours    whole: {ours['wall_covers']}", seconds["whole"], lines),
        _row(
            f"scaling {scaling['parts']} parts, 1 ingest worker",
            scaling["one_worker_seconds"],
            lines,
            scaling["peak_rss"].get("1 worker"),
        ),
        _row(
            f"scaling {scaling['parts']} parts, 2 ingest workers",
            scaling["two_workers_seconds"],
            lines,
            scaling["peak_rss"].get("2 workers"),
        ),
    ]
    transform_scaling = result.get("transform_scaling")
    if transform_scaling:
        rows += [
            _row(
                "scaling whole file, 1 transform worker (transform)",
                transform_scaling["one_worker_seconds"],
                lines,
                transform_scaling["peak_rss"].get("1 worker"),
            ),
            _row(
                "scaling whole file, 2 transform workers (transform)",
                transform_scaling["two_workers_seconds"],
                lines,
                transform_scaling["peak_rss"].get("2 workers"),
            ),
        ]
    sample = result["sample"]
    return [
        f"=== {result['scale']}x: {lines:,} lines, {sample['bytes'] / MB:,.1f} MB "
        f"(generated in {sample['seconds']:.1f} s); seconds: best of {result['repeats']} "
        f"(floor: of {len(result['floor']['samples']['unlogged'])}) ===",
        *_table(("step", "seconds", "rows/s", "peak RSS"), rows),
        "ratios: " + "; ".join(f"{name} {value}" for name, value in ratios(result).items()),
        *breakdown(ours),
    ]


def breakdown(ours: dict) -> list[str]:
    """Where the ingest and transform stages spend their time, from the jobs' own timings."""
    lines = []
    if ours["ingest_job_seconds"] and ours["seconds"]["ingest"]:
        rest = max(0.0, ours["seconds"]["ingest"] - ours["ingest_job_seconds"])
        lines.append(
            f"ingest job: hash + COPY {ours['ingest_job_seconds']:.2f} s, "
            f"rest of the job (fork, ledger; ANALYZE in versions before cc6ff39) {rest:.2f} s"
        )
    steps = list(ours.get("transform_steps", {}).items())
    if steps:
        top = ", ".join(f"{name} {seconds:.2f}" for name, seconds in steps[:6])
        lines.append(f"transform steps (s): {top}, other {sum(s for _, s in steps[6:]):.2f}")
    if ours.get("between_stages_seconds") is not None:
        lines.append(
            "fastest run's whole minus its stages (CLI start, queue hand-offs, --wait polling): "
            f"{ours['between_stages_seconds']:.2f} s"
        )
    cpu = ours.get("cpu_seconds")
    if cpu:
        lines.append(
            "CPU seconds (workers / PostgreSQL backends): "
            + "; ".join(f"{stage} {c['workers']:.2f} / {c['postgres']:.2f}" for stage, c in cpu.items())
        )
    split = ours.get("transform_split")
    if split:
        lines.append(
            f"transform with {ours.get('transform_workers', 1)} worker(s): plan {split['plan_seconds']} s, "
            f"{split['chunks']} chunk jobs {split['chunks_seconds']} s wall "
            f"({split['chunk_job_seconds']} s of jobs), publish {split['publish_seconds']} s "
            f"(serial share {split['serial_share']})"
        )
    if ours.get("wal_bytes"):
        lines.append(f"WAL written during the run (server-wide): {ours['wal_bytes'] / MB:,.0f} MB")
    return lines


def ratios(result: dict) -> dict[str, str]:
    floor, naive, ours, scaling = result["floor"], result["naive"], result["ours"], result["scaling"]
    found = {
        "ingest ours/floor": _ratio(ours["seconds"]["ingest"], floor["unlogged_seconds"]),
        "ingest ours/durable floor": _ratio(ours["seconds"]["ingest"], floor["logged_seconds"]),
        "2 vs 1 ingest workers": scaling["speedup"],
    }
    transform_floor = result.get("transform_floor") or {}
    if transform_floor.get("seconds"):
        workers = ours.get("transform_workers", 1)
        found[f"transform ours ({workers} worker{'s' if workers > 1 else ''})/floor"] = _ratio(
            ours["seconds"]["transform"], transform_floor["seconds"]
        )
    if "skipped" not in naive:
        found["ingest naive/ours"] = _ratio(naive["ingest"]["seconds"], ours["seconds"]["ingest"])
        if ours["transform_included"]:
            found["whole naive/ours"] = _ratio(naive["total_seconds"], ours["seconds"]["whole"])
    return {name: f"{value:.2f}x" if value else "-" for name, value in found.items()}


def targets_table(targets: list[dict]) -> list[str]:
    rows = [(t["target"], t["goal"], t["measured"], t["status"]) for t in targets]
    lines = ["=== targets ===", *_table(("target", "goal", "measured", "status"), rows)]
    lines += [f"  {t['status']:<4} {t['target']}: {t['note']}" for t in targets if t["note"]]
    return lines
