"""Export jobs: create, read, list, cancel, retry, delete, download, and the job that writes the file.

An export is an :class:`ExportJob` row (what to export, who owns it, the file it produced) and
the durable job ``job_id`` that does the work; its status, progress and times are that job's.
A retry queues a new job for the same row. Ownership: a caller sees the exports of its owner
key (:attr:`Principal.owner_key`); a master token sees every export of its project. Someone
else's export is "not found", so its existence is not revealed.
"""

from __future__ import annotations

import contextlib
import math
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, or_, select, update

import entrepot.core.exports.spec as spec
import entrepot.core.exports.templates as templates
import entrepot.core.exports.writer as writer
from entrepot.core import errors as E
from entrepot.core import failpoints, signing
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, ExportJob, ExportTemplate, Job, StoredTable, affected
from entrepot.core.clock import utcnow
from entrepot.core.engine import interrupt_on_cancel
from entrepot.core.exports.query import Source, compile_query
from entrepot.core.files import safe_name
from entrepot.core.ids import parse_uuid
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL, JobContext
from entrepot.core.tables import store
from entrepot.core.tables.extract import job_principal, stable_order

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "exports.run"
DOWNLOAD = "exports.download"
MAX_PAGE_SIZE = 100
STATUS_WORDS = {
    QUEUED: "pending",
    RUNNING: "processing",
    SUCCEEDED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
}
STATUS_OF_WORD = {word: status for status, word in STATUS_WORDS.items()}
NOT_FOUND = "Export job not found"
DATASOURCE_NOT_FOUND = "Datasource not found"


@dataclass(frozen=True)
class Export:
    """An export and the state of its current job."""

    row: ExportJob
    job: Job | None
    template_uuid: str | None = None
    template_name: str | None = None

    @property
    def status(self) -> str:
        return self.job.status if self.job is not None else FAILED


# -- datasources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Datasource:
    table: StoredTable
    bucket: Bucket

    @property
    def table_id(self) -> str:
        return f"{self.bucket.ident}.{self.table.name}"

    @property
    def name(self) -> str:
        return self.table.display_name or self.table.name


def _readable(principal: Principal, bucket: Bucket) -> bool:
    level = principal.bucket_access(bucket.ident)
    return level in ("read", "write")


def list_datasources(services: Services, principal: Principal, search: str | None = None) -> list[Datasource]:
    """The tables the caller may read, by table id."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        rows = s.execute(
            select(StoredTable, Bucket)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(StoredTable.project_id == principal.project_id)
            .order_by(Bucket.ident, StoredTable.name)
        ).all()
    out = [Datasource(t, b) for t, b in rows if _readable(principal, b)]
    if search:
        needle = search.lower()
        out = [d for d in out if needle in d.name.lower() or needle in d.table_id.lower()]
    return out


def datasource_id(datasource: Any, *, field: str = "datasource") -> str:
    """``datasource`` as given, when it is there at all (``FieldError`` otherwise)."""
    if not isinstance(datasource, str) or not datasource.strip():
        raise spec.FieldError(
            {field: "is required: the id of a datasource (GET /data-tools/api/v1/datasources/)"}
        )
    return datasource


def get_datasource(
    services: Services, principal: Principal, datasource: Any, *, field: str = "datasource"
) -> Datasource:
    """The table with UUID ``datasource``: 404 when unknown (or not a UUID), 403 without read access."""
    principal.require_authenticated()
    key = parse_uuid(datasource_id(datasource, field=field))
    if key is None:
        raise E.NotFound(DATASOURCE_NOT_FOUND, code="exports.datasourceNotFound")
    with services.catalog.session(readonly=True) as s:
        row = s.execute(
            select(StoredTable, Bucket)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(StoredTable.uuid == key, StoredTable.project_id == principal.project_id)
        ).first()
    if row is None:
        raise E.NotFound(DATASOURCE_NOT_FOUND, code="exports.datasourceNotFound")
    ds = Datasource(row[0], row[1])
    if not _readable(principal, ds.bucket):
        raise E.PermissionDenied(
            "You do not have permission to export this datasource", code="exports.datasourceForbidden"
        )
    return ds


def describe(services: Services, ds: Datasource) -> dict[str, str]:
    """DuckDB types of the datasource's user columns."""
    lake = services.engine.lake(store.lake_name(services, ds.table.project_id))
    with lake.cursor(write=False) as cur:
        return _types(cur, ds)


