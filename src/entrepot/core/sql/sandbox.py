"""Sandboxes: per-project DuckDB instances that run user SQL and can reach only that project's lake.

A sandbox is a DuckDB instance of its own (not the lake's internal instance, which loads
files for imports and exports). It is set up once and then locked:

1. threads, memory limit and a spill directory (``<data dir>/tmp/sql/<project>``) from the
   ``sql_*`` settings;
2. the spatial extension and the lake's own extensions are loaded from the bundled files;
3. the project's lake is attached as ``lake`` (read-only for the read-only sandbox); the
   PostgreSQL-compatibility macros (``pg_*``, see ``geometry.MACROS``) are temp macros, created
   on each cursor (cursors are pooled, so that happens once per connection);
4. ``allowed_directories`` = the lake's data directory and the spill directory, then
   ``enable_external_access = false`` and ``lock_configuration = true``: from here on no
   statement can read or write another file, reach the network, load an extension or change
   a setting, whatever the SQL parser lets through.

No other lake is ever attached, so another project's tables are unreachable by any name.
Statements reach a sandbox only after ``dialect.parse`` has checked them against its
allow-list; the lock above is the second wall, not the first.

Writes on a SQLite lake catalog take the lake's writer lock (shared with the lake's own
instance, see ``engine.lake``); reads run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine import extensions
from entrepot.core.engine.lake import ALIAS, Lake
from entrepot.core.engine.statements import quote_literal
from entrepot.core.sql.geometry import MACROS

if TYPE_CHECKING:
    from entrepot.config import Settings
    from entrepot.core.engine import Engine


IDLE_CURSORS = 16  # connections kept per sandbox for reuse (each has the macros already)


def value_macros(limit: int) -> list[str]:
    """``pg_repeat``/``pg_lpad``/``pg_rpad``: PostgreSQL's functions, refusing results over ``limit`` bytes.

    The dialect sends ``repeat``, ``lpad`` and ``rpad`` here: they build large strings from
    small arguments, and DuckDB holds string vectors (2,048 values) outside its memory limit.
    """
    message = quote_literal(
        f"the value is too large: repeat, lpad and rpad may build values of at most {limit:,} bytes "
        "(setting sql_max_value_bytes)"
    )
    per_char = "greatest(1, strlen(f) / greatest(1, length(f)))"
    return [
        f"CREATE OR REPLACE TEMP MACRO pg_repeat(s, n) AS CASE WHEN CAST(n AS DOUBLE) * strlen(s) > {limit} "
        f"THEN error({message}) ELSE repeat(s, n) END",
        *(
            f"CREATE OR REPLACE TEMP MACRO pg_{pad}(s, n, f) AS CASE WHEN CAST(n AS DOUBLE) * {per_char} "
            f"> {limit} THEN error({message}) ELSE {pad}(s, n, f) END"
            for pad in ("lpad", "rpad")
        ),
    ]


class TooManyQueries(E.TimeLimitExceeded):
    """No query slot of the project freed in time (CARTO answers 429 for this, as for timeouts)."""

    kind = E.Kind.BUSY


class Sandbox:
    """A locked DuckDB instance attached to one project's lake."""

    def __init__(self, settings: Settings, lake: Lake, *, read_only: bool = False):
        self.lake = lake
        self.read_only = read_only
        self.temp = settings.data_dir / "tmp" / "sql" / lake.project / ("ro" if read_only else "rw")
        self.temp.mkdir(parents=True, exist_ok=True)
        self._active: set[duckdb.DuckDBPyConnection] = set()
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._macros = [*MACROS, *value_macros(settings.sql_max_value_bytes)]
        self.conn = extensions.connect(
            config={
                "threads": settings.sql_threads,
                "memory_limit": settings.sql_memory_limit,
                "temp_directory": str(self.temp),
            }
        )
        try:
            self._set_up(settings)
        except duckdb.Error as exc:
            self.conn.close()
            raise E.Unavailable(
                f"the SQL sandbox of project {lake.project!r} cannot start: {exc}", code="sql.sandbox"
            ) from exc
        except BaseException:
            self.conn.close()
            raise

    def _set_up(self, settings: Settings) -> None:
        conn = self.conn
        extensions.load(conn, "spatial", "excel", *self.lake.extensions(settings))
        self.lake.attach(conn, settings, read_only=self.read_only)
        allowed = [f"{self.temp}/"]
        if "://" not in self.lake.data_path:
            allowed.append(str(Path(self.lake.data_path)) + "/")
        else:
            allowed.append(self.lake.data_path)
        conn.execute(f"SET allowed_directories = [{', '.join(quote_literal(a) for a in allowed)}]")
        conn.execute(f"SET GLOBAL max_expression_depth = {int(settings.sql_max_expression_depth)}")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self.conn.cursor()
        try:
            cur.execute(f"USE {ALIAS}")
            # temp macros belong to one connection (a cursor is one): created once per cursor
            for macro in self._macros:
                cur.execute(macro)
        except BaseException:
            cur.close()
            raise
        return cur

    @contextmanager
    def cursor(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the lake (``USE lake``, macros defined); writers hold the lake's writer lock.

        Cursors are pooled: one that comes back healthy (no open transaction) is reused.
        """
        if write and self.read_only:
            raise E.PermissionDenied("permission denied: this key may only read", code="sql.readOnly")
        with self.lake.write_lock() if write else nullcontext():
            with self._lock:
                if self._closed:
                    raise E.Unavailable("the SQL sandbox is closed", code="sql.closed")
                cur = self._idle.pop() if self._idle else None
            if cur is None:
                cur = self._new_cursor()
            with self._lock:
                self._active.add(cur)
            reusable = False
            try:
                yield cur
                reusable = True
            finally:
                with self._lock:
                    self._active.discard(cur)
                if reusable:
                    reusable = self._reset(cur)
                with self._lock:
                    if reusable and not self._closed and len(self._idle) < IDLE_CURSORS:
                        self._idle.append(cur)
                        cur = None
                if cur is not None:
                    with suppress(duckdb.Error):
                        cur.close()

    @staticmethod
    def _reset(cur: duckdb.DuckDBPyConnection) -> bool:
        """Make a returned cursor clean for the next user: no pending result, no open transaction."""
        try:
            cur.execute("SELECT 1").fetchall()
            return True
        except duckdb.Error:
            with suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            return False

    def close(self) -> None:
        """Interrupt running statements and close the instance."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            active = list(self._active)
            idle, self._idle = self._idle, []
        for cur in active:
            with suppress(duckdb.Error):
                cur.interrupt()
        for cur in idle:
            with suppress(duckdb.Error):
                cur.close()
        with suppress(duckdb.Error):
            self.conn.close()


class Sandboxes:
    """The sandboxes of this process: one read-write and one read-only per project, opened on demand."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self._boxes: dict[tuple[str, bool], Sandbox] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def slot(self, project: str, timeout: float | None) -> Iterator[None]:
        """One of the project's ``sql_max_concurrent_queries`` slots, waiting up to ``timeout`` seconds.

        Raises ``TooManyQueries`` when none frees in time.
        """
        with self._lock:
            slots = self._slots.get(project)
            if slots is None:
                slots = self._slots[project] = threading.BoundedSemaphore(
                    self.settings.sql_max_concurrent_queries
                )
        if not slots.acquire(timeout=timeout):
            raise TooManyQueries(
                "You are over platform's limits: too many SQL queries of this user run at once (at most "
                f"{self.settings.sql_max_concurrent_queries}, setting sql_max_concurrent_queries); retry "
                "when one has finished, or run long queries as batch jobs",
                code="sql.tooManyQueries",
                details={"context": "limit", "detail": "rate"},
            )
        try:
            yield
        finally:
            slots.release()

    def sandbox(self, project: str, *, read_only: bool = False) -> Sandbox:
        key = (project, read_only)
        box = self._boxes.get(key)
        if box is not None:
            return box
        lake = self.engine.lake(project)  # creates the lake (and its catalog) if needed
        with self._lock:
            if self._closed:
                raise E.Unavailable("the SQL engine is closed", code="sql.closed")
            box = self._boxes.get(key)
            if box is None:
                box = self._boxes[key] = Sandbox(self.settings, lake, read_only=read_only)
            return box

    def close_project(self, project: str) -> None:
        with self._lock:
            boxes = [self._boxes.pop(k) for k in list(self._boxes) if k[0] == project]
        for box in boxes:
            box.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            boxes = list(self._boxes.values())
            self._boxes.clear()
        for box in boxes:
            box.close()
