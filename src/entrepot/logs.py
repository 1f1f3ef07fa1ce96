"""Structured logging: every line carries the request id, project, token and job in scope."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
project_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("project_id", default=None)
token_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("token_id", default=None)
job_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

_FIELDS = (("request_id", request_id_var), ("project", project_var), ("token", token_var), ("job", job_var))


class ContextFilter(logging.Filter):
    """Copies the context variables onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS:
            setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, _ in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(
            f"{n}={getattr(record, n)}" for n, _ in _FIELDS if getattr(record, n, None) is not None
        )
        base = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if ctx:
            base += f" [{ctx}]"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("entrepot")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


@contextmanager
def job_log_context(job_id: int, project_id: int) -> Iterator[None]:
    tokens = (job_var.set(job_id), project_var.set(project_id))
    try:
        yield
    finally:
        job_var.reset(tokens[0])
        project_var.reset(tokens[1])
