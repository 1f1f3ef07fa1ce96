"""The Export API's commands: one per request of the face, typed inputs, views out.

Datasources (the tables a caller may export), exports (create, list, get, cancel, retry,
delete) and templates (create, list, get, update, delete). Every command checks the caller;
someone else's export or user template is "not found". Downloads are in
:mod:`entrepot.core.exports.downloads`, the job that writes the files in
:mod:`entrepot.core.exports.jobs`.
"""

from __future__ import annotations

import contextlib
import math
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, or_, select, update

import entrepot.core.exports.jobs as jobs
import entrepot.core.exports.spec as spec
import entrepot.core.exports.templates as templates
from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import ExportJob, ExportTemplate, Job
from entrepot.core.clock import utcnow
from entrepot.core.exports.downloads import download_url
from entrepot.core.exports.query import compile_query
from entrepot.core.exports.store import (
    STATUS_OF_WORD,
    DatasourceRecord,
    ExportRecord,
    column_types,
    datasource_id,
    find_datasource,
    find_export,
    select_exports,
    source,
    visible,
)
from entrepot.core.exports.store import list_datasources as _datasources
from entrepot.core.exports.templates import TemplateFields, TemplateView, template_view
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, TERMINAL
from entrepot.core.tables import store as table_store

if TYPE_CHECKING:
    from entrepot.core.services import Services

MAX_PAGE_SIZE = 100
EXPORT_FIELDS = ("datasource", "format", "filters", "options", "template")


# -- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasourceView:
    """A table as a datasource; ``column_types`` (DuckDB types by column) only in a detail."""

    id: str
    name: str
    table_id: str
    columns: tuple[str, ...]
    row_count: int | None
    created_at: datetime | None
    last_change_at: datetime | None
    column_types: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ExportView:
    """An export and the state of its current job, in the export's lifecycle words."""

    id: str
    status: str  # pending, processing, completed, failed or cancelled
    format: str
    progress: int
    row_count: int | None
    file_size: int | None
    file_name: str | None
    content_type: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None  # why it failed or was cancelled
    datasource_id: str
    datasource_name: str
    table_id: str
    filters: Mapping[str, Any]
    options: Mapping[str, Any]
    template_id: str | None
    template_name: str | None
    owner: str | None
    expires_at: datetime | None  # when the file is removed
    file_expired: bool
    download_url: str | None  # token-free, while the file is there
    download_url_expires_at: datetime | None


@dataclass(frozen=True)
class ExportPage:
    items: tuple[ExportView, ...]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.page_size)) if self.total else 0

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class ExportRequest:
    """An export as a request asked for it: JSON values, checked by :func:`create_export`.

    ``template`` names a template whose configuration is the default of every other field;
    ``unknown_fields`` are the names the request sent that an export does not have.
    """

    datasource: Any = None
    format: Any = None
    filters: Any = None
    options: Any = None
    template: Any = None
    unknown_fields: tuple[str, ...] = ()


def _datasource_view(ds: DatasourceRecord, types: Mapping[str, str] | None = None) -> DatasourceView:
    table = ds.table
    return DatasourceView(
        id=table.uuid,
        name=ds.name,
        table_id=ds.table_id,
        columns=tuple(table.columns),
        row_count=table.rows_count,
        created_at=table.created_at,
        last_change_at=table.last_change_at,
        # a column the lake does not describe (yet) is text
        column_types=None if types is None else {c: types.get(c, "VARCHAR") for c in table.columns},
    )


