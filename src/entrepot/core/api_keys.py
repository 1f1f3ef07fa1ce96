"""CARTO API keys (Auth API v3): the master key, the default public key and regular keys with grants.

A regular key **is a token of the project** (``auth.create_token``: stored hashed, shown once,
revoked like any token) plus one ``carto_api_keys`` row: its name and its grants. The grants
become the token's :class:`~entrepot.core.auth.Principal` (``apis``, ``table_grants``,
``schema_grants``), so every face and command that checks a principal sees them:

* ``apis`` (``sql``, ``maps``): the CARTO APIs the key may use (the SQL API refuses a key
  without ``sql``);
* ``database.tables``: ``schema.name`` resolves like a table name in the SQL API (``public``
  and the project's name are the default bucket ``in.c-public``, any other schema is a bucket
  id); ``select`` allows reading it, ``insert``/``update``/``delete`` the statements of that
  kind (``core/sql/authorize.py``); the Keboola API reads a table granted ``select``;
* ``database.schemas`` (``create``): CREATE TABLE in that bucket; the key owns the tables it
  creates (``core/sql/ownership.py``): they join its table grants with every permission;
* ``dataservices.services``: stored and echoed.

The master key is the caller's master token (its token shown only to itself: tokens are stored
hashed), the default public key is the anonymous caller (token ``default_public``). Only a
master token manages keys; any other key sees only itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from entrepot.core import errors as E
from entrepot.core.auth import TABLE_PERMISSIONS, TokenSpec, create_token, refresh_token
from entrepot.core.catalog import CartoApiKey, Project, StoredTable, Token
from entrepot.core.clock import utcnow
from entrepot.core.engine.tables import TableRef
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.namespace import ensure_default_bucket, namespace
from entrepot.core.sql.service import Caller

if TYPE_CHECKING:
    from entrepot.core.services import Services

MASTER, DEFAULT, REGULAR = "master", "default", "regular"
KEY_TYPES = (MASTER, DEFAULT, REGULAR)
MASTER_NAME = "Master"
DEFAULT_NAME = "Default public"
DEFAULT_TOKEN = "default_public"
APIS = ("sql", "maps")
SCHEMA_PERMISSIONS = ("create",)
SERVICES = ("geocoding", "routing", "isolines", "observatory")
MAX_NAME = 255
MAX_PER_PAGE = 1000


# -- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableGrant:
    """A table grant as the client sent it (None where it sent null or nothing)."""

    schema: str | None
    name: str | None
    permissions: tuple[str, ...] | None


@dataclass(frozen=True)
class SchemaGrant:
    """A schema grant as the client sent it."""

    name: str | None
    permissions: tuple[str, ...] | None


@dataclass(frozen=True)
class KeySpec:
    """A new regular key: its name and grants."""

    name: str
    apis: tuple[str, ...]
    tables: tuple[TableGrant, ...] = ()
    schemas: tuple[SchemaGrant, ...] = ()
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyFilter:
    """Which keys a listing shows: of ``types`` (None: all), one page of ``per_page`` (pages from 1)."""

    types: frozenset[str] | None = None
    page: int = 1
    per_page: int = 10


# -- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableGrantView:
    schema: str
    name: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class SchemaGrantView:
    name: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class ApiKeyView:
    """A CARTO API key; ``token`` is None where it cannot be shown (stored hashed)."""

    name: str
    type: str  # master | default | regular
    token: str | None
    user: str  # the project's name
    apis: tuple[str, ...]
    tables: tuple[TableGrantView, ...]
    schemas: tuple[SchemaGrantView, ...]
    services: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class KeyPage:
    keys: tuple[ApiKeyView, ...]
    total: int
    page: int
    per_page: int

    @property
    def last_page(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Me:
    """``api/v3/me``: the user the URL names and, for a key of it, who calls."""

    user_name: str
    project_id: int
    created_at: datetime
    key_type: str | None  # None: anonymous (the default public key)
    key_name: str | None


# -- commands ------------------------------------------------------------------------------------


def me(services: Services, caller: Caller) -> Me:
    """The project the request names; the caller's key when it belongs to it."""
    project = member_project(services, caller.principal, caller.project)
    principal = caller.principal
    if principal.anonymous:
        return Me(project.name, project.id, project.created_at, None, None)
    kind = MASTER if principal.is_master else REGULAR
    name = MASTER_NAME if principal.is_master else principal.api_key_name or principal.description
    return Me(project.name, project.id, project.created_at, kind, name)


