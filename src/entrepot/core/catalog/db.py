"""The catalog database: engine creation, SQLite tuning, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout; write transactions
start with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing
when a read lock is upgraded. Read-only sessions use a deferred ``BEGIN`` and never block
writers. PostgreSQL (scale-out) uses plain transactions and ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from entrepot.core.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_READONLY = "entrepot_readonly"


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
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _tune_sqlite(self.engine)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        factory = self._read if readonly else self._write
        try:
            with factory.begin() as session:
                yield session
        except OperationalError as exc:
            raise Unavailable(
                f"the catalog database is not reachable: {exc.orig}", code="catalog.unavailable"
            ) from exc

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


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READONLY) else "BEGIN IMMEDIATE")
