"""A CARTO sync table as the core shows it (:class:`SyncView`), apart from the sync jobs
(``sync.py``) so that datasets (``core/datasets.py``) can show a dataset's sync without
importing the import machinery (which imports datasets, through maps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from entrepot.core.auth import Principal
from entrepot.core.catalog import CartoSynchronization, Project, StoredTable

FAILURE = "failure"


@dataclass(frozen=True)
class SyncView:
    """A synchronization as CARTO shows it."""

    id: str
    project: str
    name: str
    url: str
    interval: int
    state: str
    run_at: datetime | None
    ran_at: datetime | None
    modified_at: datetime | None
    etag: str | None
    checksum: str | None
    retried_times: int
    error_code: str | None  # the core's code (imports.urlNotFound…); the face maps it to CARTO's
    error_message: str | None
    type_guessing: bool
    quoted_fields_guessing: bool
    content_guessing: bool
    dataset_id: str | None  # the table's uuid, once the first run created it
    job_id: str | None  # the current (or last) run's job
    created_at: datetime
    updated_at: datetime


def table_uuids(s: Session, rows: list[CartoSynchronization]) -> dict[int, str]:
    ids = [r.table_id for r in rows if r.table_id is not None]
    if not ids:
        return {}
    found = s.execute(select(StoredTable.id, StoredTable.uuid).where(StoredTable.id.in_(ids)))
    return {row[0]: row[1] for row in found}


def table_syncs(
    s: Session, project: Project, principal: Principal, table_ids: list[int]
) -> dict[int, SyncView]:
    """The syncs of these tables the principal may see (a master token every one, a token those
    it created), by table id: a dataset's ``synchronization``."""
    if principal.anonymous or not table_ids:
        return {}
    rows = s.scalars(
        select(CartoSynchronization).where(
            CartoSynchronization.project_id == project.id, CartoSynchronization.table_id.in_(table_ids)
        )
    )
    visible = [
        r
        for r in rows
        if principal.is_master or (principal.token_id is not None and r.token_id == principal.token_id)
    ]
    uuids = table_uuids(s, visible)
    return {r.table_id: sync_view(r, project, uuids) for r in visible if r.table_id is not None}


def sync_view(row: CartoSynchronization, project: Project, tables: dict[int, str]) -> SyncView:
    options = row.options or {}
    return SyncView(
        id=row.uuid,
        project=project.name,
        name=row.name,
        url=row.url,
        interval=row.interval,
        state=row.state,
        run_at=row.run_at,
        ran_at=row.ran_at,
        modified_at=row.modified_at,
        etag=row.etag,
        checksum=row.checksum,
        retried_times=row.retried_times,
        error_code=row.error_code if row.state == FAILURE else None,
        error_message=row.error_message if row.state == FAILURE else None,
        type_guessing=bool(options.get("type_guessing", True)),
        quoted_fields_guessing=bool(options.get("quoted_fields_guessing", True)),
        content_guessing=bool(options.get("content_guessing", False)),
        dataset_id=tables.get(row.table_id) if row.table_id is not None else None,
        job_id=str(row.job_id) if row.job_id is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
