"""The marts against pandas: every figure of every mart recomputed from the facts, on the sample run
through the real pipeline (CLI, queues, workers), after a second file (incremental refresh) and
after a rebuild (full refresh)."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import psycopg2
import pytest
import sqlalchemy as sa

from services.transform import checks, marts
from tests.conftest import GOOD, ROOT, run_cli
from tests.test_security import connect_as

SAMPLE = ROOT / "data" / "sample.csv"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not SAMPLE.exists(), reason="data/sample.csv not generated yet"),
]

FACTS = sa.text(
    """SELECT f.sale_id, f.source_sha256, f.make_id, mk.make_name, f.model, f.model_year, st.state_code,
              se.seller_name, CAST(f.selling_price AS float8) AS price, CAST(f.mmr AS float8) AS mmr,
              f.odometer, f.repaired, CAST(extract(epoch FROM f.sale_date) AS float8) AS sale_epoch
         FROM staging.fact_car_sales f
         JOIN staging.dim_state st ON st.state_id = f.state_id
         JOIN staging.dim_seller se ON se.seller_id = f.seller_id
         LEFT JOIN staging.dim_make mk ON mk.make_id = f.make_id"""
)
UNKNOWN = "<unknown make>"
# The key of each mart (by name, as an analyst reads it) and the figures compared with pandas,
# with the tolerance their rounding in SQL allows.
KEYS = {
    "daily_sales": ["sale_day", "state_code", "make_name"],
    "price_guide": ["make_name", "model", "model_year"],
    "seller_scorecard": ["seller_name"],
}
FIGURES = {
    "daily_sales": {
        "sales": 0,
        "total_price": 0.001,
        "avg_price": 0.0051,
        "priced_sales": 0,
        "avg_price_to_mmr": 0.000051,
        "share_above_mmr": 0.000051,
    },
    "price_guide": {
        "sales": 0,
        "median_price": 0.0051,
        "p10_price": 0.0051,
        "p90_price": 0.0051,
        "median_mmr": 0.0051,
        "median_price_to_mmr": 0.000051,
        "median_odometer": 0.51,
    },
    "seller_scorecard": {
        "sales": 0,
        "priced_sales": 0,
        "avg_price_to_mmr": 0.000051,
        "repaired_sales": 0,
        "suspicious_sales": 0,
        "flagged_share": 0.000051,
        "first_sale_day": None,
        "last_sale_day": None,
    },
}


def facts(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        df = pd.read_sql(FACTS, conn)
    df["sale_day"] = pd.to_datetime(df["sale_epoch"], unit="s", utc=True).dt.date
    df["make_name"] = df["make_name"].fillna(UNKNOWN)
    df["priced"] = (df["price"] >= checks.SUSPICIOUS_PRICE) & (df["mmr"] >= checks.SUSPICIOUS_PRICE)
    df["ratio"] = (df["price"] / df["mmr"]).where(df["priced"])
    df["above"] = df["priced"] & (df["price"] > df["mmr"])
    odometer = df["odometer"].astype("float64")
    df["suspicious"] = (
        (df["price"] < checks.SUSPICIOUS_PRICE)
        | (df["mmr"] < checks.SUSPICIOUS_PRICE)
        | (odometer <= checks.SUSPICIOUS_ODOMETER_LOW)
        | (odometer >= checks.SUSPICIOUS_ODOMETER_HIGH)
    )
    return df


def expected(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The three marts computed with pandas from the facts."""
    dated = df[df["sale_day"].notna()]
    daily = dated.groupby(KEYS["daily_sales"]).agg(
        sales=("price", "size"),
        total_price=("price", "sum"),
        avg_price=("price", "mean"),
        priced_sales=("priced", "sum"),
        avg_price_to_mmr=("ratio", "mean"),
        above=("above", "sum"),
    )
    daily["share_above_mmr"] = daily["above"] / daily["priced_sales"].replace(0, np.nan)

    known = df[(df["make_name"] != UNKNOWN) & df["model"].notna()]
    groups = known.groupby(KEYS["price_guide"])
    guide = groups.agg(
        sales=("price", "size"),
        median_price=("price", "median"),
        median_mmr=("mmr", "median"),
        median_price_to_mmr=("ratio", "median"),
        median_odometer=("odometer", "median"),
    )
    guide["p10_price"] = groups["price"].quantile(0.1)
    guide["p90_price"] = groups["price"].quantile(0.9)
    guide = guide[guide["sales"] >= marts.PRICE_GUIDE_MIN_SALES]

    df = df.assign(flagged=df["repaired"] | df["suspicious"])
    sellers = df.groupby(KEYS["seller_scorecard"]).agg(
        sales=("price", "size"),
        priced_sales=("priced", "sum"),
        avg_price_to_mmr=("ratio", "mean"),
        repaired_sales=("repaired", "sum"),
        suspicious_sales=("suspicious", "sum"),
        flagged_share=("flagged", "mean"),
    )
    days = dated.groupby(KEYS["seller_scorecard"])["sale_day"]
    sellers["first_sale_day"] = days.min()
    sellers["last_sale_day"] = days.max()
    return {"daily_sales": daily, "price_guide": guide, "seller_scorecard": sellers}


