"""Running statements: quoting, a time limit and cancellation by interrupt, DuckDB errors as domain errors.

A statement runs on a cursor of a lake. A watchdog thread interrupts the cursor (only that
cursor; other cursors of the lake keep running) when the time limit passes or the cancel event
is set; the interrupt surfaces as ``TimeLimitExceeded`` or ``JobCancelled``. Any other DuckDB
error becomes a domain error whose message is DuckDB's first line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import duckdb

from entrepot.core import errors as E

Params = Sequence[Any] | dict[str, Any] | None
_POLL = 0.05  # how often a watchdog looks at the cancel event (seconds)


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier: double quotes, inner quotes doubled."""
    if not name or "\x00" in name:
        raise E.InvalidInput(f"invalid SQL identifier {name!r}: it must be non-empty without NUL characters")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as a SQL string literal: single quotes, inner quotes doubled."""
    if "\x00" in value:
        raise E.InvalidInput("a SQL string must not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def first_line(exc: BaseException) -> str:
    """DuckDB's message without the hints and context lines that follow it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: duckdb.Error) -> E.EntrepotError:
    """The domain error for a DuckDB error (interrupts are handled by ``execute``)."""
    details = {"duckdbError": type(exc).__name__, "detail": E.clip(str(exc), 1000)}
    message = E.clip(first_line(exc), 1000)
    text = str(exc).lower()
    if "database is locked" in text or (isinstance(exc, duckdb.TransactionException) and "conflict" in text):
        return E.Conflict(
            f"{message} (a concurrent change of the same data won; retry)",
            code="engine.conflict",
            details=details,
        )
    if isinstance(exc, duckdb.InternalException | duckdb.FatalException):
        return E.Unavailable(f"the engine failed: {message}", code="engine.failure", details=details)
    return E.InvalidInput(message, code="engine.invalidStatement", details=details)


class Watchdog:
    """Interrupts ``cursor`` once the deadline passes or ``cancel`` is set, unless stopped first."""

    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, timeout: float | None, cancel: threading.Event | None
    ):
        self.cursor = cursor
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.cancel = cancel
        self.reason: str | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="entrepot-statement-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            wait = _POLL if self.cancel is not None else None
            if self.deadline is not None:
                remaining = max(0.0, self.deadline - time.monotonic())
                wait = remaining if wait is None else min(wait, remaining)
            if self._done.wait(wait):
                return
            if self.cancel is not None and self.cancel.is_set():
                reason = "cancelled"
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                reason = "timeout"
            else:
                continue
            with self._lock:
                if not self._done.is_set():
                    self.reason = reason
                    self.cursor.interrupt()
            return

    def stop(self) -> None:
        with self._lock:
            self._done.set()
        self._thread.join()


def execute(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    params: Params = None,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> duckdb.DuckDBPyConnection:
    """Run ``sql`` on ``cursor`` within ``timeout`` seconds unless ``cancel`` is set; returns the cursor.

    Raises ``TimeLimitExceeded`` on timeout, ``JobCancelled`` on cancellation (or any other
    interrupt) and a translated domain error for anything DuckDB rejects.
    """
    if cancel is not None and cancel.is_set():
        raise E.JobCancelled("the job was cancelled")
    watchdog = Watchdog(cursor, timeout, cancel) if timeout is not None or cancel is not None else None
    try:
        return cursor.execute(sql, params)
    except duckdb.InterruptException as exc:
        reason = watchdog.reason if watchdog is not None else None
        if reason == "timeout":
            raise E.TimeLimitExceeded(
                f"the statement exceeded the time limit of {timeout:g} s and was stopped; "
                "make it cheaper (filter, aggregate, limit) or split it",
                details={"timeLimit": timeout},
            ) from exc
        if reason == "cancelled" or (cancel is not None and cancel.is_set()):
            raise E.JobCancelled("the job was cancelled") from exc
        raise E.JobCancelled("the statement was interrupted", code="engine.interrupted") from exc
    except duckdb.Error as exc:
        raise translate(exc) from exc
    finally:
        if watchdog is not None:
            watchdog.stop()


class Cancellable(Protocol):
    """What ``interrupt_on_cancel`` needs of a job context (``entrepot.core.jobs.JobContext``)."""

    cancelled: threading.Event

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]: ...


@contextmanager
def interrupt_on_cancel(ctx: Cancellable, cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Interrupt ``cursor`` the moment the job of ``ctx`` is cancelled, while the block runs.

    Raises ``JobCancelled`` at once if the job is already cancelled.
    """
    if ctx.cancelled.is_set():
        raise E.JobCancelled("the job was cancelled")
    unregister = ctx.on_cancel(cursor.interrupt)
    try:
        yield
    except duckdb.InterruptException as exc:
        if ctx.cancelled.is_set():
            raise E.JobCancelled("the job was cancelled") from exc
        raise
    finally:
        unregister()
