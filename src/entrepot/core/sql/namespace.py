"""What table names mean in a project's SQL, and what its ``information_schema`` shows a caller.

A project's SQL sees one namespace: its buckets are schemas, the bucket ``in.c-public`` is the
default schema (created the first time SQL runs), and ``public`` and the project's name are
aliases of it. ``information_schema`` lists only the tables the caller may read.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, Project, StoredTable
from entrepot.core.engine.tables import TableRef
from entrepot.core.sql.dialect import InformationView, Namespace

if TYPE_CHECKING:
    from entrepot.core.services import Services

DEFAULT_STAGE = "in"
DEFAULT_BUCKET = "public"
DEFAULT_SCHEMA = f"{DEFAULT_STAGE}.c-{DEFAULT_BUCKET}"


def table_ref(table: str) -> TableRef:
    """``"t"`` (the default schema) or ``"in.c-main.t"`` as a lake table reference."""
    schema, _, name = table.rpartition(".")
    return TableRef(schema or DEFAULT_SCHEMA, name)


def ensure_default_bucket(services: Services, project: Project) -> None:
    """Create the default schema's bucket ``in.c-public`` the first time SQL runs in a project."""
    from entrepot.core.tables.buckets import create_bucket

    with services.catalog.session(readonly=True) as s:
        exists = s.scalar(
            select(func.count()).where(Bucket.project_id == project.id, Bucket.ident == DEFAULT_SCHEMA)
        )
    if exists:
        return
    system = Principal(project_id=project.id, project_name=project.name, token_id=0, is_master=True)
    with suppress(E.AlreadyExists):
        create_bucket(services, system, DEFAULT_BUCKET, stage=DEFAULT_STAGE, description="SQL API tables")


def namespace(services: Services, project: Project, principal: Principal | None = None) -> Namespace:
    """What names mean in ``project``; with a ``principal``, its ``information_schema`` too."""
    with services.catalog.session(readonly=True) as s:
        idents = s.scalars(select(Bucket.ident).where(Bucket.project_id == project.id)).all()
    return Namespace(
        default_schema=DEFAULT_SCHEMA,
        aliases={"public": DEFAULT_SCHEMA, project.name.lower(): DEFAULT_SCHEMA},
        schemas=frozenset(idents) | {DEFAULT_SCHEMA},
        project=project.name,
        information_schema=_information_schema(services, principal, project) if principal else None,
    )


# information_schema view -> (its catalog column, its schema column, its table column or None)
_VIEW_KEYS = {
    "tables": ("table_catalog", "table_schema", "table_name"),
    "columns": ("table_catalog", "table_schema", "table_name"),
    "schemata": ("catalog_name", "schema_name", None),
}


def _information_schema(
    services: Services, principal: Principal, project: Project
) -> Callable[[str], InformationView]:
    """The ``information_schema`` views as ``principal`` may see them (read on first use, per statement).

    Rows come from the lake's own instance (never the user's sandbox) and keep only the tables
    the principal may read: the buckets it may read, or, for anonymous callers, the tables that
    are public or shared by link. Schemata are the buckets with at least one such table (all
    readable buckets for a token).
    """
    cache: dict[str, InformationView] = {}
    public: set[tuple[str, str]] | None = None

    def readable(schema: str, table: str | None) -> bool:
        nonlocal public
        if not principal.anonymous:
            if table is not None:
                return principal.table_permits(schema, table, "select")
            return principal.bucket_access(schema) is not None or any(
                key.startswith(f"{schema}.") and "select" in granted
                for key, granted in principal.table_grants.items()
            )
        if public is None:
            with services.catalog.session(readonly=True) as s:
                public = {
                    (ident, name.lower())
                    for ident, name in s.execute(
                        select(Bucket.ident, StoredTable.name)
                        .join(Bucket, StoredTable.bucket_id == Bucket.id)
                        .where(Bucket.project_id == project.id, StoredTable.privacy.in_(("public", "link")))
                    ).all()
                }
        if table is None:
            return any(s == schema for s, _ in public)
        return (schema, table.lower()) in public

    def view(name: str) -> InformationView:
        if name not in cache:
            catalog_col, schema_col, table_col = _VIEW_KEYS[name]
            with services.engine.cursor(project.name, write=False) as cur:
                cur.execute(f"SELECT * FROM information_schema.{name} WHERE {catalog_col} = 'lake'")
                columns = [(str(d[0]), str(d[1])) for d in cur.description or []]
                rows = cur.fetchall()
            at = [c for c, _ in columns].index
            schema_at = at(schema_col)
            table_at = at(table_col) if table_col else None
            cache[name] = InformationView(
                columns=columns,
                rows=[
                    row
                    for row in rows
                    if not str(row[schema_at]).startswith("__ducklake")
                    and str(row[schema_at]) != "main"
                    and readable(str(row[schema_at]), str(row[table_at]) if table_at is not None else None)
                ],
            )
        return cache[name]

    return view
