"""CARTO's datasets: the tables of a project's default SQL schema, as ``api/v1/viz?type=table`` shows them.

A dataset is a table of the bucket ``in.c-public`` (CARTO's ``public`` schema); its id is the
table's uuid. Its privacy is the table's (``private``, ``public``, ``link``: the same field the
SQL API checks for anonymous callers), and CARTO's descriptive attributes (description, tags,
license, attributions, title, source, display name) live in the table's definition, under
``"dataset"``. Callers see the datasets they may read (anonymous callers and CARTO keys: the
public and link ones too); changing or deleting one needs write access to the bucket.

Deleting a dataset drops its table and the maps that show only it (a map that shows other
datasets too loses the layer), as CARTO's server does: the SDK's ``Dataset.delete()`` refuses
client-side while ``dependent_visualizations_count`` is positive, ``force_delete()`` sends the
same request. :func:`dependent_maps` finds the maps (``carto_visualizations``) using a dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, Project, StoredTable, TableMetadata
from entrepot.core.catalog.models import CartoVisualization
from entrepot.core.clock import utcnow
from entrepot.core.engine.statements import quote_ident
from entrepot.core.engine.tables import TableRef
from entrepot.core.imports.sync_views import SyncView, table_syncs
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.namespace import DEFAULT_SCHEMA
from entrepot.core.sql.service import PRIVACIES, Caller
from entrepot.core.tables.store import lake_name

if TYPE_CHECKING:
    from entrepot.core.services import Services

_TABLE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")

PAGE_SIZE = 20  # CARTO's default page
MAX_PAGE_SIZE = 1000
TEXT_ATTRIBUTES = ("description", "license", "attributions", "title", "source", "display_name")


@dataclass(frozen=True)
class MapSummary:
    """A map that uses a dataset, as ``dependent_visualizations`` lists it."""

    id: str
    name: str
    privacy: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DatasetView:
    id: str
    name: str
    project: str
    privacy: str
    columns: list[str]
    row_count: int
    size: int
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)  # description, tags, license…
    geometry: bool = False  # cartodbfied (has the_geom)
    maps: tuple[MapSummary, ...] = ()  # the maps using it, newest change first
    synchronization: SyncView | None = None  # its sync table, to its creator and master tokens


@dataclass(frozen=True)
class DatasetChange:
    """What a PUT may change; None leaves an attribute as it is."""

    name: str | None = None
    privacy: str | None = None
    tags: list[str] | None = None
    text: dict[str, str | None] = field(default_factory=dict)  # description, license, …


def _readable(principal: Principal, table: StoredTable) -> bool:
    if table.privacy in ("public", "link"):
        return True
    return not principal.anonymous and principal.table_access(DEFAULT_SCHEMA, table.name) is not None


def _syncs(
    session: Any, project: Project, principal: Principal, tables: list[StoredTable]
) -> dict[int, SyncView]:
    """The sync tables among ``tables`` the principal may see, by table id."""
    return table_syncs(session, project, principal, [t.id for t in tables])


def _view(
    table: StoredTable, project: Project, maps: Any = (), syncs: dict[int, SyncView] | None = None
) -> DatasetView:
    definition = table.definition or {}
    return DatasetView(
        id=table.uuid,
        name=table.name,
        project=project.name,
        privacy=table.privacy,
        columns=list(table.columns),
        row_count=table.rows_count,
        size=table.data_size_bytes,
        created_at=table.created_at,
        updated_at=table.last_change_at or table.created_at,
        attributes=dict(definition.get("dataset") or {}),
        geometry=bool(definition.get("cartodbfied")),
        maps=tuple(
            MapSummary(m.uuid, m.name, m.privacy, m.created_at, m.updated_at)
            for m in maps
            if table.uuid in (m.tables or [])
        ),
        synchronization=(syncs or {}).get(table.id),
    )


def project_maps(session: Any, project_id: int) -> list[CartoVisualization]:
    """Every map of a project, newest change first."""
    return list(
        session.scalars(
            select(CartoVisualization)
            .where(CartoVisualization.project_id == project_id)
            .order_by(CartoVisualization.updated_at.desc(), CartoVisualization.id.desc())
        )
    )


def _query(project: Project) -> Any:
    return (
        select(StoredTable)
        .join(Bucket, StoredTable.bucket_id == Bucket.id)
        .where(Bucket.project_id == project.id, Bucket.ident == DEFAULT_SCHEMA)
    )


def list_datasets(
    services: Services, caller: Caller, *, page: int = 1, per_page: int = PAGE_SIZE
) -> tuple[list[DatasetView], int]:
    """One page (from 1) of the datasets the caller may read, newest change first, and their exact total."""
    project = member_project(services, caller.principal, caller.project)
    page = max(1, page)
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    with services.catalog.session(readonly=True) as s:
        tables = list(s.scalars(_query(project)))
        maps = project_maps(s, project.id)
        visible = [t for t in tables if _readable(caller.principal, t)]
        visible.sort(key=lambda t: (t.last_change_at or t.created_at, t.id), reverse=True)
        start = (page - 1) * per_page
        shown = visible[start : start + per_page]
        syncs = _syncs(s, project, caller.principal, shown)
    return [_view(t, project, maps, syncs) for t in shown], len(visible)


def _find(services: Services, project: Project, id_or_name: str) -> StoredTable | None:
    with services.catalog.session(readonly=True) as s:
        return s.scalars(
            _query(project).where(
                or_(StoredTable.uuid == id_or_name, func.lower(StoredTable.name) == id_or_name.lower())
            )
        ).first()


def _readable_table(services: Services, caller: Caller, id_or_name: str) -> tuple[Project, StoredTable]:
    project = member_project(services, caller.principal, caller.project)
    table = _find(services, project, id_or_name)
    if table is None or not _readable(caller.principal, table):
        raise E.NotFound(f"Visualization not found: {id_or_name}", code="datasets.notFound")
    return project, table


def dataset_of(services: Services, project: Project, table_uuid: str) -> DatasetView:
    """A dataset of ``project`` by its id, whoever asks (a map's layers; the caller read the map)."""
    with services.catalog.session(readonly=True) as s:
        table = s.scalars(_query(project).where(StoredTable.uuid == table_uuid)).first()
        if table is None:
            raise E.NotFound(f"Visualization not found: {table_uuid}", code="datasets.notFound")
        return _view(table, project, project_maps(s, project.id))


def get_dataset(services: Services, caller: Caller, id_or_name: str) -> DatasetView:
    """A dataset by id, else by name."""
    project, table = _readable_table(services, caller, id_or_name)
    with services.catalog.session(readonly=True) as s:
        maps = project_maps(s, project.id)
        syncs = _syncs(s, project, caller.principal, [table])
    return _view(table, project, maps, syncs)


def require_write(principal: Principal) -> None:
    principal.require_authenticated()
    if principal.bucket_access(DEFAULT_SCHEMA) != "write":
        raise E.PermissionDenied(
            f"this key may not change datasets: it needs write access to the bucket {DEFAULT_SCHEMA}",
            code="datasets.permissionDenied",
        )


def update_dataset(services: Services, caller: Caller, dataset_id: str, change: DatasetChange) -> DatasetView:
    """Change a dataset's name (its table is renamed, its id kept), privacy and descriptive attributes."""
    project, table = _readable_table(services, caller, dataset_id)
    require_write(caller.principal)
    privacy = change.privacy.lower() if change.privacy is not None else None
    if privacy is not None and privacy not in PRIVACIES:
        raise E.PermissionDenied(
            f"privacy must be one of {', '.join(p.upper() for p in PRIVACIES)}",
            code="datasets.invalidPrivacy",
        )
    new_name = _new_name(services, project, table, change.name)
    if new_name is not None:
        _rename_in_lake(services, project, table.name, new_name)
    try:
        return _update_row(services, caller, project, table, dataset_id, change, privacy, new_name)
    except BaseException:
        if new_name is not None:  # the catalog kept the old name: so does the lake
            _rename_in_lake(services, project, new_name, table.name)
        raise


def _new_name(services: Services, project: Project, table: StoredTable, wanted: str | None) -> str | None:
    """The dataset's new table name, checked (None: no rename). CARTO's names: ``[a-z_][a-z0-9_]*``."""
    if wanted is None or wanted == table.name:
        return None
    if not _TABLE_NAME_RE.match(wanted):
        raise E.InvalidInput(
            f"invalid dataset name {wanted!r}: use lower-case letters, digits and '_', not starting with a digit "
            "(at most 63 characters)",
            code="datasets.invalidName",
        )
    with services.catalog.session(readonly=True) as s:
        taken = s.scalar(
            select(func.count())
            .select_from(StoredTable)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(
                StoredTable.project_id == project.id,
                Bucket.ident == DEFAULT_SCHEMA,
                func.lower(StoredTable.name) == wanted,
            )
        )
    if taken:
        raise E.Conflict(f"a dataset named {wanted!r} already exists", code="datasets.nameTaken")
    return wanted


def _rename_in_lake(services: Services, project: Project, old: str, new: str) -> None:
    ref = TableRef(DEFAULT_SCHEMA, old)
    with services.sql.sandbox(lake_name(services, project.id)).cursor(write=True) as cur:
        cur.execute(f"ALTER TABLE {ref.sql} RENAME TO {quote_ident(new)}")


def _update_row(
    services: Services,
    caller: Caller,
    project: Project,
    table: StoredTable,
    dataset_id: str,
    change: DatasetChange,
    privacy: str | None,
    new_name: str | None,
) -> DatasetView:
    with services.catalog.session() as s:
        row = s.get(StoredTable, table.id)
        if row is None:
            raise E.NotFound(f"Visualization not found: {dataset_id}", code="datasets.notFound")
        if new_name is not None:
            row.name = new_name
            row.display_name = new_name
        definition = dict(row.definition or {})
        attributes = dict(definition.get("dataset") or {})
        for key, value in change.text.items():
            if key in TEXT_ATTRIBUTES:
                attributes[key] = value
        if change.tags is not None:
            attributes["tags"] = [str(t) for t in change.tags]
        definition["dataset"] = attributes
        row.definition = definition
        if privacy is not None:
            row.privacy = privacy
        s.flush()
        return _view(row, project, project_maps(s, project.id), _syncs(s, project, caller.principal, [row]))


def dependent_maps(services: Services, project: Project, table: StoredTable) -> list[str]:
    """The ids of the maps that use a dataset (a delete without ``force`` is refused while there are some)."""
    with services.catalog.session(readonly=True) as s:
        return [m.uuid for m in project_maps(s, project.id) if table.uuid in (m.tables or [])]


def _drop_from_maps(session: Any, project: Project, table_uuid: str) -> None:
    """Delete the maps that show only ``table_uuid``; remove it from the others."""
    for m in project_maps(session, project.id):
        if table_uuid not in (m.tables or []):
            continue
        rest = [t for t in m.tables if t != table_uuid]
        if rest:
            m.tables = rest
            m.updated_at = utcnow()
        else:
            session.delete(m)


def delete_dataset(services: Services, caller: Caller, dataset_id: str, *, force: bool = True) -> None:
    """Drop a dataset's table (lake and catalog, with its metadata)."""
    project, table = _readable_table(services, caller, dataset_id)
    require_write(caller.principal)
    maps = dependent_maps(services, project, table)
    if maps and not force:
        raise E.Conflict(f"the dataset is used by {len(maps)} maps", code="datasets.hasDependentMaps")
    ref = TableRef(DEFAULT_SCHEMA, table.name)
    with services.sql.sandbox(lake_name(services, project.id)).cursor(write=True) as cur:
        cur.execute(f"DROP TABLE IF EXISTS {ref.sql}")
    with services.catalog.session() as s:
        s.execute(delete(TableMetadata).where(TableMetadata.table_id == table.id))
        s.execute(delete(StoredTable).where(StoredTable.id == table.id))
        _drop_from_maps(s, project, table.uuid)
