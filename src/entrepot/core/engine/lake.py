"""One DuckLake per project, each in a DuckDB instance of its own, managed by the ``Engine``.

Where a project's lake lives:

* catalog, embedded (default): the SQLite file ``<data_dir>/lakes/<project>/catalog.sqlite``
  (WAL journal, busy timeout);
* catalog, ``lake_catalog_url = postgresql://...``: one shared database, one PostgreSQL *schema*
  per project (DuckLake's ``METADATA_SCHEMA``), named ``lake_<project>``;
* data (Parquet): ``<data_dir>/lakes/<project>/data/``, or ``<lake_data_path>/<project>/``.

The lake is attached as ``lake`` and every cursor starts with ``USE lake``; buckets are its schemas.

Writers on a SQLite catalog are serialized per lake: SQLite cannot upgrade a DuckLake reader to
a writer while another writer commits (duckdb/ducklake#1309: "database is locked" even with a busy
timeout). ``Lake.cursor(write=True)`` (the default) takes the lake's writer lock on SQLite;
``write=False`` cursors run concurrently with everything. PostgreSQL catalogs need no lock.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

import entrepot.core.engine.extensions as extensions
from entrepot.core import errors as E
from entrepot.core.engine.statements import quote_ident, quote_literal

if TYPE_CHECKING:
    from entrepot.config import Settings

ALIAS = "lake"
_PROJECT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?\Z")
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_PG_IDENT_MAX = 63
_PG_SECRET = "entrepot_lake_catalog"  # the temporary secret holding a PostgreSQL lake catalog's password


def validate_project(name: str) -> str:
    """A project name safe as a directory and schema name; ``InvalidInput`` otherwise."""
    if not isinstance(name, str) or not _PROJECT_RE.match(name):
        raise E.InvalidInput(
            f"invalid project name {name!r} for a lake: use 1-64 letters, digits, '-' and '_', "
            "starting and ending with a letter or digit",
            code="engine.invalidProject",
        )
    return name


def pg_schema(project: str) -> str:
    """The PostgreSQL schema holding ``project``'s lake catalog (``lake_<project>``, hashed if too long)."""
    schema = f"lake_{project}"
    if len(schema) <= _PG_IDENT_MAX:
        return schema
    digest = hashlib.sha256(project.encode()).hexdigest()[:12]
    return f"{schema[: _PG_IDENT_MAX - 13]}_{digest}"


def libpq_conninfo(url: str, *, password: bool = True) -> str:
    """A libpq key/value connection string from a ``postgresql[+driver]://`` URL.

    ``password=False`` leaves the password out (see ``libpq_password``): DuckDB shows attach
    strings in ``duckdb_databases()``, so the lake's password goes into a secret instead.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:
        raise E.InvalidInput(f"lake_catalog_url is not a valid URL: {exc}", code="engine.config") from exc
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise E.InvalidInput(
            "lake_catalog_url must be a postgresql:// URL (or unset for SQLite files)", code="engine.config"
        )
    pairs: dict[str, str | int | None] = {
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
    }
    for key, value in parsed.query.items():
        pairs[key] = value if isinstance(value, str) else value[-1]

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    if not password:
        pairs.pop("password", None)
    return " ".join(f"{k}={quote(str(v))}" for k, v in pairs.items() if v not in (None, ""))


def libpq_password(url: str) -> str | None:
    """The password of a ``postgresql://`` URL (user info or ``?password=``), if any."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    query = parsed.query.get("password")
    return parsed.password or (query if isinstance(query, str) or query is None else query[-1])


