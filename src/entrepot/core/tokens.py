"""The token commands the faces call: the rules of :mod:`entrepot.core.auth`, answered as views.

:mod:`entrepot.core.auth` holds the tokens themselves (hashing, authentication, permission
checks, the catalog writes the CLI also uses); this module adds what a face shows of a token:
its project and the token that created it, looked up with it, so that a face makes one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from entrepot.core.auth import (
    IssuedToken,
    Principal,
    TokenRef,
    TokenSpec,
    create_token,
    get_token,
    list_tokens,
    refresh_token,
    revoke_token,
    token_is_expired,
    token_refs,
)
from entrepot.core.catalog import Catalog, Project, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import NotFound
from entrepot.core.projects import ProjectView, project_view


@dataclass(frozen=True)
class TokenView:
    """A token as its project's callers see it; ``secret`` only right after it was issued."""

    id: int
    description: str
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    is_expired: bool
    is_disabled: bool  # revoked
    is_master: bool
    can_manage_buckets: bool
    can_manage_tokens: bool
    can_read_all_file_uploads: bool
    can_manage_spaces: bool
    bucket_permissions: Mapping[str, str]
    space_permissions: Mapping[str, str]
    owner: str | None  # the user the token belongs to (exports and templates are theirs)
    project: ProjectView
    creator: TokenRef | None
    secret: str | None = None


def verify(catalog: Catalog, caller: Principal) -> TokenView:
    """The calling token itself."""
    return detail(catalog, caller, caller.token_id or 0)


def detail(catalog: Catalog, caller: Principal, token_id: int) -> TokenView:
    """A token: its own for anyone, any token of the project for token managers."""
    return _views(catalog, [get_token(catalog, token_id, caller)])[0]


def list_project_tokens(catalog: Catalog, caller: Principal) -> list[TokenView]:
    """The caller's project's tokens that are not revoked, oldest first (token managers only)."""
    return _views(catalog, list_tokens(catalog, caller.project_id or 0, caller))


def create(catalog: Catalog, caller: Principal, spec: TokenSpec) -> TokenView:
    """A new token in the caller's project, with its secret (shown this once)."""
    return _issued(catalog, create_token(catalog, caller.project_id or 0, spec, creator=caller))


def refresh(catalog: Catalog, caller: Principal, token_id: int) -> TokenView:
    """The token with a new secret (shown this once); the old one stops working at once."""
    return _issued(catalog, refresh_token(catalog, token_id, caller))


def revoke(catalog: Catalog, caller: Principal, token_id: int) -> None:
    """Revoke a token of the caller's project; it stops working at once."""
    revoke_token(catalog, token_id, caller)


def _issued(catalog: Catalog, issued: IssuedToken) -> TokenView:
    return _views(catalog, [issued.row], secret=issued.token)[0]


def _views(catalog: Catalog, rows: Iterable[Token], *, secret: str | None = None) -> list[TokenView]:
    rows = list(rows)
    now = utcnow()
    creators = token_refs(catalog, {r.creator_token_id for r in rows if r.creator_token_id is not None})
    projects = _projects(catalog, {r.project_id for r in rows})
    return [
        TokenView(
            id=row.id,
            description=row.description,
            created_at=row.created_at,
            refreshed_at=row.refreshed_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            is_expired=token_is_expired(row, now),
            is_disabled=row.revoked_at is not None,
            is_master=row.is_master,
            can_manage_buckets=row.can_manage_buckets,
            can_manage_tokens=row.can_manage_tokens,
            can_read_all_file_uploads=row.can_read_all_file_uploads,
            can_manage_spaces=row.can_manage_spaces,
            bucket_permissions=dict(row.bucket_permissions or {}),
            space_permissions=dict(row.space_permissions or {}),
            owner=row.owner,
            project=projects[row.project_id],
            creator=creators.get(row.creator_token_id) if row.creator_token_id is not None else None,
            secret=secret,
        )
        for row in rows
    ]


def _projects(catalog: Catalog, ids: set[int]) -> dict[int, ProjectView]:
    out: dict[int, ProjectView] = {}
    with catalog.session(readonly=True) as s:
        for project_id in ids:
            project = s.get(Project, project_id)
            if project is None:
                raise NotFound(f"project {project_id!r} does not exist", code="projects.notFound")
            out[project_id] = project_view(project)
    return out