def list_keys(services: Services, caller: Caller, wanted: KeyFilter) -> KeyPage:
    """The keys the caller may see (a master token: all; any other key: itself), one page."""
    if wanted.page < 1 or not 1 <= wanted.per_page <= MAX_PER_PAGE:
        raise E.InvalidInput(f"page must be at least 1 and per_page between 1 and {MAX_PER_PAGE}")
    keys = [k for k in _visible(services, caller) if wanted.types is None or k.type in wanted.types]
    start = (wanted.page - 1) * wanted.per_page
    return KeyPage(tuple(keys[start : start + wanted.per_page]), len(keys), wanted.page, wanted.per_page)


def get_key(services: Services, caller: Caller, name: str) -> ApiKeyView:
    """The key named ``name`` if the caller may see it; ``NotFound`` (``API key not found``) otherwise."""
    for key in _visible(services, caller):
        if key.name == name:
            return key
    raise _not_found(name)


def create_key(services: Services, caller: Caller, spec: KeySpec) -> ApiKeyView:
    """A new regular key of the caller's project (master tokens only), with its token."""
    project = _manager_project(services, caller)
    name = _check_name(spec.name)
    apis = _check_list(spec.apis, APIS, "apis")
    if not apis:
        raise _invalid("Grants apis must not be empty: grant at least one of sql, maps")
    services_ = _check_list(spec.services, SERVICES, "services")
    ensure_default_bucket(services, project)
    tables = _resolve_tables(services, project, spec.tables)
    schemas = _resolve_schemas(services, project, spec.schemas)
    with services.catalog.session(readonly=True) as s:
        if _row(s, project.id, name) is not None:
            raise E.AlreadyExists("Validation failed: Name has already been taken", code="apiKeys.nameTaken")
    issued = create_token(
        services.catalog,
        project.id,
        TokenSpec(description=f"CARTO API key {name}"),
        creator=caller.principal,
    )
    now = utcnow()
    try:
        with services.catalog.session() as s:
            if _row(s, project.id, name) is not None:
                raise E.AlreadyExists(
                    "Validation failed: Name has already been taken", code="apiKeys.nameTaken"
                )
            row = CartoApiKey(
                project_id=project.id,
                token_id=issued.row.id,
                name=name,
                apis=list(apis),
                tables=tables,
                schemas=schemas,
                services=list(services_),
                created_at=now,
                updated_at=now,
            )
            s.add(row)
    except BaseException:
        _revoke(services, issued.row.id)
        raise
    return _regular_view(row, project, issued.token)


def regenerate(services: Services, caller: Caller, name: str) -> ApiKeyView:
    """The regular key ``name`` with a new token; the old one stops working at once.

    The master key's token is regenerated with the token API, the default key has none.
    """
    project = _manager_project(services, caller)
    if name in (MASTER_NAME, DEFAULT_NAME):
        raise E.PermissionDenied(
            f"the token of the {name} key cannot be regenerated here", code="apiKeys.reserved"
        )
    with services.catalog.session(readonly=True) as s:
        found = _row(s, project.id, name)
    if found is None:
        raise _not_found(name)
    try:
        issued = refresh_token(services.catalog, found.token_id, caller.principal)
    except E.NotFound:  # its token was revoked with the token API
        raise _not_found(name) from None
    with services.catalog.session() as s:
        row = s.get(CartoApiKey, found.id)
        if row is None:
            raise _not_found(name)
        row.updated_at = issued.row.refreshed_at
        s.flush()
        return _regular_view(row, project, issued.token)