class Lake:
    """A project's DuckLake attached to a DuckDB instance of its own; hands out per-thread cursors."""

    def __init__(self, settings: Settings, project: str):
        self.project = validate_project(project)
        self.root = settings.data_dir / "lakes" / project
        self.postgres = settings.lake_catalog_url is not None
        base = settings.lake_data_path
        self.data_path = f"{base.rstrip('/')}/{project}/" if base else f"{self.root / 'data'}/"
        self._write_lock = threading.Lock()
        self._loaded: set[str] = set()
        self._closed = False
        self._active: set[duckdb.DuckDBPyConnection] = set()
        self._active_lock = threading.Lock()
        temp = settings.data_dir / "tmp" / "engine" / project
        temp.mkdir(parents=True, exist_ok=True)  # DuckDB creates only the last level when it spills
        self.conn = extensions.connect(
            config={
                "threads": settings.engine_threads,
                "memory_limit": settings.engine_memory_limit,
                "temp_directory": str(temp),
                # Nothing relies on storage order (reads that page order by key, then rowid), and
                # without it DuckDB streams large COPY exports instead of buffering them: a
                # 10M-row export stays at the process's baseline memory instead of +230 MB.
                "preserve_insertion_order": False,
            }
        )
        try:
            self._attach(settings)
        except BaseException:
            self.conn.close()
            raise

    def _attach(self, settings: Settings) -> None:
        self.load(*self.extensions(settings))
        if "://" not in self.data_path:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)
        if not self.postgres:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.attach(self.conn, settings)
        except duckdb.Error as exc:
            raise E.Unavailable(
                f"the lake of project {self.project!r} cannot be opened: {exc}", code="engine.lakeUnavailable"
            ) from exc

    def extensions(self, settings: Settings) -> list[str]:
        """The extensions an instance needs to attach this lake."""
        names = ["ducklake", "postgres_scanner" if self.postgres else "sqlite_scanner"]
        if self.data_path.startswith(("s3://", "http://", "https://", "gcs://", "gs://", "r2://")):
            names.append("httpfs")
        return names

    def attach(self, conn: duckdb.DuckDBPyConnection, settings: Settings, *, read_only: bool = False) -> None:
        """Open this lake in ``conn`` as ``lake``.

        A PostgreSQL catalog's password goes into a temporary DuckDB secret that the attach
        names, never into the attach string (which ``duckdb_databases()`` shows); secrets are
        shown redacted.
        """
        if self.postgres:
            assert settings.lake_catalog_url is not None
            password = libpq_password(settings.lake_catalog_url)
            if password:
                conn.execute(
                    f"CREATE OR REPLACE TEMPORARY SECRET {_PG_SECRET} "
                    f"(TYPE postgres, PASSWORD {quote_literal(password)})"
                )
        conn.execute(self.attach_statement(settings, read_only=read_only))

    def attach_statement(self, settings: Settings, *, read_only: bool = False) -> str:
        """``ATTACH … AS lake``: the statement that opens this lake (no password: see ``attach``)."""
        if self.postgres:
            assert settings.lake_catalog_url is not None
            target = f"ducklake:postgres:{libpq_conninfo(settings.lake_catalog_url, password=False)}"
            options = f"METADATA_SCHEMA {quote_literal(pg_schema(self.project))}"
            if libpq_password(settings.lake_catalog_url):
                options += f", METADATA_PARAMETERS MAP {{'SECRET': '{_PG_SECRET}'}}"
        else:
            target = f"ducklake:sqlite:{self.root / 'catalog.sqlite'}"
            options = f"META_JOURNAL_MODE 'WAL', META_BUSY_TIMEOUT {_SQLITE_BUSY_TIMEOUT_MS}"
        if read_only:
            options += ", READ_ONLY"
        return (
            f"ATTACH {quote_literal(target)} AS {ALIAS} "
            f"(DATA_PATH {quote_literal(self.data_path)}, {options})"
        )

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """The lake's writer lock (SQLite catalogs; a no-op on PostgreSQL), for writers of other instances."""
        with self._write_lock if not self.postgres else nullcontext():
            yield

    def load(self, *names: str) -> None:
        """Load bundled extensions (e.g. ``spatial``, ``excel``) into this lake's instance, once."""
        missing = [n for n in names if n not in self._loaded]
        if missing:
            extensions.load(self.conn, *missing)
            self._loaded.update(missing)

    @contextmanager
    def cursor(self, *, write: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this thread on the lake (``USE lake`` done), closed (rolled back if open) after use.

        ``write=True`` holds the lake's writer lock on a SQLite catalog for the cursor's lifetime.
        """
        with self._write_lock if write and not self.postgres else nullcontext():
            with self._active_lock:
                if self._closed:
                    raise E.Unavailable(
                        f"the lake of project {self.project!r} is closed", code="engine.closed"
                    )
                cur = self.conn.cursor()
                self._active.add(cur)
            try:
                cur.execute(f"USE {ALIAS}")
                yield cur
            finally:
                with self._active_lock:
                    self._active.discard(cur)
                cur.close()

    def close(self) -> None:
        """Interrupt running statements, detach and close the DuckDB instance."""
        with self._active_lock:
            if self._closed:
                return
            self._closed = True
            active = list(self._active)
        for cur in active:
            with suppress(duckdb.Error):
                cur.interrupt()
        locked = self._write_lock.acquire(timeout=10)  # lets an interrupted writer roll back first
        try:
            with suppress(duckdb.Error):
                self.conn.execute(f"DETACH {ALIAS}")
            self.conn.close()
        finally:
            if locked:
                self._write_lock.release()


class Engine:
    """The lakes of this process: opened on first use, cached, closed together."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lakes: dict[str, Lake] = {}
        self._lock = threading.Lock()
        self._closed = False
        # called with the project name before a lake closes (other instances attached to it close too)
        self.on_close_lake: list[Callable[[str], None]] = []

    def lake(self, project: str) -> Lake:
        """The lake of ``project``, created (catalog and data directory) on first use."""
        validate_project(project)
        lake = self._lakes.get(project)
        if lake is not None:
            return lake
        with self._lock:
            if self._closed:
                raise E.Unavailable("the engine is closed", code="engine.closed")
            lake = self._lakes.get(project)
            if lake is None:
                lake = self._lakes[project] = Lake(self.settings, project)
            return lake

    @contextmanager
    def cursor(self, project: str, *, write: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Shortcut for ``engine.lake(project).cursor(write=...)``."""
        with self.lake(project).cursor(write=write) as cur:
            yield cur

    def ping(self) -> None:
        """Check that DuckDB starts and the lake extensions load; ``Unavailable`` otherwise."""
        catalog = "postgres_scanner" if self.settings.lake_catalog_url else "sqlite_scanner"
        conn = extensions.connect()
        try:
            extensions.load(conn, "ducklake", catalog)
            row = conn.execute("SELECT 1").fetchone()
            if row != (1,):
                raise E.Unavailable(f"the engine answered {row!r} to SELECT 1", code="engine.unavailable")
        except duckdb.Error as exc:
            raise E.Unavailable(f"the engine does not answer: {exc}", code="engine.unavailable") from exc
        finally:
            conn.close()

    def close_lake(self, project: str) -> None:
        """Close the lake of ``project`` if it is open (it reopens on next use)."""
        for callback in self.on_close_lake:
            callback(project)
        with self._lock:
            lake = self._lakes.pop(project, None)
        if lake is not None:
            lake.close()

    def drop_lake(self, project: str) -> None:
        """Delete the lake of ``project`` for good: its catalog (file or schema) and its local data."""
        validate_project(project)
        self.close_lake(project)
        if self.settings.lake_catalog_url:
            _drop_pg_schema(self.settings.lake_catalog_url, pg_schema(project))
        if self.settings.lake_data_path and "://" not in self.settings.lake_data_path:
            shutil.rmtree(Path(self.settings.lake_data_path) / project, ignore_errors=True)
        shutil.rmtree(self.settings.data_dir / "lakes" / project, ignore_errors=True)
        shutil.rmtree(self.settings.data_dir / "tmp" / "engine" / project, ignore_errors=True)

    def close(self) -> None:
        """Close every lake; the engine refuses new lakes afterwards."""
        with self._lock:
            self._closed = True
            lakes = list(self._lakes.values())
            self._lakes.clear()
        for lake in lakes:
            lake.close()


def _drop_pg_schema(url: str, schema: str) -> None:
    import psycopg

    try:
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    except psycopg.Error as exc:
        raise E.Unavailable(f"could not drop the lake catalog schema {schema!r}: {exc}") from exc
