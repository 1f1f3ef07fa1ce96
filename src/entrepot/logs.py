"""Structured logging: every line carries the request id, project, token and job in scope.

Messages carry what clients send (paths, names, keys), so both formats escape control
characters in every field: a request cannot end a log line early and forge the next one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
project_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("project_id", default=None)
token_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("token_id", default=None)
job_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

_FIELDS = (("request_id", request_id_var), ("project", project_var), ("token", token_var), ("job", job_var))


# C0 controls, DEL, C1 controls (NEL among them) and the Unicode line and paragraph separators:
# everything a terminal, a log shipper or str.splitlines() may take as the end of a line
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(value: object) -> str:
    """``value`` as text with control characters escaped (``\\n``, ``\\x00``, ``\\u2028``): one line."""
    return _CONTROL_RE.sub(_escape_char, str(value))


class ContextFilter(logging.Filter):
    """Copies the context variables onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS:
            setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": escape(record.name),
            "message": escape(record.getMessage()),
        }
        for name, _ in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value if isinstance(value, int) else escape(value)
        if record.exc_info:  # a traceback keeps its lines: JSON encodes them inside one string
            out["exception"] = self.formatException(record.exc_info)
        # ensure_ascii: no raw control or separator character can reach the output line
        return json.dumps(out, default=str, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(
            f"{n}={escape(getattr(record, n))}" for n, _ in _FIELDS if getattr(record, n, None) is not None
        )
        message = escape(record.getMessage())
        base = f"{self.formatTime(record)} {record.levelname:<7} {escape(record.name)}: {message}"
        if ctx:
            base += f" [{ctx}]"
        if record.exc_info:
            # the traceback follows on indented lines (its own line breaks kept, anything else
            # escaped), so only a record's first line ever starts at the left margin
            lines = self.formatException(record.exc_info).split("\n")
            base += "".join(f"\n    {escape(line)}" for line in lines)
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
