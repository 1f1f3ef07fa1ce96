"""Instantiating a map: a checked MapConfig becomes a layergroup its tiles are served from.

Instantiation runs as a caller (``Acting``): the token that posted an anonymous map (a CARTO key
needs the ``maps`` API grant), the anonymous caller (CARTO's default public key: public and link
tables only), or, for a named map, the project's owner. Every data layer's SQL is parsed and
authorised as the SQL API does (``sql.authorize.prepare``): one query that only reads, tables
the caller may select. Its columns are probed (``LIMIT 0``) for ``the_geom_webmercator``, the
interactivity and attribute columns, and the metadata's ``fields``; its CartoCSS is compiled.

The layergroup is kept in the catalog (``map_layergroups``) under an id that is an HMAC of the
project, who acts and the config: the same config by the same caller is the same layergroup,
and nobody can guess another caller's. Its public id adds ``:<last_updated ms>``; tiles look
at the tables' changes themselves (``tiles.py``), so the suffix only busts clients' caches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entrepot.core import errors as E
from entrepot.core.auth import ANONYMOUS, Principal, token_principal
from entrepot.core.catalog import MapLayergroup, Project, StoredTable, Token, affected
from entrepot.core.clock import utcnow
from entrepot.core.jobs import JobRegistry
from entrepot.core.maps import cartocss
from entrepot.core.maps.config import GEOMETRY, Layer, MapConfig, layer_error
from entrepot.core.secretbox import derive_key
from entrepot.core.sql.authorize import prepare
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.dialect import Statement
from entrepot.core.sql.execute import query_around
from entrepot.core.sql.results import Column

if TYPE_CHECKING:
    from entrepot.core.services import Services

PURPOSE = "maps.layergroup"
TOUCH_INTERVAL = 3600
GEOMETRY_COLUMNS = frozenset({"the_geom", GEOMETRY})


@dataclass(frozen=True)
class LayerMeta:
    """What the metadata says of a layer: its fields (CARTO's types) and its CartoCSS."""

    id: str
    type: str
    fields: Mapping[str, str]
    cartocss: str | None


@dataclass(frozen=True)
class LayergroupView:
    id: str  # the catalog id (an HMAC)
    public_id: str  # id:<last_updated ms>, what clients see
    project: str
    template: str | None
    last_updated: datetime
    layers: tuple[LayerMeta, ...]


@dataclass(frozen=True)
class Prepared:
    """A data layer ready to query: its statements (parsed, authorised) and its columns."""

    layer: Layer
    statements: Sequence[Statement]
    columns: Sequence[Column]

    @property
    def attribute_columns(self) -> list[Column]:
        """The columns a tile carries as attributes: all but the geometries."""
        return [c for c in self.columns if c.name not in GEOMETRY_COLUMNS and not c.is_geometry]


def owner_principal(project: Project) -> Principal:
    """The project's owner: who a named map's layers read as."""
    return Principal(project_id=project.id, project_name=project.name, token_id=0, is_master=True)


def instantiate(
    services: Services,
    principal: Principal,
    project: Project,
    config: MapConfig,
    *,
    template: str | None = None,
) -> LayergroupView:
    """Check ``config`` as ``principal`` (authorising every layer's SQL) and keep the layergroup."""
    if not principal.may_use_api("maps"):
        raise E.PermissionDenied(
            "permission denied: this API key is not granted the Maps API", code="maps.apiNotGranted"
        )
    prepared = [prepare_layer(services, principal, project, x) for x in config.layers if x.has_data]
    for p in prepared:
        if p.layer.type == "mapnik":
            try:
                cartocss.compile(p.layer.cartocss, p.layer.id)
            except E.InvalidInput as exc:
                raise layer_error(p.layer, f"{exc.message}", code=exc.code) from None
    uuids = _table_uuids(services, project, prepared)
    token_id = None if template is not None or principal.anonymous else principal.token_id
    document = config.document()
    ident = _ident(services, project, token_id, template, document)
    now = utcnow()
    try:
        with services.catalog.session() as s:
            if s.get(MapLayergroup, ident) is None:
                s.add(
                    MapLayergroup(
                        id=ident,
                        project_id=project.id,
                        token_id=token_id,
                        template=template,
                        config=document,
                        tables=uuids,
                        created_at=now,
                        used_at=now,
                    )
                )
    except IntegrityError:
        pass  # the same config, instantiated at the same moment by the same caller: one row
    with services.catalog.session() as s:
        s.execute(update(MapLayergroup).where(MapLayergroup.id == ident).values(tables=uuids, used_at=now))
        updated = last_updated(s, project.id, uuids) or now
    metas = []
    by_id = {p.layer.id: p for p in prepared}
    for x in config.layers:
        found = by_id.get(x.id)
        fields = {c.name: carto_type(c) for c in found.columns} if found is not None else {}
        metas.append(LayerMeta(x.id, x.type, fields, x.cartocss))
    return LayergroupView(
        id=ident,
        public_id=public_id(ident, updated),
        project=project.name,
        template=template,
        last_updated=updated,
        layers=tuple(metas),
    )


def prepare_layer(services: Services, principal: Principal, project: Project, layer: Layer) -> Prepared:
    """``layer``'s SQL parsed and authorised for ``principal``, and its columns probed."""
    assert layer.sql is not None
    try:
        _, statements = prepare(services, principal, project.id, layer.sql)
        if len(statements) != 1 or statements[0].kind != "select" or statements[0].writes:
            raise E.InvalidInput("a layer's sql must be one SELECT query", code="maps.layer.sql")
        columns, _ = query_around(
            services, project, statements, lambda sql: f"SELECT * FROM ({sql}) AS q LIMIT 0"
        )
    except E.EntrepotError as exc:
        if isinstance(exc, E.InvalidInput | E.PermissionDenied | E.NotFound | E.Unauthenticated):
            details = {
                **(exc.details or {}),
                "layer": {"index": layer.index, "id": layer.id, "type": layer.type},
            }
            raise type(exc)(exc.message, code=exc.code, details=details) from None
        raise
    names = {c.name for c in columns}
    if GEOMETRY not in names:
        raise layer_error(
            layer,
            f'column "{GEOMETRY}" does not exist in the result of layer {layer.index}\'s sql: select it '
            "(CARTO's tables have it; SELECT * does)",
            code="maps.layer.noGeometry",
        )
    for name in (
        *layer.interactivity,
        *([layer.attributes_id] if layer.attributes_id else []),
        *layer.attributes,
    ):
        if name not in names:
            raise layer_error(
                layer, f'column "{name}" does not exist in the result of layer {layer.index}\'s sql'
            )
    return Prepared(layer, statements, columns)


def carto_type(column: Column) -> str:
    """CARTO's name for a column's type in layer metadata (number, string, boolean, date, geometry)."""
    t = column.type.upper()
    if column.is_geometry:
        return "geometry"
    if t == "BOOLEAN":
        return "boolean"
    if t.startswith(("TIMESTAMP", "DATE", "TIME")):
        return "date"
    if t in ("VARCHAR", "TEXT", "UUID", "BLOB") or t.startswith("VARCHAR"):
        return "string"
    if t.startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")):  # fmt: skip
        return "number"
    return "string"


def public_id(ident: str, updated: datetime) -> str:
    return f"{ident}:{int(updated.timestamp() * 1000)}"


def last_updated(s: Session, project_id: int, uuids: Sequence[str]) -> datetime | None:
    """When the newest of the tables ``uuids`` last changed (None: no such table)."""
    if not uuids:
        return None
    stamps = s.scalars(
        select(StoredTable.last_change_at).where(
            StoredTable.project_id == project_id, StoredTable.uuid.in_(list(uuids))
        )
    ).all()
    known = [t for t in stamps if t is not None]
    return max(known) if known else None


@dataclass(frozen=True)
class Loaded:
    """A kept layergroup, with who it acts as now."""

    row_id: str
    project: Project
    principal: Principal
    config: Mapping[str, Any]
    tables: Sequence[str]
    template: str | None
    created_at: datetime
    used_at: datetime


def load(services: Services, raw_id: str) -> Loaded:
    """The layergroup ``raw_id`` (``id`` or ``id:<ms>``) and the principal it acts as, checked now:
    a revoked token's layergroups serve nothing."""
    ident = raw_id.split(":", 1)[0]
    with services.catalog.session(readonly=True) as s:
        row = s.get(MapLayergroup, ident) if ident and len(ident) <= 64 else None
        if row is None:
            raise E.NotFound(
                f"Invalid or nonexistent map configuration token '{raw_id[:80]}'", code="maps.unknown"
            )
        project = s.get(Project, row.project_id)
        if project is None or project.disabled:
            raise E.NotFound(
                f"Invalid or nonexistent map configuration token '{raw_id[:80]}'", code="maps.unknown"
            )
        principal = _acting(s, row, project)
        return Loaded(
            row.id,
            project,
            principal,
            dict(row.config),
            list(row.tables),
            row.template,
            row.created_at,
            row.used_at,
        )


def touch(services: Services, loaded: Loaded) -> None:
    """Note that ``loaded`` is in use (at most once an hour: ``maps_layergroup_ttl`` counts from it)."""
    now = utcnow()
    if (now - loaded.used_at).total_seconds() < TOUCH_INTERVAL:
        return
    with services.catalog.session() as s:
        s.execute(update(MapLayergroup).where(MapLayergroup.id == loaded.row_id).values(used_at=now))


def expire(services: Services) -> int:
    """Delete the layergroups unused for ``maps_layergroup_ttl`` seconds (the maintenance sweep)."""
    cutoff = utcnow() - timedelta(seconds=services.settings.maps_layergroup_ttl)
    with services.catalog.session() as s:
        return affected(s, delete(MapLayergroup).where(MapLayergroup.used_at < cutoff))


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register_periodic("maps.layergroups.expire", expire)


def _acting(s: Session, row: MapLayergroup, project: Project) -> Principal:
    if row.template is not None:
        return owner_principal(project)
    if row.token_id is None:
        return ANONYMOUS
    token = s.get(Token, row.token_id)
    if token is None or token.revoked_at is not None:
        raise E.PermissionDenied(
            "permission denied: the API key that created this map was revoked", code="maps.revoked"
        )
    return token_principal(s, token, project)


def _table_uuids(services: Services, project: Project, prepared: Sequence[Prepared]) -> list[str]:
    refs = {ref for p in prepared for st in p.statements for ref in st.reads}
    with services.catalog.session(readonly=True) as s:
        rows = [stored_table(s, project, ref) for ref in refs]
        return sorted({r.uuid for r in rows if r is not None})


def _ident(
    services: Services,
    project: Project,
    token_id: int | None,
    template: str | None,
    document: Mapping[str, Any],
) -> str:
    key = derive_key(services.secret_key, PURPOSE)
    message = json.dumps([project.id, token_id, template, document], sort_keys=True, default=str)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]
