"""Look-ups shared by the Export API's commands, its job and its downloads: exports and datasources.

An export is an :class:`ExportJob` row (what to export, who owns it, the file it produced) and
the durable job ``job_id`` that does the work; its status, progress and times are that job's.
A retry queues a new job for the same row. Ownership: a caller sees the exports of its owner
key (:attr:`Principal.owner_key`); a master token sees every export of its project. Someone
else's export is "not found", so its existence is not revealed.

A datasource is a table of the project, named by its UUID; exporting it needs read access to
its bucket. The records here hold catalog rows and never leave the core: the faces get the
views of :mod:`entrepot.core.exports.service`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

import entrepot.core.exports.spec as spec
from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, ExportJob, ExportTemplate, Job, StoredTable
from entrepot.core.engine.tables import TableRef
from entrepot.core.exports.query import Source
from entrepot.core.ids import parse_uuid
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from entrepot.core.tables import store as table_store
from entrepot.core.tables.extract import stable_order

if TYPE_CHECKING:
    from entrepot.core.services import Services

# the lifecycle words of an export (seed 004): the statuses it shows, filters by and names in messages
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


# -- datasources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasourceRecord:
    """A table as a datasource: its catalog row and its bucket's."""

    table: StoredTable
    bucket: Bucket

    @property
    def table_id(self) -> str:
        return f"{self.bucket.ident}.{self.table.name}"

    @property
    def name(self) -> str:
        return self.table.display_name or self.table.name


def readable(principal: Principal, bucket: Bucket) -> bool:
    level = principal.bucket_access(bucket.ident)
    return level in ("read", "write")


def list_datasources(
    services: Services, principal: Principal, search: str | None = None
) -> list[DatasourceRecord]:
    """The tables the caller may read, by table id."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        rows = s.execute(
            select(StoredTable, Bucket)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(StoredTable.project_id == principal.project_id)
            .order_by(Bucket.ident, StoredTable.name)
        ).all()
    out = [DatasourceRecord(t, b) for t, b in rows if readable(principal, b)]
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


def find_datasource(
    services: Services, principal: Principal, datasource: Any, *, field: str = "datasource"
) -> DatasourceRecord:
    """The table with UUID ``datasource``: not found when unknown (or not a UUID), denied without read access."""
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
    ds = DatasourceRecord(row[0], row[1])
    if not readable(principal, ds.bucket):
        raise E.PermissionDenied(
            "You do not have permission to export this datasource", code="exports.datasourceForbidden"
        )
    return ds


def column_types(services: Services, ds: DatasourceRecord) -> dict[str, str]:
    """DuckDB types of the datasource's user columns."""
    lake = services.engine.lake(table_store.lake_name(services, ds.table.project_id))
    with lake.cursor(write=False) as cur:
        return _types(cur, ds)


def _types(cur: Any, ds: DatasourceRecord) -> dict[str, str]:
    rows = cur.execute(f"DESCRIBE SELECT * FROM {TableRef(ds.bucket.ident, ds.table.name).sql}").fetchall()
    return {r[0]: str(r[1]) for r in rows}


def source(cur: Any, ds: DatasourceRecord) -> Source:
    """What the query compiler needs to know of the datasource, read on ``cur``."""
    types = _types(cur, ds)
    columns = [c for c in ds.table.columns if c in types]
    return Source(
        ref=TableRef(ds.bucket.ident, ds.table.name).sql,
        columns=columns,
        types=types,
        untyped=ds.table.definition is None,
        stable_order=stable_order(ds.table),
    )


# -- exports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRecord:
    """An export's row and the state of its current job."""

    row: ExportJob
    job: Job | None
    template_uuid: str | None = None
    template_name: str | None = None

    @property
    def status(self) -> str:
        """The canonical status of the export's current job (an export without one failed)."""
        return self.job.status if self.job is not None else FAILED

    @property
    def status_word(self) -> str:
        return STATUS_WORDS.get(self.status, self.status)


def visible(principal: Principal) -> Any:
    """The condition on :class:`ExportJob` rows that ``principal`` may see."""
    cond = ExportJob.project_id == principal.project_id
    if not principal.is_master:
        cond = cond & (ExportJob.owner == principal.owner_key)
    return cond


def select_exports() -> Any:
    """Exports with their jobs and templates (outer joins: a record per export row)."""
    return (
        select(ExportJob, Job, ExportTemplate.uuid, ExportTemplate.name)
        .outerjoin(Job, Job.id == ExportJob.job_id)
        .outerjoin(ExportTemplate, ExportTemplate.id == ExportJob.template_id)
    )


def export_key(export_id: Any) -> str:
    """The export id of a URL as a UUID; anything else is an export that does not exist."""
    key = parse_uuid(export_id)
    if key is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return key


def find_export(services: Services, principal: Principal, export_id: Any) -> ExportRecord:
    principal.require_authenticated()
    key = export_key(export_id)
    with services.catalog.session(readonly=True) as s:
        row = s.execute(select_exports().where(ExportJob.uuid == key, visible(principal))).first()
    if row is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return ExportRecord(*row)


__all__ = [
    "DATASOURCE_NOT_FOUND",
    "NOT_FOUND",
    "STATUS_OF_WORD",
    "STATUS_WORDS",
    "DatasourceRecord",
    "ExportRecord",
    "column_types",
    "datasource_id",
    "export_key",
    "find_datasource",
    "find_export",
    "list_datasources",
    "readable",
    "select_exports",
    "source",
    "visible",
]