def delete_key(services: Services, caller: Caller, name: str) -> None:
    """Delete the regular key ``name``: its token is revoked at once (master and default: refused)."""
    project = _manager_project(services, caller)
    if name in (MASTER_NAME, DEFAULT_NAME):
        raise E.PermissionDenied(f"the {name} key cannot be deleted", code="apiKeys.reserved")
    with services.catalog.session() as s:
        row = _row(s, project.id, name)
        if row is None:
            raise _not_found(name)
        token_row = s.get(Token, row.token_id)
        if token_row is not None and token_row.revoked_at is None:
            token_row.revoked_at = utcnow()
        s.delete(row)


# -- helpers -------------------------------------------------------------------------------------


def _not_found(name: str) -> E.NotFound:
    return E.NotFound(f"API key not found: {name}", code="apiKeys.notFound")


def _invalid(message: str) -> E.InvalidInput:
    return E.InvalidInput(message, code="apiKeys.invalid")


def _manager_project(services: Services, caller: Caller) -> Project:
    project = member_project(services, caller.principal, caller.project)
    caller.principal.require_authenticated()
    if not caller.principal.is_master:
        raise E.PermissionDenied("only the master API key may manage API keys", code="apiKeys.masterRequired")
    return project


def _row(s: Session, project_id: int, name: str) -> CartoApiKey | None:
    return s.scalar(select(CartoApiKey).where(CartoApiKey.project_id == project_id, CartoApiKey.name == name))


