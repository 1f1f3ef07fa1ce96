"""CARTO's maps (*derived* visualizations) and the ``api/v1/viz`` commands that reach both kinds.

A map is a ``carto_visualizations`` row: a name, CARTO's descriptive attributes, a privacy and
the datasets it shows (their table uuids, in layer order). An import with ``create_vis``
creates one over the tables it created (:func:`create_map`); so does importing a ``.carto``
file. Maps are listed, read, changed and deleted through ``api/v1/viz`` like datasets;
``api/v1/viz/<id>`` without a ``type`` reaches either kind (a map's id first), so the SDK's
``save()`` and ``delete()`` of a map or a dataset land on the right one.

Who may: reading a map needs a member of its project (the anonymous caller and any key read a
``public`` or ``link`` map); changing or deleting one needs write access to the default bucket,
like datasets. Deleting a map leaves its datasets alone.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from entrepot.core import datasets
from entrepot.core import errors as E
from entrepot.core.catalog import Project, StoredTable
from entrepot.core.catalog.models import CartoVisualization
from entrepot.core.clock import utcnow
from entrepot.core.datasets import DatasetChange, DatasetView
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.service import PRIVACIES, Caller

if TYPE_CHECKING:
    from entrepot.core.services import Services

MAP_TEXT_ATTRIBUTES = (*datasets.TEXT_ATTRIBUTES, "active_layer_id")
TABLE = "table"
DERIVED = "derived"


@dataclass(frozen=True)
class VisualizationView:
    """A map as ``api/v1/viz?type=derived`` shows it, with the datasets it shows."""

    id: str
    name: str
    project: str
    privacy: str
    created_at: datetime
    updated_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    tables: tuple[DatasetView, ...] = ()


def _readable(caller: Caller, privacy: str) -> bool:
    return privacy in ("public", "link") or not caller.principal.anonymous


def _view(services: Services, project: Project, row: CartoVisualization) -> VisualizationView:
    by_id: dict[str, DatasetView] = {}
    for uuid in row.tables or []:
        try:
            by_id[uuid] = datasets.dataset_of(services, project, uuid)
        except E.NotFound:  # dropped with SQL since: not a layer any more
            continue
    return VisualizationView(
        id=row.uuid,
        name=row.name,
        project=project.name,
        privacy=row.privacy,
        created_at=row.created_at,
        updated_at=row.updated_at,
        attributes=dict(row.attributes or {}),
        tables=tuple(by_id.values()),
    )


def _find_map(services: Services, project: Project, id_or_name: str) -> CartoVisualization | None:
    with services.catalog.session(readonly=True) as s:
        return s.scalars(
            select(CartoVisualization)
            .where(
                CartoVisualization.project_id == project.id,
                or_(
                    CartoVisualization.uuid == id_or_name,
                    func.lower(CartoVisualization.name) == id_or_name.lower(),
                ),
            )
            .order_by((CartoVisualization.uuid == id_or_name).desc(), CartoVisualization.id.desc())
        ).first()


def _readable_map(services: Services, caller: Caller, id_or_name: str) -> tuple[Project, CartoVisualization]:
    project = member_project(services, caller.principal, caller.project)
    row = _find_map(services, project, id_or_name)
    if row is None or not _readable(caller, row.privacy):
        raise E.NotFound(f"Visualization not found: {id_or_name}", code="visualizations.notFound")
    return project, row


def _is_map_id(services: Services, caller: Caller, viz_id: str) -> bool:
    project = member_project(services, caller.principal, caller.project)
    with services.catalog.session(readonly=True) as s:
        return (
            s.scalar(
                select(CartoVisualization.id).where(
                    CartoVisualization.project_id == project.id, CartoVisualization.uuid == viz_id
                )
            )
            is not None
        )


# -- commands ------------------------------------------------------------------------------------


def list_maps(
    services: Services, caller: Caller, *, page: int = 1, per_page: int = datasets.PAGE_SIZE
) -> tuple[list[VisualizationView], int]:
    """One page (from 1) of the maps the caller may read, newest change first, and their exact total."""
    project = member_project(services, caller.principal, caller.project)
    page = max(1, page)
    per_page = max(1, min(per_page, datasets.MAX_PAGE_SIZE))
    with services.catalog.session(readonly=True) as s:
        rows = [m for m in datasets.project_maps(s, project.id) if _readable(caller, m.privacy)]
    start = (page - 1) * per_page
    return [_view(services, project, m) for m in rows[start : start + per_page]], len(rows)


def get_visualization(
    services: Services, caller: Caller, id_or_name: str, kind: str | None = None
) -> VisualizationView | DatasetView:
    """A map (``kind`` ``derived``) or a dataset (``table``) by id, else by name; either without a kind."""
    if kind == TABLE:
        return datasets.get_dataset(services, caller, id_or_name)
    try:
        project, row = _readable_map(services, caller, id_or_name)
    except E.NotFound:
        if kind == DERIVED:
            raise
        return datasets.get_dataset(services, caller, id_or_name)
    return _view(services, project, row)


def update_visualization(
    services: Services, caller: Caller, viz_id: str, change: DatasetChange
) -> VisualizationView | DatasetView:
    """``PUT api/v1/viz/<id>``: a map's name, privacy and attributes, else the dataset's (datasets.py)."""
    if not _is_map_id(services, caller, viz_id):
        return datasets.update_dataset(services, caller, viz_id, change)
    project, row = _readable_map(services, caller, viz_id)
    datasets.require_write(caller.principal)
    privacy = change.privacy.lower() if change.privacy is not None else None
    if privacy is not None and privacy not in PRIVACIES:
        raise E.PermissionDenied(
            f"privacy must be one of {', '.join(p.upper() for p in PRIVACIES)}",
            code="visualizations.invalidPrivacy",
        )
    with services.catalog.session() as s:
        m = s.get(CartoVisualization, row.id)
        if m is None:
            raise E.NotFound(f"Visualization not found: {viz_id}", code="visualizations.notFound")
        attributes = dict(m.attributes or {})
        for key, value in change.text.items():
            if key in MAP_TEXT_ATTRIBUTES:
                attributes[key] = value
        if change.tags is not None:
            attributes["tags"] = [str(t) for t in change.tags]
        m.attributes = attributes
        if change.name:
            m.name = change.name[:255]
        if privacy is not None:
            m.privacy = privacy
        m.updated_at = utcnow()
        s.flush()
        s.expunge(m)
    return _view(services, project, m)


def delete_visualization(services: Services, caller: Caller, viz_id: str) -> None:
    """``DELETE api/v1/viz/<id>``: a map (its datasets stay), else a dataset and the maps showing only it."""
    if not _is_map_id(services, caller, viz_id):
        datasets.delete_dataset(services, caller, viz_id)
        return
    _project, row = _readable_map(services, caller, viz_id)
    datasets.require_write(caller.principal)
    with services.catalog.session() as s:
        m = s.get(CartoVisualization, row.id)
        if m is not None:
            s.delete(m)


# -- for imports and exports ----------------------------------------------------------------------


def create_map(
    services: Services,
    project_id: int,
    table_ids: Sequence[str],
    *,
    name: str | None = None,
    privacy: str = "private",
    attributes: dict[str, Any] | None = None,
) -> str:
    """A new map showing the tables ``table_ids`` (uuids); its id. The name defaults to the first
    table's; a name in use gets `` 1``, `` 2``… as on CARTO."""
    with services.catalog.session() as s:
        if name is None:
            first = (
                s.scalar(select(StoredTable.name).where(StoredTable.uuid == table_ids[0]))
                if table_ids
                else None
            )
            name = first or "Untitled map"
        taken = {
            n.lower()
            for n in s.scalars(
                select(CartoVisualization.name).where(CartoVisualization.project_id == project_id)
            )
        }
        base, chosen, n = name[:240], name[:240], 0
        while chosen.lower() in taken:
            n += 1
            chosen = f"{base} {n}"
        uuid = str(uuidlib.uuid4())
        now = utcnow()
        s.add(
            CartoVisualization(
                uuid=uuid,
                project_id=project_id,
                name=chosen,
                privacy=privacy if privacy in PRIVACIES else "private",
                attributes=dict(attributes or {}),
                tables=list(table_ids),
                created_at=now,
                updated_at=now,
            )
        )
    return uuid


__all__ = [
    "DERIVED",
    "TABLE",
    "VisualizationView",
    "create_map",
    "delete_visualization",
    "get_visualization",
    "list_maps",
    "update_visualization",
]
