"""The catalog database: engine creation, SQLite tuning, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout; write transactions
start with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing
when a read lock is upgraded. The writers of one process also queue on a lock of their own
first: SQLite's busy handler polls with sleeps of up to 100 ms, so under load (dozens of
threads putting small objects) a writer that lost the race slept well past the moment the
lock was free (p99 430 ms against 70 ms for 32 threads, at the same throughput). Read-only
sessions use a deferred ``BEGIN`` and never block writers. PostgreSQL (scale-out) uses plain
transactions and ``FOR UPDATE SKIP LOCKED``.

A module that keeps something derived from catalog rows in memory (the S3 credential cache)
registers with :meth:`Catalog.on_commit` to hear, right after a transaction of this process
commits, which rows of the tables it watches were changed.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MethodType
from typing import Any, Literal

from sqlalchemy import Connection, CursorResult, Engine, Executable, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from entrepot.core.errors import Unavailable

log = logging.getLogger("entrepot.catalog")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_READONLY = "entrepot_readonly"
_CHANGES = "entrepot_changes"  # Session.info: what the open transaction changed in watched tables
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for the database lock
# Connections an SQLite catalog keeps open: at least as many as threads that may use one at once
# (anyio's worker threads, 40 by default, the job workers and the maintenance thread). SQLAlchemy's
# default pool (5 kept, 10 more opened and closed around each use) made most requests under load
# open a connection and run the PRAGMAs of _tune_sqlite, and queued the rest.
SQLITE_POOL_SIZE = 64
SQLITE_POOL_OVERFLOW = 64


ChangeKind = Literal["insert", "update", "delete"]


@dataclass(frozen=True)
class RowChange:
    """One row a committed transaction inserted, updated or deleted through the ORM.

    ``values`` are the row's column attributes as the session held them (after an update, the
    new values; a deleted row's, its last ones); ``attributes`` names those an update changed
    (every loaded one for an insert or a delete).
    """

    table: str
    kind: ChangeKind
    values: Mapping[str, Any]
    attributes: frozenset[str]


@dataclass(frozen=True)
class Committed:
    """What one committed transaction changed in the tables a listener watches.

    ``bulk`` names the tables changed by ``insert()``/``update()``/``delete()`` statements run
    through the session, whose rows are unknown: a listener treats every row as changed.
    Changes made with raw SQL text, or outside a session, are not reported.
    """

    rows: tuple[RowChange, ...]
    bulk: frozenset[str]


CommitListener = Callable[[Committed], None]


@dataclass(frozen=True)
class _Strong:
    """A listener held strongly, called like a weak reference."""

    listener: CommitListener

    def __call__(self) -> CommitListener:
        return self.listener


def affected(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in ``session``; the number of rows it changed."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return result.rowcount


class Catalog:
    """One catalog database shared by every process of an installation."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _tune_sqlite(self.engine)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = self.engine.execution_options(**{_READONLY: True})
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)
        self._listeners: list[tuple[frozenset[str], Callable[[], CommitListener | None]]] = []
        self._watched: frozenset[str] = frozenset()
        self._listeners_lock = threading.Lock()
        # the write transactions of this process, one at a time (SQLite only; re-entrant, so a
        # thread nesting two write sessions meets SQLite's own lock as before, not a deadlock)
        self._writers = threading.RLock() if self.dialect == "sqlite" else None
        for factory in (self._write, self._read):
            event.listen(factory, "after_flush", self._collect_rows)
            event.listen(factory, "do_orm_execute", self._collect_bulk)
            event.listen(factory, "after_commit", self._dispatch)
            event.listen(factory, "after_transaction_end", _forget_changes)

    def change_marker(self) -> tuple[int, ...] | None:
        """A value that changes when any process commits to this catalog, read without a query:
        for SQLite the size and modification time (ns) of its database and WAL files (a commit
        appends to the WAL; a checkpoint rewrites the database). None for PostgreSQL, whose
        submissions are announced by NOTIFY, and for an in-memory database."""
        database = self.url.database if self.dialect == "sqlite" else None
        if not database or database == ":memory:":
            return None
        marker: list[int] = []
        for path in (database, f"{database}-wal"):
            try:
                st = os.stat(path)
            except OSError:
                marker += [0, 0]
                continue
            marker += [st.st_size, st.st_mtime_ns]
        return tuple(marker)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        factory = self._read if readonly else self._write
        writers = None if readonly else self._writers
        if writers is not None and not writers.acquire(timeout=SQLITE_BUSY_TIMEOUT):
            raise Unavailable(
                f"the catalog database stayed locked by other writers of this process for "
                f"{SQLITE_BUSY_TIMEOUT:.0f} s",
                code="catalog.unavailable",
            )
        try:
            with factory.begin() as session:
                yield session
        except OperationalError as exc:
            raise Unavailable(
                f"the catalog database is not reachable: {exc.orig}", code="catalog.unavailable"
            ) from exc
        finally:
            if writers is not None:
                writers.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction on a plain connection: Core statements, rows instead of ORM objects.

        For the look-ups nearly every request makes (project, space, object): it costs a fraction
        of ``session(readonly=True)`` (no session, identity map or ORM events; 70 µs against
        200 µs for the same statement on SQLite).
        """
        try:
            with self._read_engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise Unavailable(
                f"the catalog database is not reachable: {exc.orig}", code="catalog.unavailable"
            ) from exc

    def on_commit(self, listener: CommitListener, *, tables: frozenset[str]) -> None:
        """Call ``listener`` after each transaction of this catalog object that changed a row of
        ``tables`` commits, in the committing thread, before the ``session()`` block returns.

        A bound method is held weakly (it stops being called once its object is gone); an
        exception it raises is logged, never raised (the transaction is committed).
        """
        ref: Callable[[], CommitListener | None] = (
            weakref.WeakMethod(listener) if isinstance(listener, MethodType) else _Strong(listener)
        )
        with self._listeners_lock:
            self._listeners = [(t, r) for t, r in self._listeners if r() is not None]
            self._listeners.append((frozenset(tables), ref))
            self._watched = frozenset().union(*(t for t, _ in self._listeners))

    def _collect_rows(self, session: Session, _context: Any) -> None:
        watched = self._watched
        if not watched:
            return
        found: list[RowChange] = []
        kinds: tuple[tuple[ChangeKind, Iterable[object]], ...] = (
            ("insert", session.new),
            ("update", session.dirty),
            ("delete", session.deleted),
        )
        for kind, instances in kinds:
            for instance in instances:
                state = inspect(instance)
                table = getattr(state.mapper.local_table, "name", None)
                if table not in watched:
                    continue
                columns = [attr.key for attr in state.mapper.column_attrs]
                values = {key: state.dict[key] for key in columns if key in state.dict}
                if kind == "update":
                    changed = frozenset(key for key in columns if state.attrs[key].history.has_changes())
                    if not changed:
                        continue  # touched, not modified
                else:
                    changed = frozenset(values)
                found.append(RowChange(table, kind, values, changed))
        if found:
            session.info.setdefault(_CHANGES, ([], set()))[0].extend(found)

    def _collect_bulk(self, state: ORMExecuteState) -> None:
        watched = self._watched
        if not watched or not (state.is_update or state.is_delete or state.is_insert):
            return
        table = getattr(getattr(state.statement, "table", None), "name", None)
        if table is None or table in watched:
            state.session.info.setdefault(_CHANGES, ([], set()))[1].add(table or "*")

    def _dispatch(self, session: Session) -> None:
        collected = session.info.pop(_CHANGES, None)
        if collected is None:
            return
        rows, bulk = collected
        for tables, ref in self._listeners:
            listener = ref()
            if listener is None:
                continue
            mine = tuple(r for r in rows if r.table in tables)
            bulk_mine = frozenset(b for b in bulk if b == "*" or b in tables)
            if not (mine or bulk_mine):
                continue
            try:
                listener(Committed(mine, bulk_mine))
            except Exception:
                log.exception("a catalog commit listener failed")

    def ping(self) -> None:
        """Raise ``Unavailable`` unless the catalog answers a trivial query."""
        with self.session(readonly=True) as s:
            s.execute(text("SELECT 1"))

    def migrate(self) -> str:
        """Apply every pending Alembic migration; return the resulting revision."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            if self.is_postgres:
                # Serialise concurrent start-ups (serve + workers) on one cluster.
                conn.execute(text("SELECT pg_advisory_xact_lock(7368451)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return MigrationContext.configure(conn).get_current_revision() or ""

    def dispose(self) -> None:
        self.engine.dispose()


def _forget_changes(session: Session, transaction: SessionTransaction) -> None:
    """A transaction ended without a commit (a commit dispatched and dropped them already)."""
    if transaction.parent is None:  # the outermost one: a savepoint's end leaves them to it
        session.info.pop(_CHANGES, None)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000:.0f}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READONLY) else "BEGIN IMMEDIATE")
