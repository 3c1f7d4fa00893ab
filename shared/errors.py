"""Exception types that decide how a failed job is treated.

BadInputError: the input itself is wrong (missing file, wrong header). Retrying cannot help,
so the stage fails at once. Transient errors (lost connections) are retried by RQ with backoff.
"""

import psycopg2
import redis
import sqlalchemy.exc


class PipelineError(Exception):
    """Base class of the pipeline's own errors."""


class ConfigError(PipelineError):
    """A setting is missing or malformed."""


class BadInputError(PipelineError):
    """The input cannot be processed as it is; never retried."""


class QualityCheckFailed(PipelineError):
    """A blocking data-quality check failed: nothing was published; never retried."""


class RunCancelled(PipelineError):
    """The run was cancelled by an operator."""


def is_transient(exc: BaseException) -> bool:
    """True when the error is a lost or refused connection, worth retrying later."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)
