"""The export job (``exports.run``), which writes an export's file, and the retention sweep.

The job's params are ``{"v": 2, "export_id": <row id>, "export_uuid": <uuid>}``; jobs queued by
an older server carry the same keys without ``"v"`` and are read through :func:`_upgrade_params`.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

import entrepot.core.exports.writer as writer
from entrepot.core import errors as E
from entrepot.core import failpoints
from entrepot.core.auth import Principal
from entrepot.core.catalog import ExportJob, Job, affected
from entrepot.core.clock import utcnow
from entrepot.core.engine import interrupt_on_cancel
from entrepot.core.exports.query import compile_query
from entrepot.core.exports.store import find_datasource, source
from entrepot.core.files import safe_name
from entrepot.core.jobs import JobContext, JobRegistry
from entrepot.core.tables import store as table_store
from entrepot.core.tables.extract import job_principal

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "exports.run"
PARAMS_VERSION = 2


def submit(services: Services, principal: Principal, export_pk: int, export_uuid: str) -> Job:
    """Queue the export's job and point the export at it, in one transaction."""

    def link(session: Any, job: Job) -> None:
        session.execute(
            update(ExportJob).where(ExportJob.id == export_pk).values(job_id=job.id, updated_at=utcnow())
        )

    return services.jobs.submit(
        principal.project_id or 0,
        KIND,
        {"v": PARAMS_VERSION, "export_id": export_pk, "export_uuid": export_uuid},
        token_id=principal.token_id,
        subject=f"export:{export_uuid}",
        max_attempts=2,
        link=link,
    )


def _upgrade_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params of a queued job in the current version (version 1, unversioned, had the same keys)."""
    if params.get("v", 1) == 1:
        return {**params, "v": PARAMS_VERSION}
    return params


def run(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``exports.run``: write the export's rows into its format and store the file."""
    services = ctx.services
    params = _upgrade_params(ctx.params)
    export_pk = int(params["export_id"])
    with services.catalog.session(readonly=True) as s:
        row = s.get(ExportJob, export_pk)
    if row is None or row.job_id != ctx.job.id:
        return {"skipped": "the export was deleted or retried"}
    principal = job_principal(ctx)
    try:
        ds = find_datasource(services, principal, row.datasource_uuid)
    except E.NotFound:
        raise E.NotFound(
            f"the datasource {row.table_ident} ({row.datasource_uuid}) no longer exists",
            code="exports.datasourceGone",
        ) from None
    lake = services.engine.lake(table_store.lake_name(services, ds.table.project_id))
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
            query = compile_query(row.filters, source(cur, ds))
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


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run)
    registry.register_periodic("exports.expire_files", expire_files)


__all__ = ["KIND", "PARAMS_VERSION", "expire_files", "register_jobs", "run", "submit"]
