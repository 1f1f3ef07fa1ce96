"""Tokens and principals: who is calling, and what they may do.

A token is ``<project id>-<token id>-<secret>``. Only the SHA-256 of the whole token is
stored; verification looks the row up by its id and compares hashes in constant time. The
secrets are 256-bit random, so a plain (fast) hash is enough: there is nothing to brute-force.

Every core call receives a :class:`Principal` and checks it with the ``require_*`` methods.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from entrepot.core.catalog import Bucket, CartoApiKey, Catalog, Project, StoredTable, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated

Access = Literal["read", "write"]
ACCESS_LEVELS: tuple[Access, ...] = ("read", "write")
TablePermission = Literal["select", "insert", "update", "delete"]
TABLE_PERMISSIONS: tuple[TablePermission, ...] = ("select", "insert", "update", "delete")
_TOKEN_RE = re.compile(r"^(\d{1,18})-(\d{1,18})-([A-Za-z0-9]{20,128})\Z")
_OWNER_RE = re.compile(r"^[A-Za-z0-9._@+\-]{1,255}\Z")
_SCOPE_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,255}\Z")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def grant_key(bucket_id: str, table: str) -> str:
    """How a table grant names its table: ``<bucket>.<table>``, the name lower-cased (SQL names
    compare case-insensitively)."""
    return f"{bucket_id}.{table.lower()}"


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a token of a project, or an anonymous visitor."""

    project_id: int | None
    project_name: str | None
    token_id: int | None = None
    description: str = ""
    is_master: bool = False
    can_manage_buckets: bool = False
    can_manage_tokens: bool = False
    can_read_all_file_uploads: bool = False
    can_manage_spaces: bool = False
    bucket_permissions: Mapping[str, str] = field(default_factory=dict)
    space_permissions: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None
    # a CARTO regular API key (core/api_keys.py): its name, the CARTO APIs it may use (None: a
    # token that is no such key may use every API), its table grants ("<bucket>.<table>" with
    # the table name lower-cased -> CARTO permissions select/insert/update/delete) and its
    # schema grants (bucket -> "create"); the tables it owns (it created them: "<bucket>.<table>"),
    # which it may also alter, truncate and drop, as a PostgreSQL role may the tables it owns
    api_key_name: str | None = None
    apis: frozenset[str] | None = None
    table_grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    schema_grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    owned_tables: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.token_id is None

    @property
    def owner_key(self) -> str | None:
        """Who "the user" is for things a user owns (exports, templates): the token's owner name,
        else the token itself (``token:<id>``). None for the anonymous caller."""
        if self.anonymous:
            return None
        return self.owner or f"token:{self.token_id}"

    # -- checks ---------------------------------------------------------------------------
    def require_authenticated(self) -> None:
        if self.anonymous:
            raise Unauthenticated("this call needs a token; send it in the X-StorageApi-Token header")

    def require_master(self, action: str) -> None:
        self.require_authenticated()
        if not self.is_master:
            raise PermissionDenied(
                f"only a master token may {action}", code="accessDenied.masterTokenRequired"
            )

    def require_manage_tokens(self) -> None:
        self.require_authenticated()
        if not (self.is_master or self.can_manage_tokens):
            raise PermissionDenied("this token may not manage tokens (needs canManageTokens)")

    def require_manage_buckets(self) -> None:
        self.require_authenticated()
        if not (self.is_master or self.can_manage_buckets):
            raise PermissionDenied("this token may not create or delete buckets (needs canManageBuckets)")

    def bucket_access(self, bucket_id: str) -> Access | None:
        if self.is_master or self.can_manage_buckets:
            return "write"
        level = self.bucket_permissions.get(bucket_id)
        return level if level in ACCESS_LEVELS else None

    def require_bucket(self, bucket_id: str, access: Access) -> None:
        self.require_authenticated()
        _require_level(self.bucket_access(bucket_id), access, f"bucket {bucket_id}")

    # -- tables: a bucket's permission covers its tables; a CARTO key's grants name single tables
    def table_permits(self, bucket_id: str, table: str, permission: TablePermission) -> bool:
        """Whether the caller may ``permission`` (select, insert, update, delete) table ``table``.

        Bucket access decides first (read: select; write: all four); a CARTO key's table grants
        add single tables. The anonymous caller's public tables are decided by the SQL API.
        """
        level = self.bucket_access(bucket_id)
        if level == "write" or (level == "read" and permission == "select"):
            return True
        return permission in self.table_grants.get(grant_key(bucket_id, table), frozenset())

    def table_access(self, bucket_id: str, table: str) -> Access | None:
        """The Keboola access level of one table: its bucket's, else ``read`` for a table a CARTO
        key was granted ``select`` on (Keboola's writes replace or drop whole tables: they need
        write access to the bucket)."""
        level = self.bucket_access(bucket_id)
        if level is not None:
            return level
        return "read" if "select" in self.table_grants.get(grant_key(bucket_id, table), frozenset()) else None

    def require_table(self, bucket_id: str, table: str, access: Access) -> None:
        self.require_authenticated()
        _require_level(self.table_access(bucket_id, table), access, f"table {bucket_id}.{table}")

    def owns(self, bucket_id: str, table: str) -> bool:
        """Whether a CARTO key created table ``table`` (and so may alter, truncate and drop it)."""
        return grant_key(bucket_id, table) in self.owned_tables

    def owning(self, bucket_id: str, table: str) -> Principal:
        """This principal as the owner of ``table`` too: every permission on it (a table a script
        creates is its key's for the script's later statements, before the catalog says so)."""
        name = grant_key(bucket_id, table)
        return replace(
            self,
            table_grants={**self.table_grants, name: frozenset(TABLE_PERMISSIONS)},
            owned_tables=self.owned_tables | {name},
        )

    def may_create_in(self, bucket_id: str) -> bool:
        """Whether the caller may create tables in bucket ``bucket_id`` (write access, or a schema grant)."""
        return self.bucket_access(bucket_id) == "write" or "create" in self.schema_grants.get(bucket_id, ())

    def may_use_api(self, api: str) -> bool:
        """Whether the caller may use the CARTO API ``api`` (sql, maps)."""
        return self.apis is None or api in self.apis

    def space_access(self, space: str) -> Access | None:
        if self.is_master or self.can_manage_spaces:
            return "write"
        level = self.space_permissions.get(space)
        return level if level in ACCESS_LEVELS else None

    def require_manage_spaces(self) -> None:
        self.require_authenticated()
        if not (self.is_master or self.can_manage_spaces):
            raise PermissionDenied("this token may not create or delete spaces (needs canManageSpaces)")

    def require_space(self, space: str, access: Access) -> None:
        self.require_authenticated()
        _require_level(self.space_access(space), access, f"space {space}")


