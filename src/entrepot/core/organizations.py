"""CARTO organizations and their users (the users API, ``api/v1/organization/<org>/users``).

An organization (``carto_organizations``) is a named group of projects with one **admin
project**; each member project has a ``carto_users`` row (the admin's too) with CARTO's profile
fields: its e-mail, the password (an scrypt hash, never shown) and the rest as ``attributes``.
A CARTO user *is* a project: creating a user creates a project (and its master token, whose
secret the creation answers once, as ``api_key``); deleting one deletes the project with
everything in it.

Who may: a master token of the admin project creates, reads, changes and deletes the
organization's users; a member's own master token reads and changes its own user; every other
key is refused (403), a missing or unknown key is 401. Organizations themselves are made by
the operator (``entrepot projects organization``, :func:`create_organization`).

Deleting a user: the SDK's ``user.delete()`` sends a bare ``DELETE`` (no password confirmation),
which CARTO accepts from the organization admin's key; so does entrepot. The admin user itself
cannot be deleted (409), nor a user with jobs queued or running (409, retry later). The
project's lake is dropped at once; its catalog rows (tables, spaces, objects, files, tokens,
maps…) go in one transaction; the blobs of its files, spaces, imports and exports are removed
by a durable job (``carto.users.purge``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from entrepot.core import errors as E
from entrepot.core.catalog import Bucket, Catalog, Job, Project, Space, StoredTable
from entrepot.core.catalog.models import CartoOrganization, CartoUser, CartoVisualization
from entrepot.core.clock import utcnow
from entrepot.core.jobs import QUEUED, RUNNING, JobContext, JobRegistry
from entrepot.core.projects import create_project, get_project, validate_project_name
from entrepot.core.sql.namespace import DEFAULT_SCHEMA
from entrepot.core.sql.service import Caller

if TYPE_CHECKING:
    from entrepot.core.services import Services

PURGE = "carto.users.purge"
PROFILE_FIELDS = (
    "name",
    "last_name",
    "description",
    "location",
    "website",
    "twitter_username",
    "disqus_shortname",
    "available_for_hire",
    "google_maps_query_string",
    "avatar_url",
    "soft_geocoding_limit",
    "viewer",
    "quota_in_bytes",
)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\Z")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class UserView:
    """A CARTO user of an organization as the users API shows it (never its password)."""

    username: str
    organization: str
    email: str
    org_admin: bool
    table_count: int  # what DatasetManager.all() lists for its owner
    all_visualization_count: int  # what VisualizationManager.all() lists for its owner
    public_visualization_count: int
    db_size_in_bytes: int
    created_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)  # the new master token, on creation only


@dataclass(frozen=True)
class UserInput:
    """What a create or update sends; None leaves a field as it is."""

    username: str | None = None
    email: str | None = None
    password: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        again = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(again, base64.b64decode(digest))


# -- the operator's side -----------------------------------------------------------------------------


def create_organization(catalog: Catalog, name: str, admin_project: str, email: str = "") -> None:
    """Make ``admin_project`` the admin of a new organization ``name``."""
    validate_project_name(name)
    project = get_project(catalog, admin_project)
    with catalog.session() as s:
        if s.scalar(select(CartoOrganization.id).where(CartoOrganization.name == name)) is not None:
            raise E.AlreadyExists(f"organization {name!r} already exists", code="organizations.alreadyExists")
        if s.get(CartoUser, project.id) is not None:
            raise E.Conflict(
                f"project {admin_project!r} already belongs to an organization", code="organizations.member"
            )
        org = CartoOrganization(name=name, admin_project_id=project.id)
        s.add(org)
        s.flush()
        s.add(CartoUser(project_id=project.id, organization_id=org.id, email=email, attributes={}))


# -- the users API ---------------------------------------------------------------------------------------


def _org(s: Any, name: str | None, caller_project_id: int | None) -> CartoOrganization:
    org: CartoOrganization | None
    if name is not None:
        org = s.scalar(select(CartoOrganization).where(CartoOrganization.name == name))
    else:  # api/v1/users: the caller's organization
        member = s.get(CartoUser, caller_project_id) if caller_project_id is not None else None
        org = s.get(CartoOrganization, member.organization_id) if member is not None else None
    if org is None:
        raise E.NotFound(f"Organization not found: {name or '(none)'}", code="organizations.notFound")
    return org


def _member(s: Any, org: CartoOrganization, username: str) -> tuple[Project, CartoUser]:
    row = s.execute(
        select(Project, CartoUser)
        .join(CartoUser, CartoUser.project_id == Project.id)
        .where(Project.name == username, CartoUser.organization_id == org.id)
    ).first()
    if row is None:
        raise E.NotFound(f"User not found: {username}", code="organizations.userNotFound")
    return row[0], row[1]


def _counts(s: Any, project: Project) -> tuple[int, int, int, int]:
    tables = s.execute(
        select(func.count(StoredTable.id), func.coalesce(func.sum(StoredTable.data_size_bytes), 0))
        .join(Bucket, StoredTable.bucket_id == Bucket.id)
        .where(Bucket.project_id == project.id, Bucket.ident == DEFAULT_SCHEMA)
    ).one()
    maps = s.scalar(
        select(func.count(CartoVisualization.id)).where(CartoVisualization.project_id == project.id)
    )
    public = s.scalar(
        select(func.count(CartoVisualization.id)).where(
            CartoVisualization.project_id == project.id, CartoVisualization.privacy == "public"
        )
    )
    return int(tables[0] or 0), int(maps or 0), int(public or 0), int(tables[1] or 0)


def _view(
    s: Any, org: CartoOrganization, project: Project, user: CartoUser, api_key: str | None = None
) -> UserView:
    table_count, maps, public, size = _counts(s, project)
    return UserView(
        username=project.name,
        organization=org.name,
        email=user.email,
        org_admin=project.id == org.admin_project_id,
        table_count=table_count,
        all_visualization_count=maps,
        public_visualization_count=public,
        db_size_in_bytes=size,
        created_at=project.created_at,
        attributes=dict(user.attributes or {}),
        api_key=api_key,
    )


def _profile(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if k in PROFILE_FIELDS}


def _check_email(email: str | None) -> None:
    if email is not None and not _EMAIL_RE.match(email):
        raise E.InvalidInput(f"invalid e-mail address: {email!r}", code="organizations.invalidEmail")


def get_user(services: Services, caller: Caller, organization: str | None, username: str) -> UserView:
    """A user of the organization (the admin: any; a member: itself)."""
    with services.catalog.session(readonly=True) as s:
        org = _org(s, organization, caller.principal.project_id)
        _require(caller, org, username, admin_only=False)
        project, user = _member(s, org, username)
        return _view(s, org, project, user)


def _require(caller: Caller, org: CartoOrganization, username: str, *, admin_only: bool) -> None:
    principal = caller.principal
    if principal.anonymous:
        raise E.Unauthenticated("the users API needs an API key")
    if not principal.is_master:
        raise E.PermissionDenied("the users API needs a master API key", code="organizations.denied")
    if principal.project_id == org.admin_project_id:
        return
    if admin_only or caller.project != username:  # identify() made the key a member of caller.project
        raise E.PermissionDenied("only the organization's admin may do this", code="organizations.notAdmin")


def create_user(services: Services, caller: Caller, organization: str | None, spec: UserInput) -> UserView:
    """A new user: a project in the organization, with its master token (answered once)."""
    if not spec.username:
        raise E.InvalidInput("username is required", code="organizations.noUsername")
    with services.catalog.session(readonly=True) as s:
        org = _org(s, organization, caller.principal.project_id)
        _require(caller, org, spec.username, admin_only=True)
    _check_email(spec.email)
    new = create_project(services.catalog, spec.username, description=f"CARTO user of {org.name}")
    with services.catalog.session() as s:
        s.add(
            CartoUser(
                project_id=new.project.id,
                organization_id=org.id,
                email=spec.email or "",
                password_hash=hash_password(spec.password) if spec.password else None,
                attributes=_profile(spec.attributes),
            )
        )
        s.flush()
        project = s.get(Project, new.project.id)
        user = s.get(CartoUser, new.project.id)
        assert project is not None and user is not None
        return _view(s, org, project, user, api_key=new.master.token)


def update_user(
    services: Services, caller: Caller, organization: str | None, username: str, change: UserInput
) -> UserView:
    """Change a user's e-mail, password and profile (the admin: any user; a member: itself)."""
    _check_email(change.email)
    with services.catalog.session() as s:
        org = _org(s, organization, caller.principal.project_id)
        _require(caller, org, username, admin_only=False)
        project, user = _member(s, org, username)
        if change.username not in (None, username):
            raise E.InvalidInput("a user cannot be renamed", code="organizations.rename")
        if change.email is not None:
            user.email = change.email
        if change.password:
            user.password_hash = hash_password(change.password)
        if change.attributes:
            user.attributes = {**(user.attributes or {}), **_profile(change.attributes)}
        user.updated_at = utcnow()
        s.flush()
        return _view(s, org, project, user)