def _export_view(services: Services, export: ExportRecord, job: Job | None = None) -> ExportView:
    """The view of ``export``, with ``job`` instead of the export's current one when given."""
    if job is not None:
        export = ExportRecord(export.row, job, export.template_uuid, export.template_name)
    row, job = export.row, export.job
    status = export.status_word
    error = None
    if job is not None and job.error and export.status in (FAILED, CANCELLED):
        error = str(job.error.get("message") or "")
    signed = download_url(services, export)
    return ExportView(
        id=row.uuid,
        status=status,
        format=row.format,
        progress=100 if status == "completed" else (job.progress if job is not None else 0),
        row_count=row.row_count,
        file_size=row.file_size,
        file_name=row.file_name,
        content_type=row.content_type,
        created_at=row.created_at,
        started_at=job.started_at if job is not None else None,
        completed_at=job.finished_at if job is not None else None,
        error_message=error,
        datasource_id=row.datasource_uuid,
        datasource_name=row.datasource_name,
        table_id=row.table_ident,
        filters=row.filters,
        options=row.options,
        template_id=export.template_uuid,
        template_name=export.template_name,
        owner=row.owner,
        expires_at=row.expires_at,
        file_expired=row.file_expired_at is not None,
        download_url=signed[0] if signed is not None else None,
        download_url_expires_at=signed[1] if signed is not None else None,
    )


# -- datasources ---------------------------------------------------------------------------------


def list_datasources(
    services: Services, principal: Principal, search: str | None = None
) -> list[DatasourceView]:
    """The tables the caller may read, by table id (``search``: in the name or table id)."""
    return [_datasource_view(ds) for ds in _datasources(services, principal, search)]


def get_datasource(services: Services, principal: Principal, datasource: str) -> DatasourceView:
    """A datasource with its column types: not found when unknown, denied without read access."""
    ds = find_datasource(services, principal, datasource)
    return _datasource_view(ds, column_types(services, ds))


# -- exports -------------------------------------------------------------------------------------


def get_export(services: Services, principal: Principal, export_id: str) -> ExportView:
    return _export_view(services, find_export(services, principal, export_id))


def _page_number(value: str | None, field: str, default: int, high: int | None) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise spec.FieldError({field: "must be a whole number"}) from None
    if number < 1 or (high is not None and number > high):
        raise spec.FieldError({field: f"must be between 1 and {high}" if high else "must be 1 or more"})
    return number


def list_exports(
    services: Services,
    principal: Principal,
    *,
    page: str | None = None,
    page_size: str | None = None,
    status: str | None = None,
    format: str | None = None,
    datasource: str | None = None,
    search: str | None = None,
) -> ExportPage:
    """The caller's exports, newest first, filtered and paginated (every bad parameter in one error)."""
    principal.require_authenticated()
    errors = spec.FieldErrors()
    number, size = 1, 20
    with errors.check():
        number = _page_number(page, "page", 1, None)
    with errors.check():
        size = _page_number(page_size, "page_size", 20, MAX_PAGE_SIZE)
    conds = [visible(principal)]
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
            select_exports()
            .where(*conds)
            .order_by(ExportJob.id.desc())
            .limit(size)
            .offset((number - 1) * size)
        ).all()
    items = tuple(_export_view(services, ExportRecord(*r)) for r in rows)
    return ExportPage(items, int(total or 0), number, size)


def create_export(services: Services, principal: Principal, request: ExportRequest | None) -> ExportView:
    """Validate an export request against its datasource and queue it (``pending``).

    ``request`` None: the request's body was no JSON object. The request is checked whole:
    one ``FieldError`` names every bad field, the filters checked against the table's columns
    too when the datasource is fine.
    """
    principal.require_authenticated()
    if request is None:
        raise spec.FieldError({"body": "must be a JSON object"})
    errors = spec.FieldErrors()
    for key in request.unknown_fields:
        errors.add(key, f"unknown field; an export has {', '.join(EXPORT_FIELDS)}")
    template = None
    fmt_raw, filters_raw, options_raw = request.format, request.filters, request.options
    if request.template not in (None, ""):
        # the template's configuration is the default; the request's fields win key by key
        with errors.check():
            template = templates.usable(services, principal, request.template)
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
        datasource_id(request.datasource)
    if errors:
        # what the table says about the filters too, when the datasource is fine (best effort:
        # an unknown or forbidden datasource leaves the answer at the fields already found)
        with contextlib.suppress(E.EntrepotError):
            ds = find_datasource(services, principal, request.datasource)
            lake = services.engine.lake(table_store.lake_name(services, ds.table.project_id))
            with lake.cursor(write=False) as cur:
                compile_query(filters, source(cur, ds), errors)
        errors.raise_if_any()
    assert fmt is not None
    ds = find_datasource(services, principal, request.datasource)
    lake = services.engine.lake(table_store.lake_name(services, ds.table.project_id))
    with lake.cursor(write=False) as cur:
        compile_query(filters, source(cur, ds))  # every column, operator and value checked now
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
    job = jobs.submit(services, principal, export_pk, row.uuid)
    # the export as created (pending), even if a worker has already picked it up
    return _export_view(services, find_export(services, principal, row.uuid), job)