def mart(engine, name: str) -> pd.DataFrame:
    """The mart as the analyst reads it, keyed like `expected`, with each row's xmin (the
    transaction that last wrote it)."""
    with engine.connect() as conn:
        df = pd.read_sql(sa.text(f"SELECT xmin::text AS xmin, * FROM marts.{name}"), conn)  # noqa: S608
    if "make_name" in df:
        df["make_name"] = df["make_name"].fillna(UNKNOWN)
    return df.set_index(KEYS[name]).sort_index()


def assert_marts_match_facts(engine) -> dict[str, pd.DataFrame]:
    want = expected(facts(engine))
    got = {}
    for name, figures in FIGURES.items():
        table = mart(engine, name)
        assert table.index.is_unique, f"{name}: a key twice"
        assert len(table) > 0, f"{name} is empty"
        mine, theirs = set(table.index), set(want[name].index)
        assert mine == theirs, f"{name}: only in the mart {sorted(mine - theirs)[:5]}, only in pandas " + str(
            sorted(theirs - mine)[:5]
        )
        joined = table.join(want[name], suffixes=("", "_pandas"))
        for figure, tolerance in figures.items():
            for key, value, wanted in zip(
                joined.index, joined[figure], joined[f"{figure}_pandas"], strict=True
            ):
                if tolerance is None:  # a day: equal, or both missing
                    assert (pd.isna(value) and pd.isna(wanted)) or value == wanted, (name, key, figure)
                    continue
                if pd.isna(wanted):
                    assert pd.isna(value), (name, key, figure, value)
                    continue
                assert math.isclose(float(value), float(wanted), abs_tol=tolerance), (
                    name,
                    key,
                    figure,
                    value,
                    wanted,
                )
        got[name] = table
    return got


def run(*args) -> dict:
    proc = run_cli(*args, "--wait", "--json")
    status = json.loads(proc.stdout)
    return status


def checks_of(status: dict) -> dict[str, str]:
    return {q["check"]: q["status"] for q in status["quality"] if q["check"].startswith("mart_")}


