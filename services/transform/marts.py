"""The marts: curated, analyst-facing tables refreshed from staging inside the publish transaction.

`refresh(conn, run_id)` is called by the transform's publish right after the facts are written,
in the same transaction, so readers see the marts change together with staging or not at all.
One model per file in sql/marts/ (daily_sales, price_guide, seller_scorecard), each a `delete`
and an `insert` of the rows to recompute.

What is recomputed:

* an ordinary run: the keys its sales touched. The facts of a run are the sales of the files it
  transformed (meta.ingested_files of the run, by content hash); their (sale day, state, make)
  cells, (make, model, model year) groups and sellers go into pg_temp.marts_scope, and each mart
  deletes and re-aggregates just those rows over all of staging (a day's row also counts the sales
  other runs published on that day). A publish only ever adds facts, so no other row can change.
* a rebuild, a forced run (it may replace facts, whose old keys are gone by now) and the first
  publish of a database whose marts were never built: every mart from scratch.

Each mart then gets a blocking check (`mart_<name>`: its rows and sales reconcile with the facts,
over the whole tables), returned to the caller, which saves them with the run's other quality
results and rolls the publish back if one fails.
"""

import time
from pathlib import Path

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection

from services.transform import checks
from shared.sqlfile import load_queries

SQL = Path(__file__).parent / "sql"
log = structlog.get_logger("services.transform")
MODELS = ("daily_sales", "price_guide", "seller_scorecard")
# The price guide only lists a vehicle with this many sales: fewer make no price to go by.
PRICE_GUIDE_MIN_SALES = 5
# The make key of the sales whose make is unknown (no make's id is the nil uuid).
NO_MAKE = "00000000-0000-0000-0000-000000000000"

REFRESH = {name: sa.text(sql) for name, sql in load_queries(SQL / "marts_refresh.sql").items()}
MODEL_SQL = {
    model: {name: sa.text(sql) for name, sql in load_queries(SQL / "marts" / f"{model}.sql").items()}
    for model in MODELS
}
CHECKS = {name: sa.text(sql) for name, sql in load_queries(SQL / "checks" / "marts.sql").items()}
PARAMS = {
    "no_make": NO_MAKE,
    "min_sales": PRICE_GUIDE_MIN_SALES,
    "suspicious_price": checks.SUSPICIOUS_PRICE,
    "suspicious_odometer_low": checks.SUSPICIOUS_ODOMETER_LOW,
    "suspicious_odometer_high": checks.SUSPICIOUS_ODOMETER_HIGH,
}
# What a row of each mart is, for the checks' details.
GROUPS = {
    "daily_sales": "(sale day, state, make) cells of the dated sales",
    "price_guide": f"(make, model, model year) groups with >= {PRICE_GUIDE_MIN_SALES} sales",
    "seller_scorecard": "sellers of the sales",
}


def refresh(conn: Connection, run_id: str) -> list[checks.QualityResult]:
    """Bring every mart in line with staging after run `run_id` wrote its facts (same transaction).

    Returns the marts' quality checks; the caller records them and blocks on a failure.
    """
    full = conn.execute(REFRESH["run"], {"run_id": run_id}).scalar()
    params = {**PARAMS, "run_id": run_id, "full": True if full is None else full}  # unknown run: all
    conn.execute(REFRESH["scope"], params)
    for model in MODELS:
        started = time.perf_counter()
        conn.execute(MODEL_SQL[model]["delete_all" if params["full"] else "delete"], params)
        rows = conn.execute(MODEL_SQL[model]["insert"], params).rowcount
        log.info("mart refreshed", mart=model, full=params["full"], rows=rows, seconds=_since(started))
    conn.execute(REFRESH["drop_scope"])
    started = time.perf_counter()
    results = _checks(conn)
    log.info("marts checked", seconds=_since(started))
    return results


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def scope(conn: Connection, run_id: str) -> dict:
    """What an incremental refresh of `run_id` recomputes (for tests and operators), as counts."""
    conn.execute(REFRESH["scope"], {**PARAMS, "run_id": run_id, "full": False})
    size = dict(conn.execute(REFRESH["scope_size"]).mappings().one())
    conn.execute(REFRESH["drop_scope"])
    return size


def _checks(conn: Connection) -> list[checks.QualityResult]:
    found = {m["mart"]: m for m in conn.execute(CHECKS["reconcile"], PARAMS).mappings()}
    results = []
    for model in MODELS:
        m = found[model]
        results.append(
            checks.QualityResult(
                f"mart_{model}",
                True,
                int(abs(m["fact_groups"] - m["mart_rows"]) + abs(m["fact_sales"] - m["mart_sales"])),
                0,
                f"marts.{model}: {m['mart_rows']} rows holding {m['mart_sales']} sales = "
                f"{m['fact_groups']} {GROUPS[model]} in staging, holding {m['fact_sales']} sales",
            )
        )
    return results
