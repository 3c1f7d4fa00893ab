"""A batch's own partition of raw.car_prices: created, loaded and attached in the ingest's transaction.

Why a partition per batch (migration 0005 says more): COPY ... FREEZE into a table created in the
same transaction writes the rows already frozen, so the transform's first read does not rewrite every
page to set hint bits; the batch id is the partition's constant default instead of a per-row setting
lookup; concurrent ingest jobs write to different tables; and the transform reads its run's
partitions only. Attaching at the end keeps the parent's lock (SHARE UPDATE EXCLUSIVE, which readers
never wait for) to the last milliseconds of the transaction, and the CHECK constraint, which matches
the partition bound, spares ATTACH a scan of the rows.

These statements name a table, and identifiers cannot travel as parameters: they are composed with
psycopg2.sql from the batch id (an integer) instead of living in ingest.sql.
"""

from psycopg2 import sql

from shared.dataset import HEADER


def partition_name(batch_id: int) -> str:
    return f"car_prices_b{int(batch_id)}"


def _bounds(batch_id: int) -> dict:
    """The partition's range, [batch, next): its CHECK constraint and its ATTACH bound alike."""
    return {"batch": int(batch_id), "next": int(batch_id) + 1}


def create(cur, batch_id: int) -> sql.Identifier:
    """Create the batch's empty partition (not yet attached) and return its qualified name."""
    name = partition_name(batch_id)
    table = sql.Identifier("raw", name)
    cur.execute(sql.SQL("CREATE TABLE {} (LIKE raw.car_prices)").format(table))
    cur.execute(
        sql.SQL(
            "ALTER TABLE {} ALTER COLUMN _batch_id SET DEFAULT %(batch)s, "
            "ADD CONSTRAINT {} CHECK (_batch_id >= %(batch)s AND _batch_id < %(next)s)"
        ).format(table, sql.Identifier(f"{name}_batch")),
        _bounds(batch_id),
    )
    return table


def copy_statement(table: sql.Identifier) -> sql.Composed:
    """COPY of the splitter's records (line number first) into a partition made in this transaction."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in ("_line_number", *HEADER))
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, FREEZE true)").format(table, columns)


def copy_split_trim_statement(table: sql.Identifier) -> sql.Composed:
    """COPY of the splitter's 17-field records with a known split trim, as they are: the first 16
    fields to the 16 columns, the 17th to `_extra_field` (migration 0006). A blank 17th field is read
    as '' (FORCE_NOT_NULL), so `_extra_field IS NOT NULL` marks exactly the lines of 17 fields."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in ("_line_number", *HEADER, "_extra_field"))
    return sql.SQL(
        "COPY {} ({}) FROM STDIN WITH (FORMAT csv, FREEZE true, FORCE_NOT_NULL (_extra_field))"
    ).format(table, columns)


def attach(cur, batch_id: int) -> None:
    cur.execute(
        sql.SQL(
            "ALTER TABLE raw.car_prices ATTACH PARTITION {} FOR VALUES FROM (%(batch)s) TO (%(next)s)"
        ).format(sql.Identifier("raw", partition_name(batch_id))),
        _bounds(batch_id),
    )
