"""Projects: the tenants. Creating one also creates its first master token and its default spaces."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from entrepot.core.auth import IssuedToken, TokenSpec, create_token
from entrepot.core.catalog import Catalog, Project
from entrepot.core.errors import AlreadyExists, InvalidInput, NotFound
from entrepot.core.objects.spaces import add_default_spaces

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")


@dataclass(frozen=True)
class NewProject:
    project: Project
    master: IssuedToken


@dataclass(frozen=True)
class ProjectView:
    """A project as the faces show it (a token's owner, a CARTO account)."""

    id: int
    name: str
    created_at: datetime
    is_disabled: bool


def project_view(project: Project) -> ProjectView:
    return ProjectView(project.id, project.name, project.created_at, project.disabled)


def validate_project_name(name: str) -> str:
    if not _NAME_RE.match(name) or name.isdigit():
        raise InvalidInput(
            f"invalid project name {name!r}: use 1-64 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit, not only digits (it appears in URLs as /user/<project>/)"
        )
    return name


def create_project(catalog: Catalog, name: str, description: str = "") -> NewProject:
    """Create a project and its first master token (whose secret is returned once)."""
    validate_project_name(name)
    try:
        with catalog.session() as s:
            if s.scalar(select(Project.id).where(Project.name == name)) is not None:
                raise AlreadyExists(f"project {name!r} already exists", code="projects.alreadyExists")
            project = Project(name=name, description=description)
            s.add(project)
            s.flush()
            add_default_spaces(s, project.id)
    except IntegrityError as exc:  # a concurrent creator won the race
        raise AlreadyExists(f"project {name!r} already exists", code="projects.alreadyExists") from exc
    master = create_token(
        catalog, project.id, TokenSpec(description=f"Master token of {name}", is_master=True)
    )
    return NewProject(project=project, master=master)


def list_projects(catalog: Catalog) -> list[Project]:
    with catalog.session(readonly=True) as s:
        return list(s.scalars(select(Project).order_by(Project.id)))


def get_project(catalog: Catalog, name_or_id: str | int) -> Project:
    with catalog.session(readonly=True) as s:
        if isinstance(name_or_id, int) or str(name_or_id).isdigit():
            project = s.get(Project, int(name_or_id))
        else:
            project = s.scalar(select(Project).where(Project.name == name_or_id))
    if project is None:
        raise NotFound(f"project {name_or_id!r} does not exist", code="projects.notFound")
    return project


def ensure_default_project(catalog: Catalog, name: str) -> NewProject | None:
    """Create the default project on first start; None when any project already exists."""
    with catalog.session(readonly=True) as s:
        if s.scalar(select(Project.id).limit(1)) is not None:
            return None
    try:
        return create_project(catalog, name)
    except AlreadyExists:
        return None  # another process bootstrapped it first