def delete_user(services: Services, caller: Caller, organization: str | None, username: str) -> None:
    """Delete a user: its project's lake, catalog rows and (by a durable job) blobs."""
    with services.catalog.session(readonly=True) as s:
        org = _org(s, organization, caller.principal.project_id)
        _require(caller, org, username, admin_only=True)
        project, _user = _member(s, org, username)
        if project.id == org.admin_project_id:
            raise E.Conflict("the organization's admin cannot be deleted", code="organizations.adminUser")
        space_ids = list(s.scalars(select(Space.id).where(Space.project_id == project.id)))
        # no job of the project may still be running against its lake
        busy = s.scalar(
            select(func.count(Job.id)).where(Job.project_id == project.id, Job.status.in_((QUEUED, RUNNING)))
        )
    if busy:
        raise E.Conflict(
            f"user {username} has {busy} jobs queued or running; retry once they finished",
            code="organizations.userBusy",
        )
    services.engine.drop_lake(project.name)
    with services.catalog.session() as s:
        row = s.get(Project, project.id)
        if row is not None:
            s.delete(row)  # tokens, buckets, tables, spaces, objects, files, maps… cascade
    services.jobs.submit(
        org.admin_project_id,
        PURGE,
        {"v": 1, "project_id": project.id, "space_ids": space_ids},
        token_id=caller.principal.token_id,
        subject=f"project:{project.id}",
    )


def purge_job(ctx: JobContext[Services]) -> dict[str, Any]:
    """Remove the blobs of a deleted project: files, spaces, import uploads, export files."""
    project_id = int(ctx.params["project_id"])
    with ctx.services.catalog.session(readonly=True) as s:
        if s.get(Project, project_id) is not None:  # never purge a live project's bytes
            return {"skipped": "the project exists"}
    blobs = ctx.services.blobs
    removed = 0
    for prefix in (
        f"projects/{project_id}/",
        f"imports/{project_id}/",
        f"exports/{project_id}/",
        f"carto-exports/{project_id}/",
        *(f"spaces/{space_id}/" for space_id in ctx.params.get("space_ids") or []),
    ):
        removed += blobs.delete_prefix(prefix)
    return {"blobsRemoved": removed}


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(PURGE, purge_job)


__all__ = [
    "PURGE",
    "UserInput",
    "UserView",
    "check_password",
    "create_organization",
    "create_user",
    "delete_user",
    "get_user",
    "update_user",
]
