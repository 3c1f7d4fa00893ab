"""The original project's method, re-implemented as the benchmark's reference baseline.

The project this pipeline replaces was three pandas scripts (docs/dataset.md, "The original project"):
01_ingest.py read the whole CSV with `pandas.read_csv` and wrote it with `DataFrame.to_sql`;
02_transform.py read the table back with `read_sql_table`, title-cased the text columns, deleted
every Volkswagen sale (its "fix" for the shifted Jetta lines), built dimension tables with
`drop_duplicates` and integer ids, merged them into the fact table and wrote everything with
`to_sql`. This file does the same, with the same defaults (plain `to_sql`: no method='multi',
no chunksize), into its own schemas `naive_raw` and `naive_stg`. It is used by benchmarks/bench.py
only; nothing in the pipeline imports it.

Each phase runs as its own process so that its peak memory can be measured separately:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/carsales_bench \\
        .venv/bin/python benchmarks/naive.py ingest benchmarks/scratch/car_prices_1x.csv
    DATABASE_URL=... .venv/bin/python benchmarks/naive.py transform

It prints one JSON line: rows written and seconds per step (reading vs writing).
"""

import argparse
import json
import os
import time

import pandas as pd
import sqlalchemy as sa

RAW_SCHEMA = "naive_raw"
STG_SCHEMA = "naive_stg"
RAW_TABLE = "raw_car_prices"
# Text columns the original title-cased ("white" -> "White", "kia motors america  inc" -> "Kia Motors ...").
TITLE_CASE_COLUMNS = ("make", "transmission", "color", "interior", "seller")
# Dimensions of the original star schema: natural key column -> dimension table.
DIMENSIONS = {
    "make": "dim_make",
    "seller": "dim_seller",
    "state": "dim_state",
    "transmission": "dim_transmission",
    "year": "dim_year",
}
JOINED_DIMENSIONS = ("make", "seller", "state", "transmission")  # the fact keeps `year` itself


class Steps:
    """Seconds spent in each named step, for the JSON report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def time(self, name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
        return result


def engine() -> sa.Engine:
    return sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1))


def ingest(path: str) -> dict:
    """01_ingest.py: the whole file into a DataFrame, then into the raw table."""
    eng, steps = engine(), Steps()
    with eng.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}"))
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {STG_SCHEMA}"))
    # pandas stops at the file's 17-field lines ("Expected 16 fields ... saw 17") unless told to
    # skip them (docs/dataset.md): the baseline skips them, as any pandas reader of the file must.
    df = steps.time("read_csv", pd.read_csv, path, on_bad_lines="skip")
    steps.time("to_sql", df.to_sql, RAW_TABLE, eng, schema=RAW_SCHEMA, if_exists="replace", index=False)
    return {"rows": len(df), "steps": steps.seconds}


def build_dimension(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Distinct values of `column` numbered 1..n, as the original did (ids change with the data)."""
    dim = df[[column]].dropna().drop_duplicates().reset_index(drop=True)
    dim.insert(0, f"{column}_id", dim.index + 1)
    return dim


def clean(df: pd.DataFrame) -> pd.DataFrame:
    # The original deleted every Volkswagen sale because some Jetta lines were shifted.
    df = df[df["make"].str.lower() != "volkswagen"].copy()
    for column in TITLE_CASE_COLUMNS:
        df[column] = df[column].str.title()
    df["state"] = df["state"].str.upper()
    return df


def star_schema(df: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    dims = {column: build_dimension(df, column) for column in DIMENSIONS}
    fact = df
    for column in JOINED_DIMENSIONS:
        fact = fact.merge(dims[column], on=column, how="left")
    fact = fact.drop(columns=list(JOINED_DIMENSIONS))
    fact = fact.rename(columns={"color": "exterior_color", "interior": "interior_color"})
    return dims, fact


def transform() -> dict:
    """02_transform.py: raw table back into pandas, clean, star schema, everything written back."""
    eng, steps = engine(), Steps()
    raw = steps.time("read_sql_table", pd.read_sql_table, RAW_TABLE, eng, schema=RAW_SCHEMA)
    df = steps.time("clean", clean, raw)
    dims, fact = steps.time("merge", star_schema, df)
    for column, table in DIMENSIONS.items():
        steps.time(
            "to_sql", dims[column].to_sql, table, eng, schema=STG_SCHEMA, if_exists="replace", index=False
        )
    steps.time(
        "to_sql", fact.to_sql, "fact_car_prices", eng, schema=STG_SCHEMA, if_exists="replace", index=False
    )
    return {"rows_in": len(raw), "rows": len(fact), "steps": steps.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("phase", choices=("ingest", "transform"))
    parser.add_argument("file", nargs="?", help="the CSV file (ingest only)")
    args = parser.parse_args()
    if args.phase == "ingest":
        if not args.file:
            parser.error("ingest needs the CSV file")
        report = ingest(args.file)
    else:
        report = transform()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
