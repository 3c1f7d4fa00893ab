"""The chunk jobs' binary COPY (services/transform/pgbinary.py) writes what the CSV COPY writes.

Every type of the fact table (a run's sales tables have its layout), NULLs in each nullable
column, the largest prices, non-ASCII and empty text: PostgreSQL reads both forms into a table
each, and the two tables hold the same rows.
"""

import datetime as dt
import io
import uuid
from decimal import Decimal

import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv

from services.transform import clean, pgbinary
from shared import config

COLUMNS = clean.SALES_COLUMNS
TYPES = {
    "uuid": pa.string(),
    "text": pa.string(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "bool": pa.bool_(),
    "numeric": clean.MONEY,
    "timestamptz": clean.SALE_DATE,
}


def rows() -> pa.Table:
    ids = [uuid.uuid4().hex, uuid.UUID(int=0).hex, "f" * 32]
    values = {
        "uuid": ids,
        "text": ["Crew Cab", "Œuvre — déjà", ""],
        "int2": [2015, -1, 32767],
        "int4": [999_999_999, 0, -2],
        "int8": [2**48 - 1, 2, 0],
        "bool": [True, False, True],
        "numeric": [Decimal("9999999999999.99"), Decimal("0.00"), Decimal("14250.50")],
        "timestamptz": [
            dt.datetime(2014, 12, 16, 20, 30, tzinfo=dt.UTC),
            dt.datetime(1990, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        ],
    }
    table = {}
    for i, (name, pg_type) in enumerate(COLUMNS.items()):
        column = list(values[pg_type])
        if name not in ("sale_id", "line_number", "repaired"):
            column[i % 3] = None  # a NULL in a different row for each nullable column
        table[name] = pa.array(column, type=TYPES[pg_type])
    return pa.table(table)


def test_binary_copy_reads_back_as_the_csv_copy(engine):
    table = rows()
    columns = ", ".join(f'"{name}"' for name in COLUMNS)
    conn = psycopg2.connect(config.settings().database_url)
    try:
        with conn.cursor() as cur:
            # the same columns and types, without the NOT NULL constraints (NULLs are written too)
            cur.execute("CREATE TEMP TABLE by_binary AS SELECT * FROM staging.fact_car_sales WITH NO DATA")
            cur.execute("CREATE TEMP TABLE by_csv AS SELECT * FROM staging.fact_car_sales WITH NO DATA")
            binary = b"".join(pgbinary.copy_binary(table, list(COLUMNS.values()), rows=2))
            cur.copy_expert(f"COPY by_binary ({columns}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(binary))
            text = io.BytesIO()
            pacsv.write_csv(table, text, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
            text.seek(0)
            cur.copy_expert(f"COPY by_csv ({columns}) FROM STDIN WITH (FORMAT csv)", text)
            cur.execute("SELECT count(*) FROM by_binary")
            assert cur.fetchone()[0] == 3
            cur.execute("SELECT count(*) FROM (SELECT * FROM by_binary EXCEPT ALL SELECT * FROM by_csv) d")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT count(*) FROM (SELECT * FROM by_csv EXCEPT ALL SELECT * FROM by_binary) d")
            assert cur.fetchone()[0] == 0
            # and the values are the table's (not only the same mistakes in both forms)
            cur.execute("SELECT mmr, sale_date, model, odometer FROM by_binary ORDER BY line_number")
            ordered = table.sort_by("line_number")
            expected = zip(
                *(ordered.column(c).to_pylist() for c in ("mmr", "sale_date", "model", "odometer")),
                strict=True,
            )
            assert cur.fetchall() == list(expected)
    finally:
        conn.close()
