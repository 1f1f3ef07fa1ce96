"""Storage spaces: named object namespaces of a project, with their access rules.

- ``public``: anyone may read, even without a token; writing needs write permission on it.
- ``private`` and every other space: reading and writing need a token with that permission.
- A token of the project with ``canManageSpaces`` (or the master token) creates and deletes spaces
  and may read and write all of them.
- A space with an expiry turns read-only at that moment and is removed by the maintenance
  sweep ``expired_space_grace_days`` later (DCSS's temporary event spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from entrepot.core.auth import Access, Principal
from entrepot.core.catalog import Catalog, Project, Space, StoredObject
from entrepot.core.clock import utcnow
from entrepot.core.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.services import Services

DEFAULT_SPACES: tuple[tuple[str, bool], ...] = (("public", True), ("private", False))
DEFAULT_SPACE_NAMES = frozenset(name for name, _ in DEFAULT_SPACES)
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_PROJECT_REF_RE = re.compile(r"^[a-z0-9-]{1,64}\Z")  # a project name or a numeric id (ASCII only)


@dataclass(frozen=True)
class SpaceInfo:
    """A space as the core hands it to faces (detached from any catalog session)."""

    id: int
    project_id: int
    project_name: str
    name: str
    description: str
    is_public: bool
    created_at: datetime
    expires_at: datetime | None

    @property
    def is_default(self) -> bool:
        return self.name in DEFAULT_SPACE_NAMES

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def access_of(self, principal: Principal) -> Access | None:
        """What ``principal`` may do here: 'write', 'read' or nothing."""
        level: Access | None = None
        if not principal.anonymous and principal.project_id == self.project_id:
            level = principal.space_access(self.name)
        if level is None and self.is_public:
            level = "read"
        if level == "write" and self.is_expired():
            level = "read"
        return level


def validate_space_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInput(
            f"invalid space name {name!r}: use 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit",
            code="spaces.invalidName",
        )
    return name


def add_default_spaces(session: Any, project_id: int) -> None:
    """Add ``public`` and ``private`` to a new project (inside its creating transaction)."""
    now = utcnow()
    for name, public in DEFAULT_SPACES:
        session.add(Space(project_id=project_id, name=name, description="", is_public=public, created_at=now))


def resolve_project(catalog: Catalog, ref: str) -> Project:
    """A project by name (or numeric id), as named in a URL."""
    if not _PROJECT_REF_RE.match(ref):
        raise NotFound(f"project {ref!r} does not exist", code="projects.notFound")
    with catalog.session(readonly=True) as s:
        project = s.scalar(select(Project).where(Project.name == ref))
        if project is None and ref.isdigit() and len(ref) <= 18:  # names are never all digits
            project = s.get(Project, int(ref))
    if project is None or project.disabled:
        raise NotFound(f"project {ref!r} does not exist", code="projects.notFound")
    return project


def _info(space: Space, project_name: str) -> SpaceInfo:
    return SpaceInfo(
        id=space.id,
        project_id=space.project_id,
        project_name=project_name,
        name=space.name,
        description=space.description,
        is_public=space.is_public,
        created_at=space.created_at,
        expires_at=space.expires_at,
    )


def get_space(catalog: Catalog, project: Project, name: str) -> SpaceInfo:
    """A space of ``project`` without any permission check (callers check with :func:`authorize`)."""
    validate_space_name(name)
    with catalog.session(readonly=True) as s:
        space = s.scalar(select(Space).where(Space.project_id == project.id, Space.name == name))
        if space is None:
            raise NotFound(
                f"space {name!r} does not exist in project {project.name!r}", code="spaces.notFound"
            )
        return _info(space, project.name)


def authorize(space: SpaceInfo, principal: Principal, access: Access) -> None:
    """Raise unless ``principal`` may ``access`` the space, with a message that says why not."""
    level = space.access_of(principal)
    if level == "write" or (level == "read" and access == "read"):
        return
    if access == "write" and space.is_expired() and principal.space_access(space.name) == "write":
        raise Conflict(
            f"space {space.name!r} expired at {space.expires_at:%Y-%m-%dT%H:%M:%SZ} and is read-only",
            code="spaces.expired",
        )
    if principal.anonymous:
        what = "writing to" if access == "write" else "reading from"
        raise Unauthenticated(
            f"{what} space {space.name!r} needs a token with {access} permission on it; "
            "send one in the Authorization: Bearer header"
        )
    if principal.project_id != space.project_id:
        raise PermissionDenied(
            f"this token belongs to another project than {space.project_name!r}", code="spaces.accessDenied"
        )
    raise PermissionDenied(
        f"this token has no {access} permission on space {space.name!r}", code="spaces.accessDenied"
    )


def open_space(
    catalog: Catalog, project_ref: str, name: str, principal: Principal, access: Access
) -> SpaceInfo:
    """Resolve ``<project>/<space>`` from a URL and check ``access``: the entry point of every face."""
    project = resolve_project(catalog, project_ref)
    space = get_space(catalog, project, name)
    authorize(space, principal, access)
    return space


@dataclass(frozen=True)
class SpaceSummary:
    space: SpaceInfo
    access: Access | None
    objects: int
    bytes: int


def list_spaces(catalog: Catalog, project_ref: str, principal: Principal) -> list[SpaceSummary]:
    """The spaces of a project that ``principal`` may read, with object counts and sizes."""
    project = resolve_project(catalog, project_ref)
    with catalog.session(readonly=True) as s:
        spaces = [
            _info(sp, project.name)
            for sp in s.scalars(select(Space).where(Space.project_id == project.id).order_by(Space.name))
        ]
        totals = dict(
            (row[0], (row[1], row[2] or 0))
            for row in s.execute(
                select(StoredObject.space_id, func.count(), func.sum(StoredObject.size))
                .join(Space, Space.id == StoredObject.space_id)
                .where(Space.project_id == project.id)
                .group_by(StoredObject.space_id)
            )
        )
    out = []
    for sp in spaces:
        access = sp.access_of(principal)
        if access is None:
            continue
        count, size = totals.get(sp.id, (0, 0))
        out.append(SpaceSummary(sp, access, int(count), int(size)))
    return out


def create_space(
    catalog: Catalog,
    project_ref: str,
    principal: Principal,
    name: str,
    *,
    description: str = "",
    public: bool = False,
    expires_at: datetime | None = None,
) -> SpaceInfo:
    project = resolve_project(catalog, project_ref)
    _require_manager(principal, project)
    validate_space_name(name)
    check_text(description, "description", 4096)
    now = utcnow()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expiresAt must carry a time zone (e.g. 2027-01-31T00:00:00Z)")
        if expires_at <= now:
            raise InvalidInput("expiresAt must be in the future")
    with catalog.session() as s:
        taken = s.scalar(select(Space.id).where(Space.project_id == project.id, Space.name == name))
        if taken is not None:
            raise AlreadyExists(f"space {name!r} already exists", code="spaces.alreadyExists")
        space = Space(
            project_id=project.id,
            name=name,
            description=description,
            is_public=public,
            created_at=now,
            expires_at=expires_at,
        )
        s.add(space)
        s.flush()
        return _info(space, project.name)


def update_space(
    catalog: Catalog,
    project_ref: str,
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    public: bool | None = None,
    expires_at: datetime | EllipsisType | None = ...,
) -> SpaceInfo:
    """Change a space's description, public flag or expiry (``None`` removes the expiry)."""
    project = resolve_project(catalog, project_ref)
    _require_manager(principal, project)
    validate_space_name(name)
    if description is not None:
        check_text(description, "description", 4096)
    with catalog.session() as s:
        space = s.scalar(select(Space).where(Space.project_id == project.id, Space.name == name))
        if space is None:
            raise NotFound(f"space {name!r} does not exist", code="spaces.notFound")
        if public is not None:
            if name in DEFAULT_SPACE_NAMES and public != space.is_public:
                raise Conflict(f"the default space {name!r} keeps its visibility", code="spaces.default")
            space.is_public = public
        if description is not None:
            space.description = description
        if expires_at is not ...:
            if expires_at is not None and name in DEFAULT_SPACE_NAMES:
                raise Conflict(f"the default space {name!r} cannot expire", code="spaces.default")
            if isinstance(expires_at, datetime):
                if expires_at.tzinfo is None:
                    raise InvalidInput("expiresAt must carry a time zone (e.g. 2027-01-31T00:00:00Z)")
                if expires_at <= utcnow():  # past expiry + grace would let the sweep delete it at once
                    raise InvalidInput("expiresAt must be in the future")
            space.expires_at = expires_at
        return _info(space, project.name)


