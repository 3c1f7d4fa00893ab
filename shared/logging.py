"""structlog set-up: one JSON object per line on stdout, with the run's context on every line.

Context (service, stage, run_id, job_id) lives in contextvars, bound once per job by
`bind_context`, so every log call below it carries the fields without passing them around.
"""

import logging
import re
import sys

import structlog
import structlog.tracebacks

# The password of a URL: after "scheme://user:" (the user may be empty, as in Redis URLs) up to "@".
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")


def mask_secrets(value):
    """The value with the password of every URL in it masked, through nested dicts and lists
    (an exception rendered as a dict carries its message several levels down)."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value) if "://" in value else value
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def _mask_secrets(_logger, _method, event_dict):
    """Mask the password of any URL that reaches a log line (exceptions included)."""
    return mask_secrets(event_dict)


# Tracebacks as structured data, without the frames' local variables: they can hold settings,
# connection URLs and source lines, none of which belongs in a log.
_dict_tracebacks = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class _MaintenanceAtDebug(logging.Filter):
    """RQ logs its periodic registry cleaning at INFO, every few seconds per worker; those lines say
    nothing happened, so they are DEBUG records here (shown only when LOG_LEVEL=DEBUG)."""

    ROUTINE = ("Worker %s: cleaning registries for queue: %s", "Worker %s: cleaning group registries")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.msg in self.ROUTINE:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def configure_logging(service: str, level: str = "INFO", fmt: str = "json", stream=None) -> None:
    """Configure structlog and the stdlib root logger (rq logs through it) for one process.

    Workers log to stdout (what `docker compose logs` shows); the CLI logs to stderr so that
    its stdout stays clean for `--json`.
    """
    stream = stream or sys.stdout
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    tail = [_dict_tracebacks, _mask_secrets] if fmt == "json" else [_mask_secrets]
    structlog.configure(
        processors=[*shared_processors, structlog.processors.StackInfoRenderer(), *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # rq and other libraries log through the stdlib: render their lines the same way.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared_processors, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("rq.worker", "rq.queue", "rq.job", "rq.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
    rq_worker = logging.getLogger("rq.worker")
    if not any(isinstance(f, _MaintenanceAtDebug) for f in rq_worker.filters):
        rq_worker.addFilter(_MaintenanceAtDebug())
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def bind_context(**fields) -> None:
    """Add fields (stage, run_id, job_id, source) to every later log line of this process."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})
