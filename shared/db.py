"""Database access: one SQLAlchemy engine per process, SQL files, advisory locks.

Workers fork a work horse per job (RQ's default), so the engine is keyed by process id:
a forked child never reuses its parent's sockets.
"""

import hashlib
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from shared.config import settings
from shared.sqlfile import load_dbapi_queries, load_queries

LOCKS_SQL = Path(__file__).with_name("locks.sql")
_engines: dict[tuple[int, str], Engine] = {}


def sa_url(url: str) -> URL:
    """A libpq URL as SQLAlchemy's psycopg2 URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg2")


def engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default DATABASE_URL), created on first use."""
    url = url or settings().database_url
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = sa.create_engine(
            sa_url(url),
            pool_size=2,
            max_overflow=2,
            pool_pre_ping=True,  # a connection killed between jobs is replaced, not used
            connect_args={"application_name": f"carsales-{os.environ.get('SERVICE_NAME', 'cli')}"},
        )
    return _engines[key]


def dispose_all() -> None:
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name (same in every process and version)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def xact_lock(conn, name: str) -> None:
    """Hold an advisory lock named `name` until the current transaction ends.

    `conn` is a SQLAlchemy Connection or a DB-API cursor (ingest's COPY and setup use psycopg2's)."""
    _advisory_lock(conn, "xact_lock", name)


def connection_lock(conn, name: str) -> None:
    """Hold an advisory lock named `name` across transactions, until the connection closes
    (setup's, which runs statements that cannot run inside one transaction)."""
    _advisory_lock(conn, "connection_lock", name)


def _advisory_lock(conn, query: str, name: str) -> None:
    params = {"key": advisory_key(name)}
    if isinstance(conn, Connection):
        conn.execute(sa.text(load_queries(LOCKS_SQL)[query]), params)
    else:
        conn.execute(load_dbapi_queries(LOCKS_SQL)[query], params)


def dbapi_cursor(conn: Connection):
    """A psycopg2 cursor on the SQLAlchemy connection's own connection (same transaction): for COPY
    and for statements composed with psycopg2.sql."""
    return conn.connection.dbapi_connection.cursor()


def act_as_pipeline(conn: Connection) -> None:
    """Act as the `pipeline` role for the rest of this transaction, when the session may."""
    conn.execute(sa.text(load_queries(Path(__file__).with_name("roles.sql"))["act_as_pipeline"]))