def cancel_export(
    services: Services, principal: Principal, export_id: str, *, wait: float = 5.0
) -> ExportView:
    """Cancel a pending or processing export; waits up to ``wait`` s for a running one to stop."""
    export = find_export(services, principal, export_id)
    if export.job is None or export.job.status in TERMINAL:
        raise E.Conflict(
            f"Cannot cancel job that is already {export.status_word}. "
            "Only pending or processing jobs can be cancelled.",
            code="exports.notCancellable",
        )
    with contextlib.suppress(E.Conflict):  # it finished meanwhile: report what it became
        services.jobs.cancel(export.job.id, export.row.project_id)
    services.jobs.wait(export.job.id, wait)
    return get_export(services, principal, export_id)


def retry_export(services: Services, principal: Principal, export_id: str) -> ExportView:
    """Queue a failed or cancelled export again (a new job; the old file, if any, is dropped)."""
    export = find_export(services, principal, export_id)
    if export.status not in (FAILED, CANCELLED):
        raise E.Conflict(
            f"Cannot retry job that is {export.status_word}. Only failed or cancelled jobs can be retried.",
            code="exports.notRetryable",
        )
    _drop_file(services, export.row)
    job = jobs.submit(services, principal, export.row.id, export.row.uuid)
    # as queued: pending, even if a worker has already picked it up
    return _export_view(services, find_export(services, principal, export_id), job)


def delete_export(services: Services, principal: Principal, export_id: str) -> None:
    """Delete an export and its file; a pending one is cancelled first, a processing one refused."""
    export = find_export(services, principal, export_id)
    if export.status == RUNNING:
        raise E.Conflict(
            "Cannot delete job that is currently processing. Cancel it first.", code="exports.processing"
        )
    if export.status == QUEUED and export.job is not None:
        try:
            services.jobs.cancel(export.job.id, export.row.project_id)
        except E.Conflict:
            fresh = find_export(services, principal, export_id)
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


# -- templates -----------------------------------------------------------------------------------


def create_template(services: Services, principal: Principal, fields: TemplateFields | None) -> TemplateView:
    """A new user (or shared) template of the caller (``fields`` None: the body was no JSON object)."""
    return template_view(templates.create(services, principal, fields))


def list_templates(
    services: Services,
    principal: Principal,
    *,
    type: str | None = None,
    format: str | None = None,
    search: str | None = None,
) -> list[TemplateView]:
    """The templates the caller sees: system ones first, then by name."""
    rows = templates.list_templates(services, principal, type=type, format=format, search=search)
    return [template_view(row) for row in rows]


def get_template(services: Services, principal: Principal, template_id: str) -> TemplateView:
    return template_view(templates.get(services, principal, template_id))


def update_template(
    services: Services, principal: Principal, template_id: str, fields: TemplateFields | None
) -> TemplateView:
    """Change the fields a request sent (``fields`` None: the body was no JSON object)."""
    return template_view(templates.update(services, principal, template_id, fields))


def delete_template(services: Services, principal: Principal, template_id: str) -> None:
    templates.delete(services, principal, template_id)


__all__ = [
    "EXPORT_FIELDS",
    "DatasourceView",
    "ExportPage",
    "ExportRequest",
    "ExportView",
    "cancel_export",
    "create_export",
    "create_template",
    "delete_export",
    "delete_template",
    "get_datasource",
    "get_export",
    "get_template",
    "list_datasources",
    "list_exports",
    "list_templates",
    "retry_export",
    "update_template",
]