def delete_space(
    services: Services, project_ref: str, principal: Principal, name: str, *, force: bool
) -> int:
    """Remove a space and (with ``force``) its objects; returns how many objects went with it.

    The catalog rows go in one transaction; the blobs are removed by a ``spaces.purge`` job.
    """
    project = resolve_project(services.catalog, project_ref)
    _require_manager(principal, project)
    validate_space_name(name)
    if name in DEFAULT_SPACE_NAMES:
        raise Conflict(f"the default space {name!r} cannot be deleted", code="spaces.default")
    with services.catalog.session() as s:
        space = s.scalar(select(Space).where(Space.project_id == project.id, Space.name == name))
        if space is None:
            raise NotFound(f"space {name!r} does not exist", code="spaces.notFound")
        count = s.scalar(select(func.count()).where(StoredObject.space_id == space.id)) or 0
        if count and not force:
            raise Conflict(
                f"space {name!r} still holds {count} object(s); delete them first or pass force=true",
                code="spaces.notEmpty",
            )
        space_id = space.id
        s.delete(space)
    purge_space_blobs(services, project.id, space_id, principal.token_id)
    return int(count)


def purge_space_blobs(services: Services, project_id: int, space_id: int, token_id: int | None) -> None:
    services.jobs.submit(
        project_id,
        "spaces.purge",
        {"spaceId": space_id},
        token_id=token_id,
        subject=f"space:{space_id}",
    )


def expired_spaces(catalog: Catalog, grace: timedelta) -> list[tuple[int, int, str]]:
    """(project id, space id, name) of spaces whose expiry plus ``grace`` has passed."""
    cutoff = utcnow() - grace
    with catalog.session(readonly=True) as s:
        rows = s.execute(
            select(Space.project_id, Space.id, Space.name).where(
                Space.expires_at.is_not(None), Space.expires_at <= cutoff
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]


def remove_space(services: Services, project_id: int, space_id: int) -> bool:
    """Delete a space's rows (objects and uploads cascade) and queue its blob purge."""
    with services.catalog.session() as s:
        space = s.get(Space, space_id)
        if space is None:
            return False
        s.delete(space)
    purge_space_blobs(services, project_id, space_id, None)
    return True


def _require_manager(principal: Principal, project: Project) -> None:
    principal.require_manage_spaces()
    if principal.project_id != project.id:
        raise PermissionDenied(f"this token belongs to another project than {project.name!r}")
