"""Charts drawn on the server as inline SVG: no JavaScript, no charting library, nothing fetched.

Each function takes plain numbers and labels and returns the <svg> as Markup. Every label passes
through `escape` (file names, makes and sellers come from the data). Colours are CSS classes
(static/ui.css), never style attributes, so the pages' Content-Security-Policy needs no inline
styles. Every drawn data point is an element of class `mark` with a <title> (the browser's
tooltip): the browser tests count them.
"""

import math
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape

WIDTH = 760  # viewBox units; a chart scales to its box, so text keeps its size where it is drawn this wide
GANTT_WIDTH = 1200  # the timeline spans the page


def _num(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def count(value) -> str:
    """A count for people: 12,345."""
    return "-" if value is None else f"{int(value):,}"


def _nice_max(value: float) -> float:
    """The axis end: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    return next(f * step for f in (1, 2, 5, 10) if value <= f * step * (1 + 1e-9))


def _svg(height: int, label: str, body: list[str], kind: str, width: int = WIDTH) -> Markup:
    return Markup(
        f'<svg class="chart chart-{kind}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(cls: str, x: float, y: float, content: str, anchor: str | None = None) -> str:
    """A label; `content` is escaped here."""
    at = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}"{at}>{escape(content)}</text>'


def empty(message: str) -> Markup:
    return Markup(f'<p class="empty">{escape(message)}</p>')


def columns(points: list[tuple[str, float]], label: str, unit: str, every: int | None = None) -> Markup:
    """Vertical bars, one per point (a price bucket); x labels on every `every`-th bar."""
    if not points:
        return empty(f"{label}: no published sales yet")
    every = every or max(1, len(points) // 12)
    ticks = [(i, name) for i, (name, _) in enumerate(points) if i % every == 0]
    return _bars(
        [(i, name, value) for i, (name, value) in enumerate(points)], len(points), ticks, label, unit
    )


def daily(points: list[tuple[date, float]], label: str, unit: str) -> Markup:
    """Vertical bars on a calendar: a day without sales is a gap, not a missing bar."""
    if not points:
        return empty(f"{label}: no published sales yet")
    first = points[0][0]
    slots = (points[-1][0] - first).days + 1
    step = max(1, round(slots / 8))
    ticks = [(k, (first + timedelta(days=k)).isoformat()) for k in range(0, slots, step)]
    bars = [((day - first).days, day.isoformat(), value) for day, value in points]
    return _bars(bars, slots, ticks, label, unit)


def _bars(
    bars: list[tuple[int, str, float]], slots: int, ticks: list[tuple[int, str]], label: str, unit: str
) -> Markup:
    """Bars in `slots` equal slots along x: (slot, name, value) each; `ticks` label some slots."""
    height, left, right, top, bottom = 260, 56, 12, 12, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    top_value = _nice_max(max(v for _, _, v in bars))
    step = plot_w / slots
    body = _y_axis(left, top, plot_w, plot_h, top_value)
    for slot, name, value in bars:
        h = plot_h * value / top_value
        x = left + slot * step
        body.append(
            f'<rect class="mark" x="{_num(x + step * 0.1)}" y="{_num(top + plot_h - h)}" '
            f'width="{_num(max(step * 0.8, 0.8))}" height="{_num(max(h, 0.5))}">'
            f"<title>{escape(name)}: {count(value)} {escape(unit)}</title></rect>"
        )
    for slot, name in ticks:
        body.append(_text("tick", left + (slot + 0.5) * step, height - bottom + 16, name, "middle"))
    body.append(f'<text class="axis-label" x="{left}" y="{height - 6}">{escape(unit)} per bar</text>')
    return _svg(height, label, body, "columns")


def _y_axis(left: int, top: int, plot_w: float, plot_h: float, top_value: float) -> list[str]:
    body = []
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(
            f'<line class="grid" x1="{left}" x2="{_num(left + plot_w)}" y1="{_num(y)}" y2="{_num(y)}"/>'
        )
        body.append(
            f'<text class="tick" x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">{count(value)}</text>'
        )
    return body


def rows(
    points: list[tuple[str, float, str]],
    label: str,
    reference: float | None = None,
    low: float = 0.0,
) -> Markup:
    """Horizontal bars, one per (name, value, shown value); an optional reference line (1.0 for a
    price at exactly the market estimate). Bars start at `low`."""
    if not points:
        return empty(f"{label}: no published sales yet")
    bar, gap, left, right, top = 18, 6, 150, 90, 8
    height = top * 2 + len(points) * (bar + gap) + 20
    plot_w = WIDTH - left - right
    high = max([v for _, v, _ in points] + ([reference] if reference else []))
    high = high + (high - low) * 0.05
    scale = plot_w / (high - low) if high > low else 1.0
    body = []
    ref_x = left + (reference - low) * scale if reference is not None else left
    for i, (name, value, shown) in enumerate(points):
        y = top + i * (bar + gap)
        w = max((value - low) * scale, 1.0)
        body.append(_text("row-label", left - 8, y + bar - 5, name, "end"))
        body.append(
            f'<rect class="mark" x="{left}" y="{y}" width="{_num(w)}" height="{bar}">'
            f"<title>{escape(name)}: {escape(shown)}</title></rect>"
        )
        body.append(_text("value", max(left + w, ref_x) + 6, y + bar - 5, shown))
    bottom = top + len(points) * (bar + gap)
    body.append(_text("tick", left, bottom + 14, f"{low:g}", "middle"))
    if reference is not None:
        x = ref_x
        body.append(f'<line class="reference" x1="{_num(x)}" x2="{_num(x)}" y1="{top - 4}" y2="{bottom}"/>')
        body.append(
            f'<text class="tick" x="{_num(x)}" y="{bottom + 14}" text-anchor="middle">{reference:g}</text>'
        )
    return _svg(height, label, body, "rows")


def funnel(runs: list[dict], label: str) -> Markup:
    """Per run: lines read -> rows in raw -> sales published, and quarantined, as grouped bars on one
    scale (the small counts are written beside their bars)."""
    series = (
        ("lines", "lines read"),
        ("raw_rows", "rows in raw"),
        ("facts", "sales"),
        ("quarantined", "quarantined"),
    )
    if not runs:
        return empty(f"{label}: no run has loaded a file yet")
    bar, gap, group_gap, left, right, top = 12, 2, 14, 150, 90, 26
    group_h = len(series) * (bar + gap) + group_gap
    height = top + len(runs) * group_h + 8
    plot_w = WIDTH - left - right
    high = max(max((r[key] or 0) for key, _ in series) for r in runs) or 1
    body = []
    for k, (_, name) in enumerate(series):
        body.append(f'<rect class="swatch s{k}" x="{left + k * 130}" y="4" width="10" height="10"/>')
        body.append(f'<text class="tick" x="{left + k * 130 + 14}" y="13">{escape(name)}</text>')
    for i, run in enumerate(runs):
        y0 = top + i * group_h
        body.append(
            f'<text class="row-label" x="{left - 8}" y="{y0 + 2 * (bar + gap) + 2}" text-anchor="end">'
            f"{escape(run['label'])}</text>"
        )
        for k, (key, name) in enumerate(series):
            value = run[key] or 0
            y = y0 + k * (bar + gap)
            w = max(plot_w * value / high, 1.0)
            body.append(
                f'<rect class="mark s{k}" x="{left}" y="{y}" width="{_num(w)}" height="{bar}">'
                f"<title>{escape(run['label'])}: {count(value)} {escape(name)}</title></rect>"
            )
            body.append(
                f'<text class="value" x="{_num(left + w + 6)}" y="{y + bar - 2}">{count(value)}</text>'
            )
    return _svg(height, label, body, "funnel")


def seconds_label(value: float) -> str:
    """Seconds to a precision that tells short jobs apart: 0.004 s, 1.25 s, 75.3 s, 812 s."""
    return f"{value:.3f} s" if value < 1 else f"{value:.3g} s" if value < 1000 else f"{value:,.0f} s"


def _span(job: dict, now: datetime) -> tuple[datetime, datetime] | None:
    """When the job ran: start to end, or to now while it runs. A job that never started, or that
    waits to be run again (a retried run keeps its last start), has no bar."""
    if job["started_at"] is None:
        return None
    end = job["finished_at"] or (now if job["status"] == "running" else None)
    return (job["started_at"], end) if end else None


def gantt(jobs: list[dict], label: str, now: datetime) -> Markup:
    """One bar per job from its start to its end, on the run's clock, so parallel jobs show side by
    side. A job without a bar (see _span) gets its row with its status."""
    if not jobs:
        return empty(f"{label}: the run has no jobs")
    spans = [_span(job, now) for job in jobs]
    t0 = min((s[0] for s in spans if s), default=now)
    t1 = max((s[1] for s in spans if s), default=now)
    span = _nice_max(max((t1 - t0).total_seconds(), 0.001))
    bar, gap, left, right, top = 16, 6, 230, 70, 26
    height = top + len(jobs) * (bar + gap) + 10
    plot_w = GANTT_WIDTH - left - right
    body = []
    for k in range(5):
        x = left + plot_w * k / 4
        body.append(f'<line class="grid" x1="{_num(x)}" x2="{_num(x)}" y1="{top - 6}" y2="{height - 8}"/>')
        body.append(_text("tick", x, top - 10, f"{span * k / 4:g} s", "middle"))
    for i, (job, ran) in enumerate(zip(jobs, spans, strict=True)):
        y = top + i * (bar + gap)
        body.append(_text("row-label", left - 8, y + bar - 4, job["label"], "end"))
        if ran is None:
            body.append(_text("value", left + 4, y + bar - 4, job["status"]))
            continue
        x = left + plot_w * (ran[0] - t0).total_seconds() / span
        seconds = (ran[1] - ran[0]).total_seconds()
        w = max(plot_w * seconds / span, 2.0)
        body.append(
            f'<rect class="mark job-{escape(job["status"])}" x="{_num(x)}" y="{y}" width="{_num(w)}" '
            f'height="{bar}"><title>{escape(job["label"])}: {escape(job["status"])}, attempt '
            f"{job['attempt']}, {seconds_label(seconds)}, "
            f"worker {escape(job['worker_name'] or '-')}</title></rect>"
        )
        body.append(
            _text("value", min(x + w + 4, GANTT_WIDTH - right + 4), y + bar - 4, seconds_label(seconds))
        )
    return _svg(height, label, body, "gantt", GANTT_WIDTH)