def _revoke(services: Services, token_id: int) -> None:
    with services.catalog.session() as s:
        row = s.get(Token, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _invalid("Validation failed: Name can't be blank")
    if len(name) > MAX_NAME:
        raise _invalid(f"Validation failed: Name is too long (at most {MAX_NAME} characters)")
    if name in (MASTER_NAME, DEFAULT_NAME):
        raise _invalid(f"Validation failed: Name {name} is reserved")
    return name


def _check_list(values: Any, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise _invalid(f"Grants {what} must be a list of strings")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise _invalid(f"Grants {what}: {', '.join(unknown)} not valid; use {', '.join(allowed)}")
    return tuple(dict.fromkeys(values))  # echoed as sent, without repeats


def _bucket_of(aliases: dict[str, str], schemas: frozenset[str], schema: str) -> str | None:
    if schema.lower() in aliases:
        return aliases[schema.lower()]
    return schema if schema in schemas else None


def _resolve_tables(
    services: Services, project: Project, grants: Sequence[TableGrant]
) -> list[dict[str, Any]]:
    ns = namespace(services, project)
    out: list[dict[str, Any]] = []
    with services.catalog.session(readonly=True) as s:
        for i, grant in enumerate(grants):
            if grant.schema is None or grant.name is None or grant.permissions is None:
                raise _invalid(
                    f"Grants database.tables[{i}] must have a schema, a name and permissions (got null)"
                )
            if not isinstance(grant.schema, str) or not isinstance(grant.name, str):
                raise _invalid(f"Grants database.tables[{i}] schema and name must be strings")
            permissions = _check_list(
                grant.permissions, TABLE_PERMISSIONS, f"database.tables[{i}].permissions"
            )
            bucket = _bucket_of(dict(ns.aliases), ns.schemas, grant.schema)
            stored = stored_table(s, project, TableRef(bucket, grant.name)) if bucket else None
            if stored is None or bucket is None:
                raise _invalid(
                    f"Validation failed: Grants can only give access to tables of user {project.name}; "
                    f"{grant.schema}.{grant.name} is not one"
                )
            out.append(
                {
                    "schema": grant.schema,
                    "name": grant.name,
                    "bucket": bucket,
                    "table": stored.name,
                    "uuid": stored.uuid,
                    "permissions": list(permissions),
                }
            )
    return out


def _resolve_schemas(
    services: Services, project: Project, grants: Sequence[SchemaGrant]
) -> list[dict[str, Any]]:
    ns = namespace(services, project)
    out: list[dict[str, Any]] = []
    for i, grant in enumerate(grants):
        if grant.name is None or grant.permissions is None or not isinstance(grant.name, str):
            raise _invalid(f"Grants database.schemas[{i}] must have a name and permissions (got null)")
        permissions = _check_list(grant.permissions, SCHEMA_PERMISSIONS, f"database.schemas[{i}].permissions")
        bucket = _bucket_of(dict(ns.aliases), ns.schemas, grant.name)
        if bucket is None:
            raise _invalid(f"Validation failed: Grants schema {grant.name} does not exist")
        out.append({"name": grant.name, "bucket": bucket, "permissions": list(permissions)})
    return out


def _visible(services: Services, caller: Caller) -> list[ApiKeyView]:
    """The keys the caller may see, in order: master, default public, regular keys oldest first."""
    project = member_project(services, caller.principal, caller.project)
    principal = caller.principal
    default = _default_view(project)
    if principal.anonymous:
        return [default]
    with services.catalog.session(readonly=True) as s:
        query = (
            select(CartoApiKey)
            .join(Token, Token.id == CartoApiKey.token_id)
            .where(CartoApiKey.project_id == project.id, Token.revoked_at.is_(None))
            .order_by(CartoApiKey.id)
        )
        if not principal.is_master:
            query = query.where(CartoApiKey.token_id == principal.token_id)
        rows = list(s.scalars(query))
        uuids = {g["uuid"] for row in rows for g in row.tables or [] if g.get("uuid")}
        names = dict(
            s.execute(
                select(StoredTable.uuid, StoredTable.name).where(
                    StoredTable.project_id == project.id, StoredTable.uuid.in_(uuids)
                )
            ).all()
        )
    if not principal.is_master:
        return [_regular_view(row, project, caller.key, names) for row in rows]
    master = ApiKeyView(
        name=MASTER_NAME,
        type=MASTER,
        token=caller.key,
        user=project.name,
        apis=APIS,
        tables=(),
        schemas=(),
        services=(),
        created_at=project.created_at,
        updated_at=project.created_at,
    )
    return [master, default, *(_regular_view(row, project, None, names) for row in rows)]


def _default_view(project: Project) -> ApiKeyView:
    return ApiKeyView(
        name=DEFAULT_NAME,
        type=DEFAULT,
        token=DEFAULT_TOKEN,
        user=project.name,
        apis=APIS,
        tables=(),
        schemas=(),
        services=(),
        created_at=project.created_at,
        updated_at=project.created_at,
    )


def _regular_view(
    row: CartoApiKey, project: Project, token: str | None, names: Mapping[str, str] | None = None
) -> ApiKeyView:
    """The key ``row``; ``names`` maps its tables' uuids to their names now (a table renamed since
    it was granted shows its new name; a dropped one is gone, as from PostgreSQL's grants)."""
    tables = []
    for g in row.tables or []:
        name = g["name"]
        if names is not None and g.get("uuid"):
            if g["uuid"] not in names:
                continue
            if names[g["uuid"]].lower() != str(g["table"]).lower():
                name = names[g["uuid"]]
        tables.append(TableGrantView(g["schema"], name, tuple(g["permissions"])))
    return ApiKeyView(
        name=row.name,
        type=REGULAR,
        token=token,
        user=project.name,
        apis=tuple(row.apis or ()),
        tables=tuple(tables),
        schemas=tuple(SchemaGrantView(g["name"], tuple(g["permissions"])) for g in row.schemas or []),
        services=tuple(row.services or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
