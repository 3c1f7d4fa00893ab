"""The web UI: FastAPI routes over data.py and pages.py, served by uvicorn (`pipeline ui`).

Read-only by construction: it connects as the `ui` role (SELECT only, migration 0009) and every
session is read-only as well. Each page reads in one REPEATABLE READ transaction, so its counts
come from one snapshot of the ledger.
"""

from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.exc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from services.ui import data, pages
from shared.config import mask_url
from shared.db import sa_url

SECURITY_HEADERS = {
    "Content-Security-Policy": pages.CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ui_engine(database_url: str) -> sa.Engine:
    return sa.create_engine(
        sa_url(database_url),
        pool_size=4,
        max_overflow=4,
        pool_pre_ping=True,
        connect_args={
            "application_name": "carsales-ui",
            # Belt and braces beside the role's grants; a page never waits minutes for a query.
            "options": "-c default_transaction_read_only=on -c statement_timeout=60s",
        },
    )


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code)


def _error(status_code: int, title: str, message: str) -> HTMLResponse:
    return _page(pages.render("error.html", title=title, message=message), status_code)


def create_app(database_url: str) -> FastAPI:
    engine = ui_engine(database_url)
    app = FastAPI(title="carsales runs", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        """On every answer, pages, errors and the stylesheet alike."""
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def read(fn, *args):
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            return fn(conn, *args)

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    async def database_down(request: Request, exc):
        return _error(503, "Database unavailable", f"PostgreSQL at {mask_url(database_url)} does not answer.")

    @app.exception_handler(sqlalchemy.exc.ProgrammingError)
    async def not_set_up(request: Request, exc):
        return _error(
            503,
            "Ledger not readable",
            "The ledger does not exist yet or the ui role may not read it: run `pipeline setup`.",
        )

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return _error(404, "Not found", "There is no such page.")

    @app.get("/", response_class=HTMLResponse)
    @app.get("/runs", response_class=HTMLResponse)
    def runs(status: str | None = None):
        if status in ("", "all"):
            status = None
        if status is not None and status not in data.RUN_STATUSES:
            return _error(400, "Bad filter", f"status must be one of {', '.join(data.RUN_STATUSES)}.")
        found, counts = read(lambda conn: (data.runs(conn, status), data.status_counts(conn)))
        return _page(pages.runs_page(found, status, counts))

    def _run(run_id: str):
        """The run id in canonical form, or the error page for a malformed one."""
        canonical = data.run_id_or_none(run_id)
        if canonical is None:
            return None, _error(400, "Not a run id", "A run id is a UUID, as `pipeline runs` prints it.")
        return canonical, None

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(run_id: str):
        canonical, error = _run(run_id)
        if error:
            return error
        found = read(data.run_page, canonical)
        if found is None:
            return _error(404, "No such run", f"The ledger has no run {canonical}.")
        return _page(pages.run_page(found))

    def sample(run_id: str, reason: str, kind: str, fetch):
        canonical, error = _run(run_id)
        if error:
            return error

        run_row, lines = read(
            lambda conn: (data.run_summary(conn, canonical), fetch(conn, canonical, reason))
        )
        if run_row is None:
            return _error(404, "No such run", f"The ledger has no run {canonical}.")
        return _page(pages.sample_page(run_row, kind, reason, lines))

    @app.get("/runs/{run_id}/rejects", response_class=HTMLResponse)
    def rejects(run_id: str, reason: str = ""):
        return sample(run_id, reason, "rejected", data.reject_sample)

    @app.get("/runs/{run_id}/quarantine", response_class=HTMLResponse)
    def quarantine(run_id: str, reason: str = ""):
        return sample(run_id, reason, "quarantined", data.quarantine_sample)

    @app.get("/data", response_class=HTMLResponse)
    def published():
        return _page(pages.data_page(read(data.data_page)))

    @app.get("/healthz", response_class=PlainTextResponse)
    def health():
        read(data.health)
        return PlainTextResponse("ok")

    return app


def serve(database_url: str, host: str, port: int) -> None:
    """Run the UI until interrupted. log_config=None: uvicorn logs through the root logger, which
    shared.logging renders as the pipeline's JSON lines."""
    uvicorn.run(create_app(database_url), host=host, port=port, log_config=None, server_header=False)
