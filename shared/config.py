"""Settings from environment variables (and a `.env` file), validated once at start.

Every setting is documented in `.env.example`. A missing or malformed value raises ConfigError
naming the variable, so a worker with a typo fails at start instead of mid-run.
"""

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from croniter import croniter
from dotenv import load_dotenv

from shared.errors import ConfigError

DEFAULTS = {
    "DATABASE_URL": "postgresql://postgres@localhost:5432/carsales",
    "REDIS_URL": "redis://localhost:6379/0",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "DATA_DIR": "data",
    "QUARANTINE_MAX_RATE": "0.01",
    "JOB_TIMEOUT": "3600",
    "RETRY_MAX": "3",
    "RETRY_INTERVALS": "2,10,30",
    "SCHEDULE_CRON": "0 2 * * *",
    "UI_HOST": "127.0.0.1",
    "UI_PORT": "8080",
    "TRANSFORM_CHUNK_ROWS": "100000",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "console")


@dataclass(frozen=True, repr=False)
class Settings:
    database_url: str
    setup_database_url: str
    redis_url: str
    log_level: str
    log_format: str
    data_dir: Path
    quarantine_max_rate: float
    job_timeout: int
    retry_max: int
    retry_intervals: tuple[int, ...]
    transform_chunk_rows: int
    pipeline_db_password: str | None
    analyst_db_password: str | None
    schedule_cron: str  # the daily batch's cron string, in UTC (services/scheduler)
    landing_dir: Path  # where the daily batch looks for files (default DATA_DIR/landing)
    ui_database_url: str
    ui_host: str
    ui_port: int
    ui_db_password: str | None

    def __repr__(self) -> str:
        # Printed or logged (a traceback, a debugger), settings show no password.
        shown = []
        for name, value in vars(self).items():
            if name.endswith("_password"):
                value = None if value is None else "***"
            elif name.endswith("_url"):
                value = mask_url(value)
            shown.append(f"{name}={value!r}")
        return f"Settings({', '.join(shown)})"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _get(env, name: str) -> str:
    value = env.get(name, DEFAULTS.get(name))
    if value is None or value.strip() == "":
        raise ConfigError(f"setting {name} is missing; set it in the environment or .env (see .env.example)")
    return value.strip()


def _url(env, name: str, schemes: tuple[str, ...]) -> str:
    value = _get(env, name)
    parts = urlsplit(value)
    if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(
            f"setting {name}={mask_url(value)!r} is malformed: expected {schemes[0]}://user@host:port/name"
        )
    if schemes[0] == "postgresql" and not parts.path.lstrip("/"):
        raise ConfigError(f"setting {name}={mask_url(value)!r} names no database")
    try:
        parts.port  # noqa: B018  (raises ValueError on a non-numeric port)
    except ValueError as exc:
        raise ConfigError(f"setting {name}={mask_url(value)!r} has a malformed port") from exc
    return value


def _same_database(admin_url: str, database_url: str) -> str:
    """DATABASE_URL with the admin URL's user and password: setup must migrate the very server and
    database the workers use, whatever host the admin URL names (a stale .env must not make setup
    migrate another server)."""
    admin, target = urlsplit(admin_url), urlsplit(database_url)
    credentials = admin.netloc.rpartition("@")[0]
    server = target.netloc.rpartition("@")[2]
    return urlunsplit(target._replace(netloc=f"{credentials}@{server}" if credentials else server))


def _cron(env, name: str) -> str:
    value = " ".join(_get(env, name).split())
    if not croniter.is_valid(value) or len(value.split()) != 5:
        raise ConfigError(
            f"setting {name}={value!r} is malformed: expected a cron string of five fields, like '0 2 * * *'"
        )
    return value


def _as_user(database_url: str, user: str, password: str | None) -> str:
    """DATABASE_URL's server and database, reached as another role (the web UI's `ui`)."""
    target = urlsplit(database_url)
    credentials = quote(user) + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(target._replace(netloc=f"{credentials}@{target.netloc.rpartition('@')[2]}"))


def _number(env, name: str, kind, low, high):
    raw = _get(env, name)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"setting {name}={raw!r} is malformed: expected a {kind.__name__}") from None
    if not low <= value <= high:
        raise ConfigError(f"setting {name}={raw!r} is out of range [{low}, {high}]")
    return value


def _choice(env, name: str, choices: tuple[str, ...], upper: bool = False) -> str:
    value = _get(env, name)
    value = value.upper() if upper else value.lower()
    if value not in choices:
        raise ConfigError(f"setting {name}={value!r} is malformed: expected one of {', '.join(choices)}")
    return value


def load_settings(env=None) -> Settings:
    """Read and validate all settings; `env` defaults to os.environ after loading `.env`."""
    if env is None:
        load_dotenv(override=False)
        env = os.environ
    db_schemes = ("postgresql", "postgres", "postgresql+psycopg2")
    database_url = _url(env, "DATABASE_URL", db_schemes)
    intervals_raw = _get(env, "RETRY_INTERVALS")
    try:
        intervals = tuple(int(part) for part in intervals_raw.split(","))
    except ValueError:
        raise ConfigError(
            f"setting RETRY_INTERVALS={intervals_raw!r} is malformed: expected seconds like 2,10,30"
        ) from None
    data_dir = Path(_get(env, "DATA_DIR")).resolve()
    return Settings(
        database_url=database_url,
        setup_database_url=_same_database(_url(env, "SETUP_DATABASE_URL", db_schemes), database_url)
        if env.get("SETUP_DATABASE_URL")
        else database_url,
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, upper=True),
        log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS),
        data_dir=data_dir,
        quarantine_max_rate=_number(env, "QUARANTINE_MAX_RATE", float, 0.0, 1.0),
        job_timeout=_number(env, "JOB_TIMEOUT", int, 1, 7 * 24 * 3600),
        retry_max=_number(env, "RETRY_MAX", int, 0, 100),
        retry_intervals=intervals,
        transform_chunk_rows=_number(env, "TRANSFORM_CHUNK_ROWS", int, 1, 100_000_000),
        pipeline_db_password=env.get("PIPELINE_DB_PASSWORD") or None,
        analyst_db_password=env.get("ANALYST_DB_PASSWORD") or None,
        schedule_cron=_cron(env, "SCHEDULE_CRON"),
        landing_dir=Path(env.get("LANDING_DIR") or data_dir / "landing").resolve(),
        # The web UI reads as the read-only `ui` role; unset, it reaches DATABASE_URL's database.
        ui_database_url=_url(env, "UI_DATABASE_URL", db_schemes)
        if env.get("UI_DATABASE_URL")
        else _as_user(database_url, "ui", env.get("UI_DB_PASSWORD") or None),
        ui_host=_get(env, "UI_HOST"),
        ui_port=_number(env, "UI_PORT", int, 1, 65535),
        ui_db_password=env.get("UI_DB_PASSWORD") or None,
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
