"""`pipeline report RUN_ID --out FILE`: the run page as one self-contained HTML file.

The same template as the web page, with the stylesheet inline, the charts as inline SVG and the
samples of rejected and quarantined lines in the file itself: it opens anywhere, offline, and can
be attached to a ticket. It loads nothing and runs no script (its own Content-Security-Policy).
"""

from pathlib import Path

from services.ui import data, pages
from services.ui.app import ui_engine


def render_report(conn, run_id: str) -> str | None:
    """The report's HTML, or None if the ledger has no such run."""
    page = data.run_page(conn, run_id)
    if page is None:
        return None
    samples = {
        "rejected": [(r["reason"], data.reject_sample(conn, run_id, r["reason"])) for r in page["rejects"]],
        "quarantined": [
            (r["reason"], data.quarantine_sample(conn, run_id, r["reason"])) for r in page["quarantine"]
        ],
    }
    return pages.run_page(page, samples=samples, standalone=True)


def write_report(database_url: str, run_id: str, out: str | Path) -> bool:
    """Write the report of `run_id` to `out`; False (and nothing written) if there is no such run."""
    engine = ui_engine(database_url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            html = render_report(conn, run_id)
    finally:
        engine.dispose()
    if html is None:
        return False
    Path(out).write_text(html, encoding="utf-8")
    return True
