"""Visualization exports (``api/v3/visualization_exports``): a map, or a dataset, as a ``.carto`` file.

An export is a ``carto_visualization_exports`` row plus a durable job (``carto.viz_exports.run``),
like the Export API's: the job reads each dataset of the visualization through the project's
lake (DuckDB ``COPY … TO`` Parquet, ``the_geom`` kept as GeoParquet geometry, the derived
``the_geom_webmercator`` left out), zips them with the visualization's definition
(``core/imports/carto_file.py``, which the Import API reads back) and stores the zip as a blob,
kept ``export_retention_days`` and then removed by a periodic sweep. Its state is the job's:
``pending`` (queued), ``exporting`` (running), ``complete`` or ``failure``; CARTO's
``uploading`` is never shown (the SDK does not wait through it).

Who may: any authenticated member of the project who may read the visualization; the file is
downloaded with the same credentials (``open_download``).
"""

from __future__ import annotations

import shutil
import uuid as uuidlib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import select, update

from entrepot.core import errors as E
from entrepot.core import visualizations
from entrepot.core.catalog import Job, affected
from entrepot.core.catalog.models import CartoVisualizationExport
from entrepot.core.clock import utcnow
from entrepot.core.datasets import DatasetView
from entrepot.core.engine.tables import TableRef
from entrepot.core.files.rows import safe_name
from entrepot.core.imports.carto_file import EXTENSION, CartoDefinition, definition_json
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, SUCCEEDED, JobContext, JobRegistry
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.namespace import DEFAULT_SCHEMA
from entrepot.core.sql.service import Caller
from entrepot.core.tables.extract import job_principal
from entrepot.core.tables.store import lake_name
from entrepot.core.visualizations import VisualizationView

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "carto.viz_exports.run"
PARAMS_VERSION = 1
ZIP_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class VizExportView:
    """An export as ``api/v3/visualization_exports`` shows it."""

    id: str
    visualization_id: str
    project: str
    state: str  # pending, exporting, complete, failure
    created_at: datetime
    updated_at: datetime

    @property
    def complete(self) -> bool:
        return self.state == "complete"


@dataclass(frozen=True)
class VizExportDownload:
    """A complete export's file, open for reading (the caller closes ``stream``)."""

    file_name: str
    size: int
    stream: BinaryIO = field(repr=False)


def _not_found(export_id: str) -> E.NotFound:
    return E.NotFound(f"Visualization export not found: {export_id}", code="vizExports.notFound")


def _state(job: Job | None) -> str:
    if job is None or job.status in (FAILED, CANCELLED):
        return "failure"
    if job.status == SUCCEEDED:
        return "complete"
    return "pending" if job.status == QUEUED else "exporting"


def _view(services: Services, row: CartoVisualizationExport, project: str) -> VizExportView:
    with services.catalog.session(readonly=True) as s:
        job = s.get(Job, row.job_id) if row.job_id is not None else None
        state = _state(job)
    if state == "complete" and row.blob_key is None:  # expired, or the job skipped
        state = "failure"
    return VizExportView(row.uuid, row.visualization_uuid, project, state, row.created_at, row.updated_at)


def create_export(services: Services, caller: Caller, visualization_id: str | None) -> VizExportView:
    """Queue the export of a map or a dataset (by id or name); answers once it finished or
    ``job_response_wait`` passed."""
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    if not visualization_id:
        raise E.InvalidInput("visualization_id is required", code="vizExports.noVisualization")
    try:
        viz = visualizations.get_visualization(services, caller, visualization_id)
    except E.NotFound:
        raise E.NotFound(
            f"Visualization not found: {visualization_id}", code="vizExports.visualizationNotFound"
        ) from None
    export_uuid = str(uuidlib.uuid4())
    now = utcnow()
    with services.catalog.session() as s:
        row = CartoVisualizationExport(
            uuid=export_uuid, project_id=project.id, visualization_uuid=viz.id, created_at=now, updated_at=now
        )
        s.add(row)
        s.flush()
        pk = row.id

    def link(session: Any, job: Job) -> None:
        session.execute(
            update(CartoVisualizationExport)
            .where(CartoVisualizationExport.id == pk)
            .values(job_id=job.id, updated_at=utcnow())
        )

    job = services.jobs.submit(
        project.id,
        KIND,
        {"v": PARAMS_VERSION, "export_id": pk, "export_uuid": export_uuid},
        token_id=principal.token_id,
        subject=f"vizexport:{export_uuid}",
        max_attempts=1,
        link=link,
    )
    if services.settings.job_response_wait > 0:
        services.jobs.wait(job.id, timeout=services.settings.job_response_wait)
    return get_export(services, caller, export_uuid)


def _row(services: Services, caller: Caller, export_id: str) -> tuple[str, CartoVisualizationExport]:
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    with services.catalog.session(readonly=True) as s:
        row = s.scalars(
            select(CartoVisualizationExport).where(
                CartoVisualizationExport.uuid == export_id, CartoVisualizationExport.project_id == project.id
            )
        ).first()
    if row is None:
        raise _not_found(export_id)
    return project.name, row


