"""What the pages show, read from the ledger (meta), the published facts (staging) and the rejected
lines (raw). Each function takes an open connection and only reads (queries.sql)."""

import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.sqlfile import load_queries

Q = {name: sa.text(sql) for name, sql in load_queries(Path(__file__).with_name("queries.sql")).items()}

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RUNS_SHOWN = 200
SAMPLE_LINES = 50
FUNNEL_RUNS = 8
TOP_MAKES = 15
PRICE_BUCKET = 2500  # dollars per bar of the selling-price distribution
PRICE_BUCKETS = 20  # bars before the last one, which holds every higher price


def run_id_or_none(value: str) -> str | None:
    """The canonical form of a run id, or None if `value` is not one (a UUID)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def runs(conn: Connection, status: str | None = None, limit: int = RUNS_SHOWN) -> list[dict]:
    """Runs newest first, with their counts (see queries.sql for where each comes from)."""
    rows = conn.execute(Q["runs"], {"status": status, "run_id": None, "limit": limit}).mappings()
    return [dict(r) for r in rows]


def health(conn: Connection) -> None:
    """Raises unless the ledger answers (the container's healthcheck)."""
    conn.execute(Q["health"]).all()


def run_summary(conn: Connection, run_id: str) -> dict | None:
    """One run as the runs page lists it, or None."""
    found = conn.execute(Q["runs"], {"status": None, "run_id": run_id, "limit": 1}).mappings().first()
    return dict(found) if found else None


def status_counts(conn: Connection) -> dict[str, int]:
    return {r.status: r.runs for r in conn.execute(Q["status_counts"])}


def job_label(job: dict) -> str:
    """`ingest sample.csv`, `transform`, `transform chunk-3`: the stage and the task's last part."""
    task = (job["task"] or "").rsplit("/", 1)[-1]
    return f"{job['stage']} {task}".strip()


def run_page(conn: Connection, run_id: str) -> dict | None:
    """Everything the run page shows, or None if the ledger has no such run."""
    found = run_summary(conn, run_id)
    if found is None:
        return None
    jobs = [dict(j) | {"label": job_label(j)} for j in conn.execute(Q["jobs"], {"run_id": run_id}).mappings()]
    return {
        "run": found,
        "jobs": jobs,
        "stages": sorted({j["stage"] for j in jobs}, key=[j["stage"] for j in jobs].index),
        "quality": [dict(q) for q in conn.execute(Q["quality"], {"run_id": run_id}).mappings()],
        "files": [dict(f) for f in conn.execute(Q["files"], {"run_id": run_id}).mappings()],
        "rejects": [dict(r) for r in conn.execute(Q["reject_reasons"], {"run_id": run_id}).mappings()],
        "quarantine": [dict(r) for r in conn.execute(Q["quarantine_reasons"], {"run_id": run_id}).mappings()],
    }


def shown_bytes(raw: bytes) -> str:
    """A rejected line as text: valid UTF-8 as it is, any other byte as \\xNN (what was in the file)."""
    return bytes(raw).decode("utf-8", errors="backslashreplace")


def reject_sample(conn: Connection, run_id: str, reason: str, limit: int = SAMPLE_LINES) -> list[dict]:
    rows = conn.execute(Q["reject_sample"], {"run_id": run_id, "reason": reason, "limit": limit}).mappings()
    return [dict(r) | {"text": shown_bytes(r["raw_line"]), "bytes": len(r["raw_line"])} for r in rows]


QUARANTINE_FIELDS = (
    "year", "make", "model", "trim", "body", "transmission", "vin", "state", "condition", "odometer",
    "color", "interior", "seller", "mmr", "sellingprice", "saledate",
)  # fmt: skip


def quarantine_sample(conn: Connection, run_id: str, reason: str, limit: int = SAMPLE_LINES) -> list[dict]:
    rows = conn.execute(Q["quarantine_sample"], {"run_id": run_id, "reason": reason, "limit": limit})
    return [dict(r) for r in rows.mappings()]


def data_page(conn: Connection) -> dict:
    """The published facts in four views, and the latest runs' funnels."""
    days = [(r.day, r.sales) for r in conn.execute(Q["sales_per_day"])]
    buckets = {
        r.bucket: r.sales
        for r in conn.execute(Q["price_distribution"], {"width": PRICE_BUCKET, "last": PRICE_BUCKETS})
    }
    prices = [
        (
            f"${b * PRICE_BUCKET // 1000}k+" if b == PRICE_BUCKETS else f"${b * PRICE_BUCKET / 1000:g}k",
            buckets.get(b, 0),
        )
        for b in range(PRICE_BUCKETS + 1)
    ]
    makes = [
        (r.make_name, float(r.ratio), f"{float(r.ratio):.3f} ({r.sales:,} sales)")
        for r in conn.execute(Q["price_to_mmr_by_make"], {"limit": TOP_MAKES})
    ]
    funnel = [
        r | {"label": f"{str(r['run_id'])[:8]} {r['status']}"}
        for r in runs(conn, limit=RUNS_SHOWN)
        if r["lines"] is not None
    ][:FUNNEL_RUNS]
    totals = conn.execute(Q["published_totals"]).mappings().one()
    return {
        "days": days,
        "prices": prices if buckets else [],
        "makes": makes,
        "funnel": funnel,
        "totals": totals,
    }
