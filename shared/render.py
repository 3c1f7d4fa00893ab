"""What `pipeline` prints: ledger rows as text tables or JSON. No queue or database access here;
shared/cli.py reads the ledger and hands the rows over."""

import json
from datetime import UTC

import click


def label(stage: dict) -> str:
    """A stage as people read it: `ingest part-1.csv`, not the task's full path."""
    task = stage["task"].rsplit("/", 1)[-1]
    return f"{stage['stage']} {task}".strip()


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and len(value) >= 19 and value[10] == "T":
        return value[11:19]  # an ISO timestamp of today's run: the time says enough
    return str(value)


def table(header, rows) -> None:
    cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def as_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def status(run: dict, json_output: bool) -> None:
    """One run: its headline, its stages and its quality checks."""
    if json_output:
        as_json(run)
        return
    click.echo(
        f"run {run['run_id']}  {run['status'].upper()}  ({run['kind']}, created {run['created_at'][:19]})"
    )
    if run["error"]:
        click.echo(f"error: {run['error']}")
    header = ("stage", "status", "try", "rows_in", "rows_out", "rejected", "started", "finished", "error")
    rows = [
        (
            label(s),
            s["status"],
            s["attempt"],
            s["rows_in"],
            s["rows_out"],
            s["rows_rejected"],
            s["started_at"],
            s["finished_at"],
            (s["error"] or "")[:70],
        )
        for s in run["stages"]
    ]
    table(header, rows)
    if run["quality"]:
        click.echo("quality checks:")
        table(
            ("check", "status", "observed", "threshold", "blocking"),
            [(q["check"], q["status"], q["observed"], q["threshold"], q["blocking"]) for q in run["quality"]],
        )


def runs(rows: list[dict], json_output: bool) -> None:
    """Recent runs, one line each."""
    if json_output:
        as_json(rows)
        return
    table(
        ("run_id", "kind", "status", "created", "files", "ingested", "published", "error"),
        [
            (
                r["run_id"],
                r["kind"],
                r["status"],
                str(r["created_at"])[:19],
                r["n_sources"],
                r["rows_ingested"],
                r["rows_published"],
                (r["error"] or "")[:60],
            )
            for r in rows
        ],
    )


class Progress:
    """The `--wait` display: one line each time a stage changes status."""

    def __init__(self) -> None:
        self._seen: dict[tuple, str] = {}

    def show(self, run: dict) -> None:
        for stage in run["stages"]:
            key = (stage["stage"], stage["task"])
            if self._seen.get(key) != stage["status"]:
                self._seen[key] = stage["status"]
                click.echo(f"  {label(stage):<40} {stage['status']}")


def schedule(shown: dict, now, json_output: bool) -> None:
    """`pipeline schedule`: the cron string, landing directory, next slot, schedulers, last runs."""
    if json_output:
        click.echo(json.dumps(shown, indent=2, default=str))
        return
    next_slot = shown["next_slot"]
    click.echo(f"schedule     {shown['schedule']} (UTC), SCHEDULE_CRON")
    click.echo(
        f"landing dir  {shown['landing_files']}"
        if isinstance(shown["landing_files"], str)
        else f"landing dir  {shown['landing_dir']} ({shown['landing_files']} file(s))"
    )
    click.echo(f"next slot    {next_slot:%Y-%m-%d %H:%M} UTC (in {_duration(next_slot - now)})")
    if isinstance(shown["schedulers"], str):
        click.echo(f"schedulers   {shown['schedulers']}")
    elif not shown["schedulers"]:
        click.echo("schedulers   none running: no slot will start a run (start the scheduler service)")
    else:
        for s in shown["schedulers"]:
            seen = f"{_duration(now - s['last_heartbeat'])} ago" if s["last_heartbeat"] else "never"
            click.echo(f"schedulers   {s['name']} (last seen {seen})")
        if len(shown["schedulers"]) > 1:
            click.echo("warning: more than one scheduler runs; run exactly one (rq cron has no leader lock)")
    click.echo("last scheduled runs:")
    table(
        ("slot", "run_id", "status", "files", "loaded", "skipped", "sales", "outcome"),
        [
            (
                f"{r['slot'].astimezone(UTC):%Y-%m-%d %H:%M}",
                r["run_id"],
                r["status"],
                r["files"],
                r["loaded"],
                r["skipped"],
                r["sales_published"],
                (r["error"] or "")[:60]
                if r["status"] == "failed"
                else ("no new files" if r["status"] == "succeeded" and not r["loaded"] else ""),
            )
            for r in shown["runs"]
        ],
    )


def _duration(delta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {int(delta.total_seconds()) % 60:02d}s"
