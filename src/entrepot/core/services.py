"""The services one entrepot process runs on: settings, catalog, job queue, engine.

The composition root of the core: faces, the CLI and workers all reach the core through one
:class:`Services` object. Nothing here knows whether it runs embedded (SQLite, threads) or
scaled out (PostgreSQL, worker processes): that is decided by the settings alone.

Core modules take a ``Services`` (and handlers a ``JobContext[Services]``) but import this
module only for type checking; the job machinery below it (``core/jobs``) is generic over the
services it hands to handlers, so it never imports this module at all.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from entrepot.config import Settings
from entrepot.core.catalog import Catalog
from entrepot.core.jobs import JobQueue, JobRegistry, register_builtin

if TYPE_CHECKING:
    from entrepot.core.blobs import BlobStore
    from entrepot.core.engine import Engine
    from entrepot.core.jobs.worker import WorkerPool
    from entrepot.core.sql.sandbox import Sandboxes

log = logging.getLogger("entrepot")

# Core modules whose ``register_jobs(registry)`` adds the job kinds every worker runs.
CORE_JOB_MODULES = (
    "entrepot.core.files.jobs",
    "entrepot.core.tables.jobs",
    "entrepot.core.objects.jobs",
    "entrepot.core.sql.batch",
    "entrepot.core.exports.jobs",
    "entrepot.core.imports.jobs",
    "entrepot.core.viz_exports",
    "entrepot.core.organizations",
    "entrepot.core.imports.sync",
    "entrepot.core.access_keys",
    "entrepot.core.maps.layergroups",
)


class Services:
    def __init__(self, settings: Settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self.jobs = JobQueue(
            catalog,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            poll_interval=settings.job_poll_interval,
        )
        self.registry: JobRegistry[Services] = JobRegistry()
        register_builtin(self.registry)
        for module_name in (*CORE_JOB_MODULES, *settings.plugins):
            module = importlib.import_module(module_name)
            register = getattr(module, "register_jobs", None)
            if register is not None:
                register(self.registry)
        self.workers: WorkerPool | None = None
        # one lock per lazily built part, never held while another part is built
        self._engine_lock = threading.Lock()
        self._sql_lock = threading.Lock()
        self._engine: Engine | None = None
        self._sql: Sandboxes | None = None

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(settings.effective_catalog_url)
        if migrate:
            catalog.migrate()
        return cls(settings, catalog)

    @property
    def engine(self) -> Engine:
        """The lakes of this process, created on first use (exactly once, whichever thread asks)."""
        engine = self._engine
        if engine is None:
            from entrepot.core.engine import Engine

            with self._engine_lock:
                if self._engine is None:
                    self._engine = Engine(self.settings)
                engine = self._engine
        return engine

    @property
    def sql(self) -> Sandboxes:
        """The SQL sandboxes of this process (one locked DuckDB instance per project and mode)."""
        sandboxes = self._sql
        if sandboxes is None:
            from entrepot.core.sql.sandbox import Sandboxes

            engine = self.engine  # its own lock, taken and released before ours: never nested
            with self._sql_lock:
                if self._sql is None:
                    self._sql = Sandboxes(self.settings, engine)
                    engine.on_close_lake.append(self._sql.close_project)
                sandboxes = self._sql
        return sandboxes

    @cached_property
    def blobs(self) -> BlobStore:
        """The blob store of this installation (``blob_url``)."""
        from entrepot.core.blobs import open_store

        return open_store(self.settings.effective_blob_url, self.settings)

    @cached_property
    def secret_key(self) -> bytes:
        """The installation secret for signed URLs: from settings, else generated once in the data dir."""
        if self.settings.secret_key is not None:
            return self.settings.secret_key.get_secret_value().encode()
        return _load_or_create_secret(self.settings.data_dir / "secret.key")

    @cached_property
    def verification_keys(self) -> tuple[bytes, ...]:
        """Keys a signed URL may be signed with: the current secret first, then former ones."""
        former = tuple(k.get_secret_value().encode() for k in self.settings.previous_secret_keys)
        return (self.secret_key, *former)

    def start_workers(self, count: int, *, name: str = "worker") -> WorkerPool:
        from entrepot.core.jobs.worker import WorkerPool

        self.workers = WorkerPool(self, count, name=name)
        self.workers.start()
        return self.workers

    def close(self) -> None:
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self._sql is not None:
            self._sql.close()
        if self._engine is not None:
            self._engine.close()
        self.catalog.dispose()


def _load_or_create_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # first writer wins; a concurrent starter reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
