"""The run's tables in the work schema (migration 0007): created by its plan job, dropped by its
publish job once the run is published.

* Its partitions of work.quarantine and work.dimension_rows (UNLOGGED: throwaway rows).
* One sales table per file content of the run (`sales_<run>_<file>`): the file's trusted lines as
  the chunk jobs typed them, in the fact table's layout, with its constraints, its primary key and
  CHECKs that every sale is of the file and its id in the file's range. The publish attaches it to
  staging.fact_car_sales as the file's partition (migration 0010): the sales are written once, by
  the chunks, in parallel, and the CHECK spares ATTACH its scan of the rows. So it is logged, as
  the facts must be.

These statements name a run's table, and identifiers cannot travel as parameters: they are composed
with psycopg2.sql from the run id (a uuid) and the file's SHA-256 (hex) instead of living in a .sql
file. The publish's models read the run's sales through one temporary view (`pg_temp.run_sales`),
so they stay in .sql files.
"""

import uuid
from pathlib import Path

import sqlalchemy as sa
from psycopg2 import sql
from sqlalchemy.engine import Connection

from services.transform import clean, rules
from shared.db import dbapi_cursor
from shared.sqlfile import load_queries

SQL = Path(__file__).parent / "sql" / "work.sql"
QUERIES = {name: sa.text(text) for name, text in load_queries(SQL).items()}
TABLES = ("quarantine", "dimension_rows")
LAST_LINE = 2**48 - 1  # the largest line number a sale id holds
_SALES_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in clean.SALES_COLUMNS)


def _partition(table: str, run_id: str) -> sql.Identifier:
    return sql.Identifier("work", "_".join((table, uuid.UUID(run_id).hex)))


def _file(sha256: str) -> str:
    return sha256[:18]  # the SHA-256 digits a sale id holds


def _sales_name(run_id: str, sha256: str) -> str:
    return "_".join(("sales", uuid.UUID(run_id).hex, _file(sha256)))


def sales(run_id: str, sha256: str) -> sql.Identifier:
    """The table holding the run's sales of one file content, until its publish."""
    return sql.Identifier("work", _sales_name(run_id, sha256))


def fact_partition(sha256: str) -> str:
    """The name (in staging) of the fact table's partition holding one file content's sales."""
    return "_".join(("fact_car_sales", _file(sha256)))


def sale_id_range(sha256: str) -> tuple[str, str]:
    """The file's sale ids: from the first (inclusive) to the last (exclusive)."""
    return str(rules.sale_uuid(sha256, 0)), str(rules.sale_uuid(sha256, LAST_LINE))


# --- plan ------------------------------------------------------------------------------------------


def create(conn: Connection, run_id: str, sha256s: list[str]) -> None:
    """The run's empty partitions, created apart and then attached: ATTACH takes a lock on the
    parent that concurrent chunk jobs of other runs (writing to it) do not wait for; and its sales
    tables, one per file."""
    cur = dbapi_cursor(conn)
    for table in TABLES:
        partition = _partition(table, run_id)
        cur.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(partition, sql.Identifier("work", table))
        )
        cur.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN (%(run_id)s)").format(
                sql.Identifier("work", table), partition
            ),
            {"run_id": run_id},
        )
    for sha256 in sha256s:
        first, end = sale_id_range(sha256)
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE staging.fact_car_sales INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
                " CONSTRAINT {} PRIMARY KEY (sale_id),"
                " CONSTRAINT sales_of_the_file CHECK (source_sha256 = %(sha256)s),"
                " CONSTRAINT sales_in_the_file_range CHECK (sale_id >= %(first)s AND sale_id < %(end)s))"
            ).format(sales(run_id, sha256), sql.Identifier(_sales_name(run_id, sha256) + "_pkey")),
            {"sha256": sha256, "first": first, "end": end},
        )


# --- chunk -----------------------------------------------------------------------------------------


def copy_sales_statement(conn: Connection, run_id: str, sha256: str) -> str:
    """The COPY of a chunk's sales into its file's sales table, in binary (clean.SALES_COLUMNS)."""
    return (
        sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)")
        .format(sales(run_id, sha256), _SALES_COLUMNS)
        .as_string(dbapi_cursor(conn))
    )


def forget_sales(conn: Connection, run_id: str, sha256: str, line_numbers: list[int]) -> None:
    """A retried chunk's sales of an earlier attempt (its raw lines), so it redoes its rows only."""
    # A join to the lines (hashed), not `= ANY (array)`: that compares every row with every line.
    dbapi_cursor(conn).execute(
        sql.SQL(
            "DELETE FROM {} s USING unnest(CAST(%(lines)s AS bigint[])) AS l (line_number)"
            " WHERE s.line_number = l.line_number"
        ).format(sales(run_id, sha256)),
        {"lines": line_numbers},
    )


# --- publish ---------------------------------------------------------------------------------------


def create_run_sales_view(conn: Connection, run_id: str, sha256s: list[str]) -> None:
    """pg_temp.run_sales: every sales table of the run, for the publish's models and checks. A
    view follows its tables by identity, so it still reads them once they are partitions; the
    planner skips a table whose file a query excludes (its CHECK on source_sha256)."""
    tables = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT * FROM {}").format(sales(run_id, sha256)) for sha256 in sha256s
    )
    dbapi_cursor(conn).execute(sql.SQL("CREATE TEMP VIEW run_sales AS {}").format(tables))


def attach(conn: Connection, run_id: str, sha256: str) -> int:
    """Make the run's sales table of a file without a partition that file's partition of
    staging.fact_car_sales (inside the publish's transaction): moved to staging and renamed, given
    the fact table's readers, attached. ATTACH validates the foreign keys (one join each) and
    skips the scan of the partition's range, which the table's CHECK already proves. Returns the
    sales it holds, counted."""
    cur = dbapi_cursor(conn)
    moved, name = _sales_name(run_id, sha256), fact_partition(sha256)
    partition = sql.Identifier("staging", name)
    cur.execute(sql.SQL("ALTER TABLE {} SET SCHEMA staging").format(sales(run_id, sha256)))
    cur.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier("staging", moved), sql.Identifier(name))
    )
    cur.execute(
        sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier("staging", moved + "_pkey"), sql.Identifier(name + "_pkey")
        )
    )
    for reader in conn.execute(QUERIES["fact_readers"]).scalars().all():
        cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(partition, sql.Identifier(reader)))
    first, end = sale_id_range(sha256)
    cur.execute(
        sql.SQL(
            "ALTER TABLE staging.fact_car_sales ATTACH PARTITION {} FOR VALUES FROM (%(f)s) TO (%(e)s)"
        ).format(partition),
        {"f": first, "e": end},
    )
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(partition))
    return cur.fetchone()[0]


def drop_fact_partitions(conn: Connection) -> None:
    """Every partition of the fact table (a rebuild attaches every file again)."""
    cur = dbapi_cursor(conn)
    for name in conn.execute(QUERIES["fact_partitions"]).scalars().all():
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("staging", name)))


def drop(conn: Connection, run_id: str) -> None:
    """The run's partitions and whatever sales tables of it were not attached."""
    cur = dbapi_cursor(conn)
    for table in TABLES:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_partition(table, run_id)))
    prefix = _sales_name(run_id, "").replace("_", "\\_") + "%"
    for name in conn.execute(QUERIES["run_sales_tables"], {"prefix": prefix}).scalars().all():
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("work", name)))
