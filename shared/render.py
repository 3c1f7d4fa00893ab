"""What `pipeline` prints: ledger rows as text tables or JSON. No queue or database access here;
shared/cli.py reads the ledger and hands the rows over."""

import json

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