def _types(cur: Any, ds: Datasource) -> dict[str, str]:
    rows = cur.execute(f"DESCRIBE SELECT * FROM {store.lake_ref(ds.bucket.ident, ds.table.name)}").fetchall()
    return {r[0]: str(r[1]) for r in rows}


def _source(cur: Any, ds: Datasource) -> Source:
    types = _types(cur, ds)
    columns = [c for c in ds.table.columns if c in types]
    return Source(
        ref=store.lake_ref(ds.bucket.ident, ds.table.name),
        columns=columns,
        types=types,
        untyped=ds.table.definition is None,
        stable_order=stable_order(ds.table),
    )


# -- reading -------------------------------------------------------------------------------------


def _visible(principal: Principal) -> Any:
    cond = ExportJob.project_id == principal.project_id
    if not principal.is_master:
        cond = cond & (ExportJob.owner == principal.owner_key)
    return cond


def _query() -> Any:
    return (
        select(ExportJob, Job, ExportTemplate.uuid, ExportTemplate.name)
        .outerjoin(Job, Job.id == ExportJob.job_id)
        .outerjoin(ExportTemplate, ExportTemplate.id == ExportJob.template_id)
    )


def _key(export_id: Any) -> str:
    key = parse_uuid(export_id)
    if key is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return key


def get(services: Services, principal: Principal, export_id: Any) -> Export:
    principal.require_authenticated()
    key = _key(export_id)
    with services.catalog.session(readonly=True) as s:
        row = s.execute(_query().where(ExportJob.uuid == key, _visible(principal))).first()
    if row is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return Export(*row)


def _page_number(value: Any, field: str, default: int, high: int | None) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise spec.FieldError({field: "must be a whole number"}) from None
    if number < 1 or (high is not None and number > high):
        raise spec.FieldError({field: f"must be between 1 and {high}" if high else "must be 1 or more"})
    return number


@dataclass(frozen=True)
class Page:
    items: list[Export]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.page_size)) if self.total else 0


def list_exports(
    services: Services,
    principal: Principal,
    *,
    page: Any = None,
    page_size: Any = None,
    status: str | None = None,
    format: str | None = None,
    datasource: str | None = None,
    search: str | None = None,
) -> Page:
    """The caller's exports, newest first, filtered and paginated."""
    principal.require_authenticated()
    errors = spec.FieldErrors()
    number, size = 1, 20
    with errors.check():
        number = _page_number(page, "page", 1, None)
    with errors.check():
        size = _page_number(page_size, "page_size", 20, MAX_PAGE_SIZE)
    conds = [_visible(principal)]
    if status:
        if status not in STATUS_OF_WORD:
            errors.add("status", f"must be one of: {', '.join(STATUS_OF_WORD)}")
        else:
            conds.append(Job.status == STATUS_OF_WORD[status])
    if format:
        with errors.check():
            conds.append(ExportJob.format == spec.check_format(format))
    errors.raise_if_any()
    if datasource:
        conds.append(ExportJob.datasource_uuid == datasource.strip().lower())
    if search:
        needle = f"%{search.lower().replace('%', '').replace('_', '')}%"
        conds.append(
            or_(
                func.lower(ExportJob.datasource_name).like(needle),
                func.lower(ExportJob.table_ident).like(needle),
                func.lower(cast(Job.error, String)).like(needle),
            )
        )
    with services.catalog.session(readonly=True) as s:
        total = s.scalar(
            select(func.count())
            .select_from(ExportJob)
            .outerjoin(Job, Job.id == ExportJob.job_id)
            .where(*conds)
        )
        rows = s.execute(
            _query().where(*conds).order_by(ExportJob.id.desc()).limit(size).offset((number - 1) * size)
        ).all()
    return Page([Export(*r) for r in rows], int(total or 0), number, size)


# -- creating ------------------------------------------------------------------------------------