def _require_level(have: Access | None, need: Access, what: str) -> None:
    if have is None or (need == "write" and have != "write"):
        raise PermissionDenied(f"this token has no {need} permission on {what}")


ANONYMOUS = Principal(project_id=None, project_name=None)


@dataclass(frozen=True)
class TokenSpec:
    """What a new token may do. Validated by :func:`create_token`."""

    description: str = ""
    is_master: bool = False
    can_manage_buckets: bool = False
    can_manage_tokens: bool = False
    can_read_all_file_uploads: bool = False
    can_manage_spaces: bool = False
    bucket_permissions: Mapping[str, str] = field(default_factory=dict)
    space_permissions: Mapping[str, str] = field(default_factory=dict)
    expires_in: int | None = None  # seconds
    owner: str | None = None  # the user the token belongs to (exports and templates are theirs)


@dataclass(frozen=True)
class TokenRef:
    """A token as the things it made name it (a file's, job's or token's creator)."""

    id: int
    description: str


def token_refs(catalog: Catalog, token_ids: Iterable[int]) -> dict[int, TokenRef]:
    """The tokens of ``token_ids`` by id, in one query (revoked ones included: they made things)."""
    wanted = set(token_ids)
    if not wanted:
        return {}
    with catalog.session(readonly=True) as s:
        rows = s.execute(select(Token.id, Token.description).where(Token.id.in_(wanted)))
        return {token_id: TokenRef(token_id, description) for token_id, description in rows}


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: the only moment its secret exists outside the caller."""

    token: str
    row: Token


def validate_owner(owner: str | None) -> str | None:
    """A token's owner name: 1-255 letters, digits and ``._@+-`` (an e-mail address works)."""
    if owner is None or owner == "":
        return None
    if not isinstance(owner, str) or not _OWNER_RE.match(owner) or owner.startswith("token:"):
        raise InvalidInput(
            f"invalid owner {owner!r}: use 1-255 letters, digits and the characters . _ @ + - "
            "(for example alice or alice@example.com)"
        )
    return owner