def second_file(folder):
    """1,500 lines of the sample again (a new file content: new sales on the same days, states,
    makes and sellers) and six sales on a new day by a new seller."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    fields = GOOD.split(",")
    fields[12] = "marts second file motors"
    fields[15] = "Wed Jul 01 2015 09:30:00 GMT-0700 (PDT)"
    extra = [",".join(fields[:6] + [f"5xyktca69fg5664{n:02d}"] + fields[7:]) for n in range(6)]
    path = folder / "second.csv"
    path.write_text("\n".join([*lines[:1501], *extra]) + "\n", encoding="utf-8")
    return path


def touched(df: pd.DataFrame, sha256s: set[str]) -> dict[str, set]:
    """The keys of each mart that the sales of these files fall in (what a refresh recomputes)."""
    run_sales = df[df["source_sha256"].isin(sha256s)]
    return {
        "daily_sales": set(map(tuple, run_sales[run_sales["sale_day"].notna()][KEYS["daily_sales"]].values)),
        "price_guide": set(
            map(
                tuple,
                run_sales[(run_sales["make_name"] != UNKNOWN) & run_sales["model"].notna()][
                    KEYS["price_guide"]
                ].values,
            )
        ),
        "seller_scorecard": set(run_sales["seller_name"]),
    }


def run_sha256s(engine, run_id: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT sha256 FROM meta.ingested_files WHERE run_id = :r"), {"r": run_id}
            ).scalars()
        )


def test_marts_match_pandas_on_the_sample_after_a_second_file_and_after_a_rebuild(workers, engine, data_dir):
    sample = data_dir / "sample.csv"
    shutil.copy(SAMPLE, sample)
    workers.start_all()

    first = run("run", "--source", str(sample))
    assert first["status"] == "succeeded", first
    assert checks_of(first) == dict.fromkeys(
        ("mart_daily_sales", "mart_price_guide", "mart_seller_scorecard"), "pass"
    )
    before = assert_marts_match_facts(engine)
    assert before["daily_sales"]["sales"].sum() > 4_900
    assert before["price_guide"]["sales"].min() >= marts.PRICE_GUIDE_MIN_SALES

    # A second file: only the cells, groups and sellers its sales fall in are recomputed.
    second = run("run", "--source", str(second_file(data_dir)))
    assert second["status"] == "succeeded", second
    assert set(checks_of(second).values()) == {"pass"}
    transform = next(s for s in second["stages"] if (s["stage"], s["task"]) == ("transform", "publish"))
    assert "marts" in transform["details"]["step_seconds"]
    after = assert_marts_match_facts(engine)
    keys = touched(facts(engine), run_sha256s(engine, second["run_id"]))
    with engine.begin() as conn:
        scope = marts.scope(conn, second["run_id"])
    assert scope == {
        "days": len(keys["daily_sales"]),
        "sellers": len(keys["seller_scorecard"]),
        "vehicles": len(keys["price_guide"]),
    }
    assert "marts second file motors" in keys["seller_scorecard"]
    for name in FIGURES:
        old, new = before[name]["xmin"], after[name]["xmin"]
        recomputed = {key for key in after[name].index if key in old.index and new[key] != old[key]}
        added = set(after[name].index) - set(old.index)
        # A row was rewritten exactly when the second file has sales under its key.
        assert recomputed | added == {k for k in after[name].index if k in keys[name]}, name
        assert len(after[name]) - len(recomputed | added) > 0, f"{name}: every row was in scope"
    assert len(after["seller_scorecard"]) == len(before["seller_scorecard"]) + 1

    # A rebuild refreshes every mart from scratch, to the same figures.
    rebuilt = run("rebuild")
    assert rebuilt["status"] == "succeeded", rebuilt
    assert set(checks_of(rebuilt).values()) == {"pass"}
    final = assert_marts_match_facts(engine)
    for name in FIGURES:
        assert not set(final[name]["xmin"]) & set(after[name]["xmin"]), f"{name}: a row was kept"
        pd.testing.assert_frame_equal(final[name].drop(columns="xmin"), after[name].drop(columns="xmin"))


def test_a_stale_mart_row_fails_its_check_and_the_publish_until_a_rebuild(workers, engine, data_dir):
    sample = data_dir / "sample.csv"
    shutil.copy(SAMPLE, sample)
    workers.start_all()
    assert run("run", "--source", str(sample))["status"] == "succeeded"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO marts.seller_scorecard (seller_id, seller_name, sales, priced_sales, "
                "repaired_sales, suspicious_sales, flagged_share) "
                "VALUES (gen_random_uuid(), 'nobody sells this', 3, 3, 0, 0, 0)"
            )
        )
        sales = conn.execute(sa.text("SELECT count(*) FROM staging.fact_car_sales")).scalar()

    failed = run("run", "--source", str(second_file(data_dir)))

    assert failed["status"] == "failed"
    assert "quality check mart_seller_scorecard failed: observed 4, threshold 0" in failed["error"]
    assert checks_of(failed)["mart_seller_scorecard"] == "fail"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staging.fact_car_sales")).scalar() == sales
    rebuilt = run("rebuild")
    assert rebuilt["status"] == "succeeded", rebuilt
    assert set(checks_of(rebuilt).values()) == {"pass"}
    assert_marts_match_facts(engine)


def test_the_analyst_reads_the_marts_and_cannot_write_them(workers, engine, data_dir):
    sample = data_dir / "sample.csv"
    shutil.copy(SAMPLE, sample)
    workers.start_all()
    assert run("run", "--source", str(sample))["status"] == "succeeded"
    conn = connect_as("analyst")
    try:
        with conn.cursor() as cur:
            for name in marts.MODELS:
                cur.execute(f"SELECT count(*) FROM marts.{name}")  # noqa: S608 (constant names)
                assert cur.fetchone()[0] > 0
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("DELETE FROM marts.daily_sales")
    finally:
        conn.close()


def test_an_incremental_refresh_joins_its_keys_however_many_there_are(workers, engine, data_dir):
    """The models match the facts to the run's keys with a hash join: with the keys too many for
    work_mem (a big second file), a test of the form `:full OR key IN (SELECT ...)` became a
    nested loop over every fact and every key, which never ended on 5.6 million sales."""
    sample = data_dir / "sample.csv"
    shutil.copy(SAMPLE, sample)
    workers.start_all()
    first = run("run", "--source", str(sample))
    assert first["status"] == "succeeded", first
    params = {**marts.PARAMS, "run_id": first["run_id"], "full": False}
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL work_mem = '64kB'"))  # every key set is too big now
        conn.execute(marts.REFRESH["scope"], params)
        assert conn.execute(sa.text("SELECT count(*) FROM pg_temp.marts_scope")).scalar() > 1_000
        for model in marts.MODELS:
            for statement in ("delete", "insert"):
                plan = "\n".join(
                    conn.execute(
                        sa.text("EXPLAIN " + marts.MODEL_SQL[model][statement].text), params
                    ).scalars()
                )
                assert "SubPlan" not in plan, f"{model} {statement}:\n{plan}"
                assert "Hash" in plan and "marts_scope" in plan, f"{model} {statement}:\n{plan}"
        conn.execute(marts.REFRESH["drop_scope"])