def create(services: Services, principal: Principal, body: Mapping[str, Any]) -> Export:
    """Validate an export request against its datasource and queue it (``pending``)."""
    principal.require_authenticated()
    if not isinstance(body, Mapping):
        raise spec.FieldError({"body": "must be a JSON object"})
    errors = spec.FieldErrors()  # the request is checked whole: one 400 names every bad field
    for key in sorted(set(body) - {"datasource", "format", "filters", "options", "template"}):
        errors.add(key, "unknown field; an export has datasource, format, filters, options, template")
    template = None
    fmt_raw, filters_raw, options_raw = body.get("format"), body.get("filters"), body.get("options")
    if body.get("template") not in (None, ""):
        # the template's configuration is the default; the request's fields win key by key
        with errors.check():
            template = templates.usable(services, principal, body["template"])
    if template is not None:
        config = template.configuration or {}
        if fmt_raw in (None, ""):
            fmt_raw = config.get("format")
        target = fmt_raw.strip().lower() if isinstance(fmt_raw, str) else None
        carried = {  # options of the template's format do not carry over to another format
            k: v
            for k, v in (config.get("options") or {}).items()
            if target in spec.OPTION_DEFAULTS.get(k, {})
        }
        if filters_raw is None or isinstance(filters_raw, Mapping):
            filters_raw = spec.merge(config.get("filters"), filters_raw)
        if options_raw is None or isinstance(options_raw, Mapping):
            options_raw = spec.merge(carried, options_raw)
    fmt, filters, options = spec.normalize_checked(fmt_raw, filters_raw, options_raw, errors)
    with errors.check():
        datasource_id(body.get("datasource"))
    if errors:
        # what the table says about the filters too, when the datasource is fine (best effort:
        # an unknown or forbidden datasource leaves the answer at the fields already found)
        with contextlib.suppress(E.EntrepotError):
            ds = get_datasource(services, principal, body.get("datasource"))
            lake = services.engine.lake(store.lake_name(services, ds.table.project_id))
            with lake.cursor(write=False) as cur:
                compile_query(filters, _source(cur, ds), errors)
        errors.raise_if_any()
    assert fmt is not None
    ds = get_datasource(services, principal, body.get("datasource"))
    lake = services.engine.lake(store.lake_name(services, ds.table.project_id))
    with lake.cursor(write=False) as cur:
        compile_query(filters, _source(cur, ds))  # every column, operator and value checked now
    now = utcnow()
    with services.catalog.session() as s:
        row = ExportJob(
            uuid=str(uuidlib.uuid4()),
            project_id=ds.table.project_id,
            token_id=principal.token_id,
            owner=principal.owner_key,
            datasource_uuid=ds.table.uuid,
            datasource_name=ds.name,
            table_ident=ds.table_id,
            format=fmt,
            filters=filters,
            options=options,
            template_id=template.id if template is not None else None,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        if template is not None:
            s.execute(
                update(ExportTemplate)
                .where(ExportTemplate.id == template.id)
                .values(usage_count=ExportTemplate.usage_count + 1)
            )
        s.flush()
        export_pk = row.id
    job = _submit(services, principal, export_pk, row.uuid)
    # the export as created (pending), even if a worker has already picked it up
    created = get(services, principal, row.uuid)
    return Export(created.row, job, created.template_uuid, created.template_name)


def _submit(services: Services, principal: Principal, export_pk: int, export_uuid: str) -> Job:
    """Queue the export's job and point the export at it, in one transaction."""

    def link(session: Any, job: Job) -> None:
        session.execute(
            update(ExportJob).where(ExportJob.id == export_pk).values(job_id=job.id, updated_at=utcnow())
        )

    return services.jobs.submit(
        principal.project_id or 0,
        KIND,
        {"export_id": export_pk, "export_uuid": export_uuid},
        token_id=principal.token_id,
        subject=f"export:{export_uuid}",
        max_attempts=2,
        link=link,
    )


# -- state changes -------------------------------------------------------------------------------


def cancel(services: Services, principal: Principal, export_id: Any, *, wait: float = 5.0) -> Export:
    """Cancel a pending or processing export; waits up to ``wait`` s for a running one to stop."""
    export = get(services, principal, export_id)
    if export.job is None or export.job.status in TERMINAL:
        word = STATUS_WORDS.get(export.status, export.status)
        raise E.Conflict(
            f"Cannot cancel job that is already {word}. Only pending or processing jobs can be cancelled.",
            code="exports.notCancellable",
        )
    with contextlib.suppress(E.Conflict):  # it finished meanwhile: report what it became
        services.jobs.cancel(export.job.id, export.row.project_id)
    services.jobs.wait(export.job.id, wait)
    return get(services, principal, export_id)


def retry(services: Services, principal: Principal, export_id: Any) -> Export:
    """Queue a failed or cancelled export again (a new job; the old file, if any, is dropped)."""
    export = get(services, principal, export_id)
    if export.status not in (FAILED, CANCELLED):
        word = STATUS_WORDS.get(export.status, export.status)
        raise E.Conflict(
            f"Cannot retry job that is {word}. Only failed or cancelled jobs can be retried.",
            code="exports.notRetryable",
        )
    _drop_file(services, export.row)
    job = _submit(services, principal, export.row.id, export.row.uuid)
    fresh = get(services, principal, export_id)
    return Export(fresh.row, job, fresh.template_uuid, fresh.template_name)  # as queued: pending


def delete(services: Services, principal: Principal, export_id: Any) -> None:
    """Delete an export and its file; a pending one is cancelled first, a processing one refused."""
    export = get(services, principal, export_id)
    if export.status == RUNNING:
        raise E.Conflict(
            "Cannot delete job that is currently processing. Cancel it first.", code="exports.processing"
        )
    if export.status == QUEUED and export.job is not None:
        try:
            services.jobs.cancel(export.job.id, export.row.project_id)
        except E.Conflict:
            fresh = get(services, principal, export_id)
            if fresh.status == RUNNING:
                raise E.Conflict(
                    "Cannot delete job that is currently processing. Cancel it first.",
                    code="exports.processing",
                ) from None
    with services.catalog.session() as s:
        row = s.get(ExportJob, export.row.id)
        if row is not None:
            s.delete(row)
    if export.row.blob_key:
        services.blobs.delete(export.row.blob_key)


def _drop_file(services: Services, row: ExportJob) -> None:
    if row.blob_key:
        services.blobs.delete(row.blob_key)
    with services.catalog.session() as s:
        s.execute(
            update(ExportJob)
            .where(ExportJob.id == row.id)
            .values(
                blob_key=None,
                file_size=None,
                row_count=None,
                file_name=None,
                content_type=None,
                expires_at=None,
                file_expired_at=None,
                updated_at=utcnow(),
            )
        )


# -- download ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    export: ExportJob
    blob_key: str
    size: int
    file_name: str
    content_type: str
    modified: datetime


def _downloadable(export: Export) -> Download:
    row = export.row
    if export.status != SUCCEEDED:
        word = STATUS_WORDS.get(export.status, export.status)
        raise E.Conflict(
            f"Export job is not completed (status: {word}); download it once it is completed",
            code="exports.notCompleted",
        )
    if row.file_expired_at is not None or row.blob_key is None:
        raise E.Gone(
            "The export file has expired and was removed; retry is not possible for completed jobs, "
            "create a new export",
            code="exports.fileExpired",
        )
    return Download(
        row,
        row.blob_key,
        int(row.file_size or 0),
        row.file_name or "export",
        row.content_type or "application/octet-stream",
        row.updated_at,
    )


def open_download(services: Services, principal: Principal, export_id: Any) -> Download:
    return _downloadable(get(services, principal, export_id))


def open_signed_download(
    services: Services, export_id: str, expires: str | None, signature: str | None
) -> Download:
    """The download a presigned URL grants (no token); 403 for a forged or expired URL."""
    key = _key(export_id)
    signing.verify(services.verification_keys, DOWNLOAD, key, expires, signature)
    with services.catalog.session(readonly=True) as s:
        row = s.execute(_query().where(ExportJob.uuid == key)).first()
    if row is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return _downloadable(Export(*row))


def download_url(services: Services, export: Export) -> tuple[str, datetime] | None:
    """A token-free download URL of a completed export and when it expires, or None."""
    row = export.row
    if export.status != SUCCEEDED or row.blob_key is None or row.file_expired_at is not None:
        return None
    ttl = services.settings.signed_url_ttl
    if row.expires_at is not None:
        ttl = max(1, min(ttl, int((row.expires_at - utcnow()).total_seconds())))
    query = signing.signed_query(services.secret_key, DOWNLOAD, row.uuid, ttl=ttl)
    expires_at = utcnow() + timedelta(seconds=ttl)
    return (
        f"{services.settings.effective_public_url}/data-tools/api/v1/exports/{row.uuid}/download/?{query}",
        expires_at,
    )


# -- the job -------------------------------------------------------------------------------------


def run(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``exports.run``: write the export's rows into its format and store the file."""
    services = ctx.services
    export_pk = int(ctx.params["export_id"])
    with services.catalog.session(readonly=True) as s:
        row = s.get(ExportJob, export_pk)
    if row is None or row.job_id != ctx.job.id:
        return {"skipped": "the export was deleted or retried"}
    principal = job_principal(ctx)
    try:
        ds = get_datasource(services, principal, row.datasource_uuid)
    except E.NotFound:
        raise E.NotFound(
            f"the datasource {row.table_ident} ({row.datasource_uuid}) no longer exists",
            code="exports.datasourceGone",
        ) from None
    lake = services.engine.lake(store.lake_name(services, ds.table.project_id))
    if row.format == "excel":
        lake.load("excel")
    tmp_dir = services.settings.data_dir / "tmp" / "exports"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    extension = writer.extension_of(row.format, row.options)
    tmp = tmp_dir / f"{row.uuid}-{uuidlib.uuid4().hex}.{extension}"
    ctx.progress(1)
    failpoints.reach(services.settings, "exports.run.before_write", cancel=ctx.cancelled)
    ctx.check_cancelled()
    try:
        with lake.cursor(write=False) as cur:
            query = compile_query(row.filters, _source(cur, ds))
            with interrupt_on_cancel(ctx, cur):
                written = writer.write(
                    cur,
                    query,
                    row.format,
                    row.options,
                    tmp,
                    cancel=ctx.cancelled,
                    report=lambda pct: ctx.progress(2 + pct * 0.9),
                )
        ctx.check_cancelled()
        ctx.progress(93)
        name = f"{safe_name(ds.table.name)}-{row.uuid[:8]}.{written.extension}"
        blob_key = f"exports/{row.project_id}/{row.uuid}/{name}"
        services.blobs.put_file(blob_key, tmp, move=True, digests=False)  # the export never uses them
    finally:
        Path(tmp).unlink(missing_ok=True)
    now = utcnow()
    expires = now + timedelta(days=services.settings.export_retention_days)
    with services.catalog.session() as s:
        changed = affected(
            s,
            update(ExportJob)
            .where(ExportJob.id == export_pk, ExportJob.job_id == ctx.job.id)
            .values(
                row_count=written.rows,
                file_size=written.size,
                file_name=name,
                content_type=written.content_type,
                blob_key=blob_key,
                expires_at=expires,
                file_expired_at=None,
                updated_at=now,
            ),
        )
    if changed != 1:  # deleted or retried meanwhile: the file belongs to nobody
        services.blobs.delete(blob_key)
        return {"skipped": "the export was deleted or retried while it ran"}
    ctx.progress(100)
    return {"row_count": written.rows, "file_size": written.size, "file_name": name}


def expire_files(services: Services) -> int:
    """Periodic: remove the files of exports past their retention; the rows stay, marked expired."""
    now = utcnow()
    with services.catalog.session(readonly=True) as s:
        due = list(
            s.execute(
                select(ExportJob.id, ExportJob.blob_key)
                .where(
                    ExportJob.expires_at <= now,
                    ExportJob.file_expired_at.is_(None),
                    ExportJob.blob_key.is_not(None),
                )
                .limit(1000)
            ).all()
        )
    for pk, blob_key in due:
        if blob_key is not None:  # the query asks for rows with a file; the column may be NULL
            services.blobs.delete(blob_key)
        with services.catalog.session() as s:
            s.execute(
                update(ExportJob)
                .where(ExportJob.id == pk)
                .values(file_expired_at=now, blob_key=None, updated_at=now)
            )
    return len(due)


__all__ = [
    "DOWNLOAD",
    "KIND",
    "STATUS_WORDS",
    "Datasource",
    "Download",
    "Export",
    "Page",
    "cancel",
    "create",
    "delete",
    "describe",
    "download_url",
    "expire_files",
    "get",
    "get_datasource",
    "list_datasources",
    "list_exports",
    "open_download",
    "open_signed_download",
    "retry",
    "run",
]
