"""Create the database and roles, then apply the versioned migrations in `migrations/`.

Plain SQL files named NNNN_description.sql, applied in order, each in its own transaction and
recorded with a checksum in meta.schema_migrations. Two setups at once serialize on an advisory
lock; a second run finds nothing to do. An applied file that was edited afterwards is an error.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import encrypt_password
from sqlalchemy.engine import make_url

from shared.db import connection_lock
from shared.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
GRANTS_SQL = Path(__file__).with_name("grants.sql")
LOCK_NAME = "carsales:setup"
ROLES = ("pipeline", "analyst", "ui")


@dataclass
class SetupResult:
    database_created: bool = False
    roles_created: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    version: str | None = None


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        found.append(Migration(version, name, path.read_text(encoding="utf-8")))
    return found


def _connect(url: str, dbname: str | None = None):
    parsed = make_url(url)
    conn = psycopg2.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=dbname or parsed.database,
        application_name="carsales-setup",
    )
    return conn


def ensure_database_and_roles(url: str, passwords: dict[str, str | None], log) -> tuple[bool, list[str]]:
    """Create the target database if it is missing and the role may, and the roles; returns whether
    the database was created and which roles were.

    Both are objects of the whole server, so every setup on it serializes on one lock taken in the
    maintenance database: the lock in the target database would let setups of two databases on one
    server alter the same role at once ("tuple concurrently updated").

    The data and the migrations hold non-ASCII text (the data set's "—" colours), so the database
    must be UTF8: it is created so from template0 (template1 may have another encoding), and an
    existing database in another encoding is refused before anything is written to it.
    """
    target = make_url(url).database
    conn = _connect(url, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            connection_lock(cur, LOCK_NAME)
            created = _ensure_database(cur, target, log)
            return created, ensure_roles(cur, passwords, log)
    finally:
        conn.close()


def _ensure_database(cur, target: str, log) -> bool:
    cur.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s", (target,))
    found = cur.fetchone()
    if found:
        if found[0] != "UTF8":
            raise ConfigError(
                f"database {target} has encoding {found[0]}; the pipeline needs UTF8: drop it or "
                "name another database in DATABASE_URL, and setup creates it as UTF8"
            )
        return False
    try:
        cur.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(target))
        )
    except psycopg2.errors.InsufficientPrivilege:
        log.warning("cannot create database; it must exist already", database=target)
        return False
    log.info("database created", database=target)
    return True


def ensure_roles(cur, passwords: dict[str, str | None], log) -> list[str]:
    """Create the pipeline, analyst and ui roles if missing; set their passwords when configured."""
    created = []
    for role in ROLES:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if not cur.fetchone():
            try:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                created.append(role)
            except psycopg2.errors.DuplicateObject:
                cur.connection.rollback()
        if passwords.get(role):
            # Hashed here, as psql's \password does (libpq, the server's password_encryption): the
            # statement, which the server may log, carries only the SCRAM verifier, never the password.
            verifier = encrypt_password(passwords[role], role, cur.connection)
            cur.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(sql.Identifier(role)), (verifier,)
            )
    if created:
        log.info("roles created", roles=created)
    return created


def migrate(url: str, passwords: dict[str, str | None], log) -> SetupResult:
    created, roles_created = ensure_database_and_roles(url, passwords, log)
    result = SetupResult(database_created=created, roles_created=roles_created)
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            connection_lock(cur, LOCK_NAME)
            conn.commit()
            database = sql.Identifier(make_url(url).database)
            cur.execute(
                sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO pipeline").format(database)
            )
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO analyst").format(database))
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO ui").format(database))
            conn.commit()
            # Objects are created as the pipeline role, so workers connecting as it own them.
            cur.execute("SET ROLE pipeline")
            cur.execute("CREATE SCHEMA IF NOT EXISTS meta")
            cur.execute(
                """CREATE TABLE IF NOT EXISTS meta.schema_migrations (
                       version    text PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            conn.commit()
            cur.execute("SELECT version, checksum FROM meta.schema_migrations")
            applied = dict(cur.fetchall())
            for migration in migrations():
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.version}_{migration.name}.sql was changed after it was "
                            "applied; add a new migration instead of editing an applied one"
                        )
                    continue
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO meta.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                conn.commit()
                result.applied.append(f"{migration.version}_{migration.name}")
                log.info("migration applied", version=migration.version, migration=migration.name)
            cur.execute(GRANTS_SQL.read_text(encoding="utf-8"))
            cur.execute("SELECT max(version) FROM meta.schema_migrations")
            result.version = cur.fetchone()[0]
            cur.execute("RESET ROLE")
            conn.commit()
    finally:
        conn.close()  # closing the session releases the advisory lock
    return result
