"""The pages as HTML: Jinja2 templates (templates/) over what data.py read.

Autoescaping is on for every template: a file name, seller or error message from the data is
text, never markup. The web app (app.py) and the report file (report.py) render the same run page;
the report is `standalone`: its stylesheet inline, its samples in the page, no links to a server.
"""

import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from services.ui import charts, data

HERE = Path(__file__).parent
# What a page may load: its own stylesheet, nothing else (no script at all, not even inline).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The report is a file: its one inline stylesheet is all it may use.
REPORT_CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def timestamp(value) -> str:
    """UTC, to the second: the ledger's times are timestamptz."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def clock(value) -> str:
    """UTC time of day to the millisecond: a job's start and end (the run page gives the date)."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def number(value) -> str:
    """A quality check's observed value or threshold: integers as integers, rates to 4 places."""
    if value is None:
        return "-"
    value = float(value)
    return f"{int(value):,}" if value.is_integer() else f"{value:.4g}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(count=charts.count, ts=timestamp, clock=clock, duration=duration, number=number)
    env.globals.update(statuses=data.RUN_STATUSES, fields=data.QUARANTINE_FIELDS)
    return env


@cache
def stylesheet() -> Markup:
    return Markup((HERE / "static" / "ui.css").read_text(encoding="utf-8"))


def render(template: str, standalone: bool = False, **context) -> str:
    return (
        environment()
        .get_template(template)
        .render(
            standalone=standalone,
            css=stylesheet() if standalone else None,
            csp=REPORT_CONTENT_SECURITY_POLICY,
            generated=timestamp(datetime.now(UTC)),
            **context,
        )
    )


def runs_page(runs: list[dict], status: str | None, counts: dict[str, int]) -> str:
    return render("runs.html", runs=runs, status=status, counts=counts)


def run_page(page: dict, samples: dict | None = None, standalone: bool = False) -> str:
    """The run page; `samples` (reason kind -> lines) are drawn inline, as the report does."""
    gantt = charts.gantt(page["jobs"], "Jobs of the run on its clock", datetime.now(UTC))
    return render("run.html", standalone=standalone, gantt=gantt, samples=samples or {}, **page)


def sample_page(run: dict, kind: str, reason: str, lines: list[dict]) -> str:
    return render("sample.html", run=run, kind=kind, reason=reason, lines=lines, limit=data.SAMPLE_LINES)


def _ratio_axis(found: dict) -> float:
    """Where the price/MMR bars start: a little below the lowest make (ratios sit near 1, and bars
    from 0 would all look the same)."""
    lowest = min((ratio for _, ratio, _ in found["makes"]), default=1.0)
    return max(0.0, math.floor((min(lowest, 1.0) - 0.05) * 10) / 10)


def data_page(found: dict) -> str:
    figures = {
        "days": charts.daily(found["days"], "Sales per day", "sales"),
        "prices": charts.columns(found["prices"], "Selling price distribution", "sales", every=2),
        "makes": charts.rows(
            found["makes"], "Selling price / MMR by make", reference=1.0, low=_ratio_axis(found)
        ),
        "funnel": charts.funnel(found["funnel"], "Lines to facts, latest runs"),
    }
    return render("data.html", figures=figures, totals=found["totals"], funnel=found["funnel"])
