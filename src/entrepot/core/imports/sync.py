"""CARTO's sync tables (``api/v1/synchronizations``): a URL re-imported into one table on a schedule.

A synchronization is a catalog row (``carto_synchronizations``) and, while it runs, a durable
job of kind ``imports.sync``. The row is the schedule: ``run_at`` says when the next run is
due, so the schedule survives restarts. Runs are queued three ways, each by
:func:`_enqueue`, which writes the job and claims the row (a conditional ``UPDATE`` that
only succeeds while the row is idle: ``success`` or ``failure``) in one catalog transaction:

* creating a sync queues its first run;
* the maintenance sweep (:func:`sweep`, a periodic task every worker pool runs) queues every
  idle sync whose ``run_at`` has passed; several processes may sweep at once, and only one
  claim of a row succeeds, the others roll their job back;
* ``sync_now`` (and a bodiless update, what the SDK's ``force_sync()`` sends) queues a run when
  the sync is idle and its last run is at least ``carto_sync_min_interval`` seconds old.

A run (:func:`run`) downloads the URL through the URL guard with the source's last ``ETag``
and ``Last-Modified`` as conditional headers; a 304, or bytes whose SHA-256 equals the last
run's, change nothing (``ran_at`` moves, ``modified_at`` does not). Otherwise the file is read
by the Import API's code (``jobs.py``: ``fetch_url``, ``unpack``, ``read_layers``,
``create_table``; a sync keeps the first layer) and the table is replaced by
``CREATE OR REPLACE TABLE … AS`` and cartodbfied in one lake transaction: readers see the old
rows until it commits, and the table keeps its catalog row (uuid, privacy, the dataset's
attributes). The first run creates the table (private, named like an import's) instead.

A run acts as the token that created the sync; when that token is revoked or deleted (or
lost its create grant) the run fails with a message saying so and the sync is no longer
scheduled (``run_at`` null). Other failures count in ``retried_times`` and are retried at the
sync's interval up to ``carto_sync_max_retries`` times. The sync dies with its table (foreign
key); deleting a sync keeps the table, as CARTO does.

States: ``queued`` (a run is queued; also during the first run), ``syncing`` (a later run is
running), ``success``, ``failure`` (``created`` is never stored: a new sync is queued at once).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from entrepot.core import errors as E
from entrepot.core import urlguard
from entrepot.core.auth import Principal
from entrepot.core.catalog import CartoSynchronization, Job, Project, StoredTable, affected
from entrepot.core.clock import utcnow
from entrepot.core.engine.statements import interrupt_on_cancel
from entrepot.core.engine.tables import TableRef, table_names, transaction
from entrepot.core.imports import formats
from entrepot.core.imports.jobs import create_table, fetch_url, read_layers, unpack
from entrepot.core.imports.service import require_create
from entrepot.core.imports.sync_views import FAILURE, SyncView, table_syncs
from entrepot.core.imports.sync_views import sync_view as _view
from entrepot.core.imports.sync_views import table_uuids as _table_uuids
from entrepot.core.jobs import TERMINAL, JobContext, JobRegistry
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.catalog_sync import stored_table, sync_catalog
from entrepot.core.sql.namespace import DEFAULT_SCHEMA, ensure_default_bucket
from entrepot.core.sql.ownership import adopt
from entrepot.core.sql.service import Caller
from entrepot.core.tables.extract import job_principal

if TYPE_CHECKING:
    from entrepot.core.services import Services

log = logging.getLogger("entrepot.imports")

KIND = "imports.sync"
SWEEP = "imports.sync_sweep"
PARAMS_VERSION = 1
DEFAULT_INTERVAL = 3600
PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
SWEEP_BATCH = 100

QUEUED = "queued"
SYNCING = "syncing"
SUCCESS = "success"
IDLE = (SUCCESS, FAILURE)
BUSY = (QUEUED, SYNCING)
REVOKED = "synchronizations.keyRevoked"
INTERRUPTED = "synchronizations.interrupted"


@dataclass(frozen=True)
class SyncOptions:
    """What creating a sync table takes (CARTO's names)."""

    url: str
    interval: int | None = None  # seconds; None: CARTO's default, 3600
    table_name: str | None = None
    type_guessing: bool = True
    quoted_fields_guessing: bool = True
    content_guessing: bool = False


@dataclass(frozen=True)
class SyncChange:
    """An update; None leaves an attribute as it is. ``sync_now``: also ask for a run now."""

    interval: int | None = None
    type_guessing: bool | None = None
    quoted_fields_guessing: bool | None = None
    content_guessing: bool | None = None
    sync_now: bool = False


@dataclass(frozen=True)
class SyncNowView:
    id: str
    enqueued: bool


# -- commands ------------------------------------------------------------------------------------


def create_sync(services: Services, caller: Caller, options: SyncOptions) -> SyncView:
    """Create a sync table and queue its first run; answers once it finished or ``job_response_wait`` passed."""
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    require_create(principal)
    interval = _checked_interval(services, DEFAULT_INTERVAL if options.interval is None else options.interval)
    url = (options.url or "").strip()
    if not url:
        raise E.InvalidInput("Validation failed: url can't be blank", code="synchronizations.noUrl")
    urlguard.check_url(url, allowed=services.settings.url_import_allowed_hosts, label="url")
    ensure_default_bucket(services, project)
    sync_uuid = str(uuidlib.uuid4())
    now = utcnow()
    row = CartoSynchronization(
        uuid=sync_uuid,
        project_id=project.id,
        token_id=principal.token_id,
        url=url,
        name=formats.table_name(options.table_name or _url_stem(url)),
        interval=interval,
        options={
            "table_name": options.table_name,
            "type_guessing": options.type_guessing,
            "quoted_fields_guessing": options.quoted_fields_guessing,
            "content_guessing": options.content_guessing,
        },
        state=QUEUED,
        run_at=now + timedelta(seconds=interval),
        retried_times=0,
        created_at=now,
        updated_at=now,
    )

    def link(s: Session, job: Job) -> None:
        row.job_id = job.id
        s.add(row)

    job = services.jobs.submit(
        project.id,
        KIND,
        {"v": PARAMS_VERSION, "sync": sync_uuid},
        token_id=principal.token_id,
        subject=f"sync:{sync_uuid}",
        max_attempts=1,
        link=link,
    )
    if services.settings.job_response_wait > 0:
        services.jobs.wait(job.id, timeout=services.settings.job_response_wait)
    return _show(services, project, sync_uuid)


def list_syncs(
    services: Services, caller: Caller, *, page: int = 1, per_page: int = PAGE_SIZE
) -> tuple[list[SyncView], int]:
    """One page (from 1) of the caller's syncs, newest change first, and their exact total."""
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    page = max(1, page)
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    with services.catalog.session(readonly=True) as s:
        q = select(CartoSynchronization).where(CartoSynchronization.project_id == project.id)
        if not principal.is_master:
            q = q.where(CartoSynchronization.token_id == principal.token_id)
        rows = list(
            s.scalars(q.order_by(CartoSynchronization.updated_at.desc(), CartoSynchronization.id.desc()))
        )
        tables = _table_uuids(s, rows)
    start = (page - 1) * per_page
    return [_view(r, project, tables) for r in rows[start : start + per_page]], len(rows)


def get_sync(services: Services, caller: Caller, sync_id: str) -> SyncView:
    """A sync of the caller's; a running one is waited for up to ``job_response_wait``."""
    project, row = _visible(services, caller, sync_id)
    if row.state in BUSY and row.job_id is not None and services.settings.job_response_wait > 0:
        with contextlib.suppress(E.NotFound):
            services.jobs.wait(row.job_id, timeout=services.settings.job_response_wait)
    return _show(services, project, row.uuid)


def update_sync(services: Services, caller: Caller, sync_id: str, change: SyncChange) -> SyncView:
    """Change a sync's interval or import options; ``change.sync_now`` also asks for a run (see :func:`sync_now`)."""
    project, row = _visible(services, caller, sync_id)
    require_create(caller.principal)
    interval = _checked_interval(services, change.interval) if change.interval is not None else None
    with services.catalog.session() as s:
        current = s.get(CartoSynchronization, row.id)
        if current is None:
            raise _not_found(sync_id)
        options = dict(current.options or {})
        for key in ("type_guessing", "quoted_fields_guessing", "content_guessing"):
            value = getattr(change, key)
            if value is not None:
                options[key] = value
        current.options = options
        if interval is not None:
            current.interval = interval
        if interval is not None or current.run_at is None:  # reschedule (and revive a stopped sync)
            base = current.ran_at or utcnow()
            current.run_at = base + timedelta(seconds=current.interval)
            if current.state == FAILURE:
                current.retried_times = 0
        current.updated_at = utcnow()
    if change.sync_now:
        _request_run(services, row)
    return _show(services, project, row.uuid)


def sync_now(services: Services, caller: Caller, sync_id: str) -> SyncNowView:
    """Queue a run now, unless one is queued or running or the last ran under ``carto_sync_min_interval`` ago."""
    _, row = _visible(services, caller, sync_id)
    require_create(caller.principal)
    return SyncNowView(row.uuid, _request_run(services, row))


def delete_sync(services: Services, caller: Caller, sync_id: str) -> None:
    """Delete a sync; its table stays (a plain dataset from then on), as on CARTO."""
    _, row = _visible(services, caller, sync_id)
    require_create(caller.principal)
    with services.catalog.session() as s:
        s.execute(delete(CartoSynchronization).where(CartoSynchronization.id == row.id))


# -- scheduling ----------------------------------------------------------------------------------


class _Lost(Exception):
    """The row was not idle (or not due) any more: another claim won; roll the job back."""


def _enqueue(services: Services, row: CartoSynchronization, *conditions: Any) -> int | None:
    """Queue a run of ``row`` if the conditional claim succeeds (job and claim in one transaction)."""

    def link(s: Session, job: Job) -> None:
        claimed = affected(
            s,
            update(CartoSynchronization)
            .where(CartoSynchronization.id == row.id, CartoSynchronization.state.in_(IDLE), *conditions)
            .values(state=QUEUED, job_id=job.id, updated_at=utcnow()),
        )
        if claimed != 1:
            raise _Lost

    try:
        job = services.jobs.submit(
            row.project_id,
            KIND,
            {"v": PARAMS_VERSION, "sync": row.uuid},
            token_id=row.token_id,
            subject=f"sync:{row.uuid}",
            max_attempts=1,
            link=link,
        )
    except _Lost:
        return None
    return job.id


def _request_run(services: Services, row: CartoSynchronization) -> bool:
    gap = timedelta(seconds=services.settings.carto_sync_min_interval)
    now = utcnow()
    job_id = _enqueue(
        services,
        row,
        or_(CartoSynchronization.ran_at.is_(None), CartoSynchronization.ran_at <= now - gap),
    )
    return job_id is not None


def sweep(services: Services, *, now: datetime | None = None) -> dict[str, int]:
    """Queue a run of every idle sync whose ``run_at`` has passed; fail runs whose job ended unrecorded.

    Safe to run in several processes at once: each row is claimed by one conditional UPDATE.
    """
    now = now or utcnow()
    with services.catalog.session(readonly=True) as s:
        due = list(
            s.scalars(
                select(CartoSynchronization)
                .where(
                    CartoSynchronization.state.in_(IDLE),
                    CartoSynchronization.run_at.is_not(None),
                    CartoSynchronization.run_at <= now,
                )
                .order_by(CartoSynchronization.run_at)
                .limit(SWEEP_BATCH)
            )
        )
        stuck = list(
            s.execute(
                select(CartoSynchronization.id, CartoSynchronization.job_id)
                .outerjoin(Job, Job.id == CartoSynchronization.job_id)
                .where(
                    CartoSynchronization.state.in_(BUSY),
                    or_(CartoSynchronization.job_id.is_(None), Job.status.in_(TERMINAL)),
                )
                .limit(SWEEP_BATCH)
            )
        )
    queued = sum(
        1
        for row in due
        if _enqueue(
            services, row, CartoSynchronization.run_at.is_not(None), CartoSynchronization.run_at <= now
        )
    )
    recovered = 0
    for sync_id, job_id in stuck:
        with services.catalog.session() as s:
            current = s.get(CartoSynchronization, sync_id)
            if current is None or current.state not in BUSY or current.job_id != job_id:
                continue
            _failed(current, INTERRUPTED, "the run stopped before it finished (its job ended)", services)
            recovered += 1
    if queued or recovered:
        log.info("sync tables: %d run(s) queued, %d interrupted run(s) recorded", queued, recovered)
    return {"queued": queued, "recovered": recovered}


def _failed(
    row: CartoSynchronization, code: str, message: str, services: Services, *, stop: bool = False
) -> None:
    now = utcnow()
    row.state = FAILURE
    row.ran_at = now
    row.retried_times = (row.retried_times or 0) + 1
    row.error_code = code
    row.error_message = message
    give_up = stop or row.retried_times > services.settings.carto_sync_max_retries
    row.run_at = None if give_up else now + timedelta(seconds=row.interval)
    row.updated_at = now


def _failure(
    services: Services, code: str, message: str, *, stop: bool = False
) -> Callable[[CartoSynchronization], None]:
    return lambda row: _failed(row, code, message, services, stop=stop)


# -- the job -------------------------------------------------------------------------------------


def run(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``imports.sync``: one run of a sync table."""
    services = ctx.services
    sync_uuid = str(ctx.params.get("sync"))
    with services.catalog.session() as s:
        row = _row(s, ctx.project_id, sync_uuid)
        if row is None or row.job_id != ctx.job.id:
            return {"skipped": "the synchronization was deleted or another run replaced this one"}
        if row.table_id is not None:
            row.state = SYNCING  # the first run stays "queued": the SDK's wait loop knows no "syncing"
            row.updated_at = utcnow()
        snapshot = _Snapshot(
            url=row.url,
            options=dict(row.options or {}),
            table_id=row.table_id,
            etag=row.etag,
            last_modified=row.last_modified,
            checksum=row.checksum,
        )
    try:
        principal = _principal(ctx)
    except E.EntrepotError as exc:
        _record(ctx, _failure(services, REVOKED, exc.message, stop=True))
        raise
    try:
        outcome = _sync(ctx, principal, snapshot)
    except E.JobCancelled:
        _record(ctx, _failure(services, INTERRUPTED, "the run was cancelled"))
        raise
    except E.EntrepotError as exc:
        _record(ctx, _failure(services, exc.code, exc.message))
        raise
    except Exception as exc:
        _record(ctx, _failure(services, "imports.failed", f"the run failed: {type(exc).__name__}"))
        raise
    _record(ctx, outcome.apply)
    return {"changed": outcome.changed, "table_id": outcome.dataset_id}


@dataclass(frozen=True)
class _Snapshot:
    url: str
    options: dict[str, Any]
    table_id: int | None
    etag: str | None
    last_modified: str | None
    checksum: str | None


@dataclass(frozen=True)
class _Outcome:
    changed: bool
    etag: str | None
    last_modified: str | None
    checksum: str | None
    table_id: int | None = None
    dataset_id: str | None = None
    name: str | None = None

    def apply(self, row: CartoSynchronization) -> None:
        now = utcnow()
        row.state = SUCCESS
        row.ran_at = now
        row.run_at = now + timedelta(seconds=row.interval)
        row.retried_times = 0
        row.error_code = None
        row.error_message = None
        row.etag = self.etag
        row.last_modified = self.last_modified
        if self.checksum is not None:
            row.checksum = self.checksum
        if self.changed:
            row.modified_at = now
        if self.table_id is not None:
            row.table_id = self.table_id
        if self.name is not None:
            row.name = self.name
        row.updated_at = now


def _principal(ctx: JobContext[Services]) -> Principal:
    try:
        principal = job_principal(ctx)
    except E.PermissionDenied:
        raise E.PermissionDenied(
            "the key that created this synchronization no longer exists or was revoked; "
            "it is no longer scheduled",
            code=REVOKED,
        ) from None
    if not principal.may_create_in(DEFAULT_SCHEMA):
        raise E.PermissionDenied(
            "the key that created this synchronization may no longer create tables; it is no longer scheduled",
            code=REVOKED,
        )
    return principal


def _sync(ctx: JobContext[Services], principal: Principal, snap: _Snapshot) -> _Outcome:
    services = ctx.services
    project = member_project(services, principal, ctx.project_id)
    table = _table(services, snap.table_id)
    headers: dict[str, str] = {}
    if table is not None:
        if snap.etag:
            headers["If-None-Match"] = snap.etag
        if snap.last_modified:
            headers["If-Modified-Since"] = snap.last_modified
    box = services.sql.sandbox(project.name)
    work = box.temp / f"sync-{uuidlib.uuid4().hex}"
    work.mkdir(parents=True)
    try:
        path, result = fetch_url(services, snap.url, work, cancelled=ctx.cancelled, headers=headers)
        etag = result.etag or (snap.etag if result.not_modified else None)
        last_modified = result.last_modified or (snap.last_modified if result.not_modified else None)
        if table is not None and (result.not_modified or result.sha256 == snap.checksum):
            return _Outcome(False, etag, last_modified, None)
        ctx.check_cancelled()
        files = unpack(services.settings.import_max_inflated_bytes, path, work)
        row = _write(ctx, box, project, table, files, snap.options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _Outcome(True, etag, last_modified, result.sha256, row[0], row[1], row[2])


def _write(
    ctx: JobContext[Services],
    box: Any,
    project: Project,
    table: StoredTable | None,
    files: list[Path],
    options: dict[str, Any],
) -> tuple[int, str, str]:
    """Create (first run) or replace the table in one lake transaction; (catalog id, uuid, name)."""
    services = ctx.services
    with box.cursor(write=True) as cur, interrupt_on_cancel(ctx, cur):
        layer, select_sql = read_layers(cur, services.settings, files, options)[0]
        if table is None:
            taken = {n.lower() for n in table_names(cur, DEFAULT_SCHEMA)}
            ref = TableRef(DEFAULT_SCHEMA, formats.unique_name(layer.name, taken))
        else:
            ref = TableRef(DEFAULT_SCHEMA, table.name)
        ctx.check_cancelled()
        with transaction(cur, translate_errors=False):
            definition = create_table(ctx, cur, layer, select_sql, ref, replace=table is not None)
        if table is not None and (table.definition or {}).get("dataset"):
            definition = {**definition, "dataset": table.definition["dataset"]}  # type: ignore[index]
        sync_catalog(services, project, cur, {ref: definition})
    if table is None:  # a CARTO key owns the table its synchronization creates
        adopt(services, job_principal(ctx), project, [ref])
    with services.catalog.session() as s:
        stored = stored_table(s, project, ref)
        if stored is None:
            raise E.NotFound(
                f"the table {ref.name} vanished while it was synchronized", code="imports.emptyFile"
            )
        if table is None:
            stored.privacy = "private"
        return stored.id, stored.uuid, stored.name


def _record(ctx: JobContext[Services], change: Callable[[CartoSynchronization], None]) -> None:
    """Apply ``change`` to the sync row if this job still owns it (a deleted sync is left alone)."""
    with ctx.services.catalog.session() as s:
        row = _row(s, ctx.project_id, str(ctx.params.get("sync")))
        if row is not None and row.job_id == ctx.job.id:
            change(row)


# -- helpers -------------------------------------------------------------------------------------


def _checked_interval(services: Services, interval: int) -> int:
    minimum = services.settings.carto_sync_min_interval
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < minimum:
        raise E.InvalidInput(
            f"Validation failed: interval must be greater than or equal to {minimum} seconds",
            code="synchronizations.intervalTooShort",
        )
    return interval


def _url_stem(url: str) -> str:
    base = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    for suffix in (*formats.COMPRESSED, *formats.ARCHIVES):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return base.rsplit(".", 1)[0] if "." in base else base


def _row(s: Session, project_id: int, sync_uuid: str) -> CartoSynchronization | None:
    return s.scalar(
        select(CartoSynchronization).where(
            CartoSynchronization.project_id == project_id, CartoSynchronization.uuid == sync_uuid
        )
    )


def _table(services: Services, table_id: int | None) -> StoredTable | None:
    if table_id is None:
        return None
    with services.catalog.session(readonly=True) as s:
        return s.get(StoredTable, table_id)


def _not_found(sync_id: str) -> E.NotFound:
    return E.NotFound(f"Synchronization {sync_id} not found", code="synchronizations.notFound")


def _visible(services: Services, caller: Caller, sync_id: str) -> tuple[Project, CartoSynchronization]:
    """The sync ``sync_id`` if the caller may see it: a master token sees every one, a token its own."""
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    with services.catalog.session(readonly=True) as s:
        row = _row(s, project.id, sync_id)
    if row is None or not (principal.is_master or row.token_id == principal.token_id):
        raise _not_found(sync_id)
    return project, row


def _show(services: Services, project: Project, sync_uuid: str) -> SyncView:
    with services.catalog.session(readonly=True) as s:
        row = _row(s, project.id, sync_uuid)
        if row is None:
            raise _not_found(sync_uuid)
        return _view(row, project, _table_uuids(s, [row]))


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run)
    registry.register_periodic(SWEEP, sweep)


__all__ = [
    "KIND",
    "SyncChange",
    "SyncNowView",
    "SyncOptions",
    "SyncView",
    "create_sync",
    "delete_sync",
    "get_sync",
    "list_syncs",
    "register_jobs",
    "run",
    "sweep",
    "sync_now",
    "table_syncs",
    "update_sync",
]