def _validate_permissions(perms: Mapping[str, str], kind: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, level in perms.items():
        if not _SCOPE_NAME_RE.match(name):
            raise InvalidInput(f"invalid {kind} name {name!r} in {kind} permissions")
        if level not in ACCESS_LEVELS:
            raise InvalidInput(f"{kind} permission for {name!r} must be 'read' or 'write', not {level!r}")
        out[name] = level
    return out


def _check_no_escalation(creator: Principal, spec: TokenSpec) -> None:
    if creator.is_master:
        return
    if spec.is_master:
        raise PermissionDenied("only a master token may create a master token")
    if spec.can_manage_tokens:
        raise PermissionDenied("only a master token may create a token that manages tokens")
    if spec.owner and spec.owner != creator.owner:
        raise PermissionDenied(
            "only a master token may create a token for another owner; "
            f"leave owner out or use your own ({creator.owner or 'this token has none'})"
        )
    for flag in ("can_manage_buckets", "can_read_all_file_uploads", "can_manage_spaces"):
        if getattr(spec, flag) and not getattr(creator, flag):
            raise PermissionDenied(f"a token cannot grant {flag} it does not have itself")
    for bucket, level in spec.bucket_permissions.items():
        _require_level(creator.bucket_access(bucket), level, f"bucket {bucket}")  # type: ignore[arg-type]
    for space, level in spec.space_permissions.items():
        _require_level(creator.space_access(space), level, f"space {space}")  # type: ignore[arg-type]


def create_token(
    catalog: Catalog, project_id: int, spec: TokenSpec, creator: Principal | None = None
) -> IssuedToken:
    """Create a token in a project. ``creator`` None means the local administrator (CLI)."""
    if creator is not None:
        creator.require_manage_tokens()
        if creator.project_id != project_id:
            raise PermissionDenied("a token can only create tokens in its own project")
        _check_no_escalation(creator, spec)
    if spec.expires_in is not None and spec.expires_in <= 0:
        raise InvalidInput("expiresIn must be a positive number of seconds")
    if len(spec.description) > 1024:
        raise InvalidInput("description is longer than 1024 characters")
    owner = validate_owner(spec.owner)
    buckets = _validate_permissions(spec.bucket_permissions, "bucket")
    spaces = _validate_permissions(spec.space_permissions, "space")
    now = utcnow()
    with catalog.session() as s:
        if s.get(Project, project_id) is None:
            raise NotFound(f"project {project_id} does not exist", code="projects.notFound")
        row = Token(
            project_id=project_id,
            secret_hash="",
            description=spec.description,
            created_at=now,
            refreshed_at=now,
            expires_at=now + timedelta(seconds=spec.expires_in) if spec.expires_in else None,
            is_master=spec.is_master,
            can_manage_buckets=spec.can_manage_buckets or spec.is_master,
            can_manage_tokens=spec.can_manage_tokens or spec.is_master,
            can_read_all_file_uploads=spec.can_read_all_file_uploads or spec.is_master,
            can_manage_spaces=spec.can_manage_spaces or spec.is_master,
            bucket_permissions=buckets,
            space_permissions=spaces,
            creator_token_id=creator.token_id if creator else None,
            owner=owner,
        )
        s.add(row)
        s.flush()  # assigns the id, which is part of the token
        token = f"{project_id}-{row.id}-{secrets.token_hex(32)}"
        row.secret_hash = hash_token(token)
    return IssuedToken(token=token, row=row)


def refresh_token(catalog: Catalog, token_id: int, caller: Principal) -> IssuedToken:
    """Replace a token's secret; the old one stops working at once."""
    with catalog.session() as s:
        row = _visible_token(s, token_id, caller)
        if row.id != caller.token_id:
            caller.require_manage_tokens()
        token = f"{row.project_id}-{row.id}-{secrets.token_hex(32)}"
        row.secret_hash = hash_token(token)
        row.refreshed_at = utcnow()
    return IssuedToken(token=token, row=row)


def _visible_token(s: Session, token_id: int, caller: Principal) -> Token:
    row = s.get(Token, token_id)
    if row is None or row.project_id != caller.project_id or row.revoked_at is not None:
        raise NotFound(f"token {token_id} not found", code="tokens.notFound")
    return row


def authenticate(catalog: Catalog, token: str | None, *, touch_interval: float = 60.0) -> Principal:
    """Resolve a presented token to a principal; ``None`` gives the anonymous principal.

    Raises ``Unauthenticated`` for a malformed, unknown, revoked or expired token.
    """
    if token is None or token == "":
        return ANONYMOUS
    m = _TOKEN_RE.match(token.strip())
    if not m:
        raise Unauthenticated("invalid access token", code="tokens.invalid")
    token_id = int(m.group(2))
    presented = hash_token(token.strip())
    now = utcnow()
    with catalog.session(readonly=True) as s:
        row = s.get(Token, token_id)
        project = s.get(Project, row.project_id) if row is not None else None
        # compare in constant time even when the row is missing, so timing says nothing
        stored = row.secret_hash if row is not None else "0" * 64
        if not hmac.compare_digest(stored, presented) or row is None or project is None:
            raise Unauthenticated("invalid access token", code="tokens.invalid")
        if row.revoked_at is not None or project.disabled:
            raise Unauthenticated("this access token has been revoked", code="tokens.invalid")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("this access token has expired", code="tokens.expired")
        needs_touch = row.last_used_at is None or (now - row.last_used_at).total_seconds() >= touch_interval
        principal = token_principal(s, row, project)
    if needs_touch:
        with catalog.session() as s:
            fresh = s.get(Token, token_id)
            if fresh is not None:
                fresh.last_used_at = now
    return principal


def token_principal(s: Session, row: Token, project: Project) -> Principal:
    """The principal of ``row``, with its CARTO API key's grants when it is one (read in ``s``).

    A table grant follows its table (``uuid``), as a PostgreSQL grant follows the table's oid:
    after a rename it names the new name, and once the table is dropped it is gone (a new table
    of the same name is not granted).
    """
    key = s.scalar(select(CartoApiKey).where(CartoApiKey.token_id == row.id))
    if key is None:
        return principal_of(row, project)
    uuids = [g["uuid"] for g in key.tables or [] if g.get("uuid")]
    names: dict[str, tuple[str, str]] = {}
    if uuids:
        found = s.execute(
            select(StoredTable.uuid, Bucket.ident, StoredTable.name)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(StoredTable.project_id == project.id, StoredTable.uuid.in_(uuids))
        )
        names = {uuid: (bucket, table) for uuid, bucket, table in found}
    return principal_of(row, project, key, names)


def principal_of(
    row: Token,
    project: Project,
    key: CartoApiKey | None = None,
    tables: Mapping[str, tuple[str, str]] | None = None,
) -> Principal:
    """The principal of ``row``; ``key`` is its CARTO API key (grants) when it is one, ``tables``
    the current (bucket, name) of the tables its grants name by uuid (absent: dropped).

    Without ``key`` a CARTO key's token has only its own (empty) permissions: it fails closed.
    """
    grants = _key_grants(key, tables or {}) if key is not None else {}
    return Principal(
        project_id=project.id,
        project_name=project.name,
        token_id=row.id,
        description=row.description,
        is_master=row.is_master,
        can_manage_buckets=row.can_manage_buckets,
        can_manage_tokens=row.can_manage_tokens,
        can_read_all_file_uploads=row.can_read_all_file_uploads,
        can_manage_spaces=row.can_manage_spaces,
        bucket_permissions=dict(row.bucket_permissions or {}),
        space_permissions=dict(row.space_permissions or {}),
        owner=row.owner,
        **grants,
    )


def _key_grants(key: CartoApiKey, current: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    tables: dict[str, frozenset[str]] = {}
    owned: set[str] = set()
    for grant in key.tables or []:
        if grant.get("uuid"):
            if grant["uuid"] not in current:
                continue  # dropped
            name = grant_key(*current[grant["uuid"]])
        else:  # a grant stored before grants named their table's uuid
            name = grant_key(grant["bucket"], grant["table"])
        tables[name] = tables.get(name, frozenset()) | frozenset(grant["permissions"])
        if grant.get("owner"):
            owned.add(name)
    schemas: dict[str, frozenset[str]] = {}
    for grant in key.schemas or []:
        schemas[grant["bucket"]] = schemas.get(grant["bucket"], frozenset()) | frozenset(grant["permissions"])
    return {
        "api_key_name": key.name,
        "apis": frozenset(key.apis or []),
        "table_grants": tables,
        "schema_grants": schemas,
        "owned_tables": frozenset(owned),
    }


def list_tokens(catalog: Catalog, project_id: int, caller: Principal | None = None) -> list[Token]:
    """Tokens of a project that are not revoked, oldest first."""
    if caller is not None:
        caller.require_manage_tokens()
        if caller.project_id != project_id:
            raise PermissionDenied("a token can only list tokens of its own project")
    with catalog.session(readonly=True) as s:
        rows = s.scalars(
            select(Token).where(Token.project_id == project_id, Token.revoked_at.is_(None)).order_by(Token.id)
        )
        return list(rows)


def get_token(catalog: Catalog, token_id: int, caller: Principal) -> Token:
    """A token's details: its own token for anyone, any token of the project for token managers."""
    caller.require_authenticated()
    if token_id != caller.token_id:
        caller.require_manage_tokens()
    with catalog.session(readonly=True) as s:
        return _visible_token(s, token_id, caller)


def revoke_token(catalog: Catalog, token_id: int, caller: Principal | None = None) -> None:
    """Revoke a token; it stops working at once. ``caller`` None means the local administrator."""
    with catalog.session() as s:
        row = s.get(Token, token_id)
        if caller is not None:
            caller.require_manage_tokens()
            row = _visible_token(s, token_id, caller)
            if row.is_master and not caller.is_master:
                raise PermissionDenied("only a master token may revoke a master token")
        if row is None or row.revoked_at is not None:
            raise NotFound(f"token {token_id} not found", code="tokens.notFound")
        row.revoked_at = utcnow()


def parse_permission_pairs(pairs: Iterable[str], kind: str) -> dict[str, str]:
    """Parse CLI-style ``name=read`` pairs into a permission map."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, level = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"{kind} permission {pair!r} must look like NAME=read or NAME=write")
        out[name] = level
    return _validate_permissions(out, kind)


def token_is_expired(row: Token, now: datetime | None = None) -> bool:
    return row.expires_at is not None and row.expires_at <= (now or utcnow())
