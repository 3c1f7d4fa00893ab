"""The run's partitions of the work tables (migration 0007): created by its plan job, dropped by its
publish job once the run is published.

These statements name a table, and identifiers cannot travel as parameters: they are composed with
psycopg2.sql from the run id (a uuid) instead of living in a .sql file.
"""

import uuid

from psycopg2 import sql

TABLES = ("sales", "quarantine", "dimension_rows")


def _partition(table: str, run_id: str) -> sql.Identifier:
    return sql.Identifier("work", f"{table}_{uuid.UUID(run_id).hex}")


def create(cur, run_id: str) -> None:
    """The run's empty UNLOGGED partitions, created apart and then attached: ATTACH takes a lock on
    the parent that concurrent chunk jobs of other runs (writing to it) do not wait for."""
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


def drop(cur, run_id: str) -> None:
    for table in TABLES:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_partition(table, run_id)))
