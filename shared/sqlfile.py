"""Named queries kept in .sql files beside the code that runs them.

A file holds blocks that start with a line `-- name: some_query`; `load_queries` returns
{"some_query": "SELECT ..."}. One small convention instead of SQL strings in Python.
Parameters are written `:name` everywhere (SQLAlchemy's text() style).
"""

import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg2

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load_queries(path: str | Path) -> dict[str, str]:
    text = Path(path).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not queries:
        raise ValueError(f"{path}: no '-- name: ...' blocks found")
    return queries


@cache
def load_dbapi_queries(path: str | Path) -> dict[str, str]:
    """The queries for a psycopg2 cursor (code that drives COPY itself): SQLAlchemy compiles each
    `:name` to `%(name)s` and doubles a literal `%`, so pass parameters (a dict) when running one."""
    dialect = psycopg2.dialect()
    return {name: str(sa.text(sql).compile(dialect=dialect)) for name, sql in load_queries(path).items()}
