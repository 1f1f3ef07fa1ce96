"""Storage spaces: named object namespaces of a project, their look-ups and access rules.

- ``public``: anyone may read, even without a token; writing needs write permission on it.
- ``private`` and every other space: reading and writing need a token with that permission.
- A token of the project with ``canManageSpaces`` (or the master token) creates and deletes spaces
  and may read and write all of them.
- A space with an expiry turns read-only at that moment and is removed by the maintenance
  sweep ``expired_space_grace_days`` later (DCSS's temporary event spaces).

The commands that manage spaces (list, create, update, delete) are in
:mod:`entrepot.core.objects.service`; the sweep and the blob purge in :mod:`.jobs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, select

from entrepot.core.auth import Access, Principal
from entrepot.core.catalog import Catalog, Project, Space
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated

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


# A project (by name, or by id) and its space of a given name, in one statement: the project's
# row is there whenever the project is, the space's columns are NULL when it has no such space.
# Built once; a caller may add columns and joins (core/objects/service.py adds the object).
_PROJECT_AND_SPACE = (
    select(
        Project.id.label("project_id"),
        Project.name.label("project_name"),
        Project.disabled.label("project_disabled"),
        Space.id.label("space_id"),
        Space.name.label("space_name"),
        Space.description.label("space_description"),
        Space.is_public.label("space_public"),
        Space.created_at.label("space_created_at"),
        Space.expires_at.label("space_expires_at"),
    )
    .select_from(Project)
    .outerjoin(Space, and_(Space.project_id == Project.id, Space.name == bindparam("space")))
)
SPACE_BY_PROJECT_NAME = _PROJECT_AND_SPACE.where(Project.name == bindparam("project"))
SPACE_BY_PROJECT_ID = _PROJECT_AND_SPACE.where(Project.id == bindparam("project_id"))


def locate_space(
    conn: Connection,
    ref: str,
    name: str,
    *,
    by_name: Select[*tuple[Any, ...]] = SPACE_BY_PROJECT_NAME,
    by_id: Select[*tuple[Any, ...]] = SPACE_BY_PROJECT_ID,
    **params: Any,
) -> Row[*tuple[Any, ...]] | None:
    """The row of project ``ref`` (a name, or a numeric id, as in a URL) joined with its space
    ``name`` (:data:`SPACE_BY_PROJECT_NAME`'s columns), None without such a project; read it with
    :func:`space_of_row`. ``by_name``/``by_id`` are those statements with more columns, ``params``
    their further parameters."""
    if not _PROJECT_REF_RE.match(ref):
        return None
    space = name if isinstance(name, str) and _NAME_RE.match(name) else ""  # "" names no space
    row = conn.execute(by_name, {"project": ref, "space": space, **params}).first()
    if row is None and ref.isdigit() and len(ref) <= 18:  # names are never all digits
        row = conn.execute(by_id, {"project_id": int(ref), "space": space, **params}).first()
    return row


def space_of_row(row: Row[*tuple[Any, ...]] | None, ref: str, name: str) -> SpaceInfo:
    """The space a :func:`locate_space` row names, refused as :func:`resolve_project` then
    :func:`get_space` would (same errors, same order)."""
    if row is None or row.project_disabled:
        raise NotFound(f"project {ref!r} does not exist", code="projects.notFound")
    validate_space_name(name)
    if row.space_id is None:
        raise NotFound(
            f"space {name!r} does not exist in project {row.project_name!r}", code="spaces.notFound"
        )
    return SpaceInfo(
        id=row.space_id,
        project_id=row.project_id,
        project_name=row.project_name,
        name=row.space_name,
        description=row.space_description,
        is_public=row.space_public,
        created_at=row.space_created_at,
        expires_at=row.space_expires_at,
    )


def find_space(catalog: Catalog, ref: str, name: str) -> SpaceInfo:
    """Space ``name`` of project ``ref`` (as named in a URL), without any permission check (callers
    check with :func:`authorize`): :func:`resolve_project` and :func:`get_space` in one statement."""
    with catalog.read() as conn:
        row = locate_space(conn, ref, name)
    return space_of_row(row, ref, name)


def space_info(space: Space, project_name: str) -> SpaceInfo:
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
        return space_info(space, project.name)


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


def require_manager(principal: Principal, project: Project) -> None:
    """Raise unless ``principal`` may manage the spaces of ``project``."""
    principal.require_manage_spaces()
    if principal.project_id != project.id:
        raise PermissionDenied(f"this token belongs to another project than {project.name!r}")
