"""Statements: quoting, time limits and cancellation by interrupt, DuckDB errors as domain errors."""

from __future__ import annotations

import threading
import time

import pytest

from entrepot.core import errors as E
from entrepot.core.engine import Engine, execute, interrupt_on_cancel, quote_ident, quote_literal

LONG_QUERY = "SELECT count(*) FROM range(10000000000) a"


def test_quote_ident_and_literal() -> None:
    assert quote_ident("in.c-main") == '"in.c-main"'
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"
    with pytest.raises(E.InvalidInput):
        quote_ident("")
    with pytest.raises(E.InvalidInput):
        quote_literal("nul\x00")


def test_quoted_identifiers_round_trip_through_duckdb(engine: Engine) -> None:
    name = 'odd "name" -- ; drop'
    with engine.lake("acme").cursor() as cur:
        execute(cur, f"CREATE TABLE {quote_ident(name)} AS SELECT {quote_literal(name)} AS v")
        assert execute(cur, f"SELECT v FROM {quote_ident(name)}").fetchall() == [(name,)]


def test_timeout_interrupts_a_long_query_and_the_lake_stays_usable(engine: Engine) -> None:
    with engine.lake("acme").cursor() as cur:
        started = time.monotonic()
        with pytest.raises(E.TimeLimitExceeded, match=r"time limit of 0\.3 s") as info:
            execute(cur, LONG_QUERY, timeout=0.3)
        assert time.monotonic() - started < 5
        assert info.value.code == "engine.timeout"
        assert isinstance(info.value, E.InvalidInput)
        assert execute(cur, "SELECT 42", timeout=0.3).fetchone() == (42,)
    with engine.lake("acme").cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 1 AS a")
        assert cur.execute("SELECT a FROM t").fetchall() == [(1,)]


def test_fast_statement_is_not_interrupted_later(engine: Engine) -> None:
    with engine.lake("acme").cursor() as cur:
        assert execute(cur, "SELECT 1", timeout=0.05).fetchone() == (1,)
        time.sleep(0.1)
        assert execute(cur, "SELECT count(*) FROM range(1000000)").fetchone() == (1000000,)


def test_cancel_event_interrupts_a_long_query(engine: Engine) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with engine.lake("acme").cursor() as cur:
        started = time.monotonic()
        with pytest.raises(E.JobCancelled):
            execute(cur, LONG_QUERY, timeout=60, cancel=cancel)
        assert time.monotonic() - started < 5
        with pytest.raises(E.JobCancelled):  # already cancelled: does not start
            execute(cur, "SELECT 1", cancel=cancel)
        assert execute(cur, "SELECT 1").fetchone() == (1,)


class _Ctx:
    """The cancellation part of a JobContext."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._callbacks: list = []

    def on_cancel(self, callback):  # type: ignore[no-untyped-def]
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def cancel(self) -> None:
        self.cancelled.set()
        for cb in list(self._callbacks):
            cb()


def test_interrupt_on_cancel_binds_a_job_context(engine: Engine) -> None:
    ctx = _Ctx()
    threading.Timer(0.3, ctx.cancel).start()
    with engine.lake("acme").cursor() as cur:
        started = time.monotonic()
        with pytest.raises(E.JobCancelled), interrupt_on_cancel(ctx, cur):
            execute(cur, LONG_QUERY)
        assert time.monotonic() - started < 5
        assert ctx._callbacks == []
        with pytest.raises(E.JobCancelled), interrupt_on_cancel(ctx, cur):
            pass


def test_real_job_context_interrupts(engine: Engine) -> None:
    from entrepot.core.jobs.registry import JobContext

    ctx = JobContext.__new__(JobContext)  # only the cancellation machinery is used
    ctx.cancelled = threading.Event()
    ctx._on_cancel = []
    ctx._lock = threading.Lock()
    threading.Timer(0.3, ctx.cancel).start()
    with engine.lake("acme").cursor() as cur, pytest.raises(E.JobCancelled), interrupt_on_cancel(ctx, cur):
        execute(cur, LONG_QUERY, cancel=ctx.cancelled)


def test_user_errors_become_invalid_input_with_duckdbs_first_line(engine: Engine) -> None:
    with engine.lake("acme").cursor() as cur:
        with pytest.raises(E.InvalidInput) as info:
            execute(cur, "SELECT no_such_column FROM range(3)")
        assert "no_such_column" in info.value.message
        assert "\n" not in info.value.message
        assert info.value.code == "engine.invalidStatement"
        with pytest.raises(E.InvalidInput, match=r"(?i)syntax"):
            execute(cur, "SELEC 1")