def get_export(services: Services, caller: Caller, export_id: str) -> VizExportView:
    """An export of the caller's project."""
    project, row = _row(services, caller, export_id)
    return _view(services, row, project)


def open_download(services: Services, caller: Caller, export_id: str) -> VizExportDownload:
    """The ``.carto`` file of a complete export (conflict before, gone once expired)."""
    project, row = _row(services, caller, export_id)
    view = _view(services, row, project)
    if row.blob_key is None:
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise E.Gone("the export's file has expired; export again", code="vizExports.fileExpired")
        raise E.Conflict(f"the export is not complete (state: {view.state})", code="vizExports.notComplete")
    return VizExportDownload(
        file_name=row.blob_key.rsplit("/", 1)[-1],
        size=int(row.file_size or 0),
        stream=services.blobs.open(row.blob_key),
    )


# -- the job ---------------------------------------------------------------------------------------


def _datasets(viz: VisualizationView | DatasetView) -> tuple[CartoDefinition, list[DatasetView]]:
    if isinstance(viz, VisualizationView):
        tables = list(viz.tables)
        definition = CartoDefinition(
            name=viz.name,
            privacy=viz.privacy,
            attributes=dict(viz.attributes),
            datasets=tuple(f"{t.name}.parquet" for t in tables),
        )
        return definition, tables
    return CartoDefinition(None, datasets=(f"{viz.name}.parquet",)), [viz]


def run(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``carto.viz_exports.run``: write the ``.carto`` zip of the export's visualization."""
    services = ctx.services
    pk = int(ctx.params["export_id"])
    with services.catalog.session(readonly=True) as s:
        row = s.get(CartoVisualizationExport, pk)
    if row is None or row.job_id != ctx.job.id:
        return {"skipped": "the export was deleted"}
    principal = job_principal(ctx)
    project = member_project(services, principal, ctx.project_id)
    viz = visualizations.get_visualization(services, Caller(principal, project.name), row.visualization_uuid)
    definition, tables = _datasets(viz)
    ctx.progress(1)
    work = services.settings.data_dir / "tmp" / "viz_exports" / f"{row.uuid}-{uuidlib.uuid4().hex}"
    work.mkdir(parents=True)
    try:
        lake = services.engine.lake(lake_name(services, project.id))
        lake.load("spatial")
        parts: list[Path] = []
        with lake.cursor(write=False) as cur:
            for i, table in enumerate(tables):
                ctx.check_cancelled()
                ref = TableRef(DEFAULT_SCHEMA, table.name)
                columns = [c for c in table.columns if c != "the_geom_webmercator"]
                select_list = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
                out = work / f"{table.name}.parquet"
                path = str(out).replace("'", "''")
                cur.execute(f"COPY (SELECT {select_list} FROM {ref.sql}) TO '{path}' (FORMAT parquet)")
                parts.append(out)
                ctx.progress(2 + 80 * (i + 1) / max(1, len(tables)))
        name = safe_name(viz.name) + EXTENSION
        archive = work / name
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(
                f"{safe_name(viz.name)}.carto.json", definition_json(definition), zipfile.ZIP_DEFLATED
            )
            for part in parts:
                zf.write(part, part.name, zipfile.ZIP_STORED)  # Parquet is compressed already
        size = archive.stat().st_size
        blob_key = f"carto-exports/{project.id}/{row.uuid}/{name}"
        services.blobs.put_file(blob_key, archive, move=True, digests=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    now = utcnow()
    with services.catalog.session() as s:
        changed = affected(
            s,
            update(CartoVisualizationExport)
            .where(CartoVisualizationExport.id == pk, CartoVisualizationExport.job_id == ctx.job.id)
            .values(
                blob_key=blob_key,
                file_size=size,
                expires_at=now + timedelta(days=services.settings.export_retention_days),
                updated_at=now,
            ),
        )
    if changed != 1:
        services.blobs.delete(blob_key)
        return {"skipped": "the export was deleted while it ran"}
    ctx.progress(100)
    return {"file_size": size, "datasets": [t.name for t in tables]}


def expire_files(services: Services) -> int:
    """Periodic: remove the ``.carto`` files past their retention (the rows stay, without a file)."""
    now = utcnow()
    with services.catalog.session(readonly=True) as s:
        due = list(
            s.execute(
                select(CartoVisualizationExport.id, CartoVisualizationExport.blob_key).where(
                    CartoVisualizationExport.expires_at <= now, CartoVisualizationExport.blob_key.is_not(None)
                )
            )
        )
    for pk, key in due:
        if key:
            services.blobs.delete(key)
        with services.catalog.session() as s:
            s.execute(
                update(CartoVisualizationExport)
                .where(CartoVisualizationExport.id == pk)
                .values(blob_key=None, updated_at=now)
            )
    return len(due)


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run)
    registry.register_periodic("carto.viz_exports.expire_files", expire_files)


__all__ = ["KIND", "VizExportDownload", "VizExportView", "create_export", "get_export", "open_download"]
