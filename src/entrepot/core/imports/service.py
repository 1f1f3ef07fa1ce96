"""The Import API's commands: create an import (a file or a URL), show one, list them.

An import is a durable job of kind ``imports.run`` (``jobs.py``); its id is the job's. The
uploaded file is stored as a blob first (bounded by ``url_import_max_bytes``), a URL is only
downloaded by the job (through the URL guard). A small import has finished when ``create``
answers (it waits ``job_response_wait``), so a client's first look already sees it done.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from entrepot.core import errors as E
from entrepot.core.catalog import Job
from entrepot.core.files.rows import safe_name
from entrepot.core.jobs import CANCELLED, FAILED, QUEUED, SUCCEEDED, TERMINAL
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.namespace import DEFAULT_SCHEMA, ensure_default_bucket
from entrepot.core.sql.service import PRIVACIES, Caller

if TYPE_CHECKING:
    from entrepot.core.services import Services

KIND = "imports.run"
PARAMS_VERSION = 1
UPLOAD_CHUNK = 1024 * 1024
LISTED = 100  # imports a listing shows, newest first

# what the running job has reached, by its progress (jobs.py reports these values)
UNPACKING = 10
IMPORTING = 40
GUESSING = 70


@dataclass(frozen=True)
class ImportOptions:
    """CARTO's import parameters."""

    table_name: str | None = None
    privacy: str = "private"
    create_vis: bool = False
    type_guessing: bool = True
    quoted_fields_guessing: bool = True
    content_guessing: bool = False


@dataclass(frozen=True)
class ImportSource:
    """An uploaded file (``upload`` named ``filename``), a URL, or neither (an import with no data)."""

    upload: BinaryIO | None = None
    filename: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ImportedTable:
    id: str  # the table's uuid (also its dataset's id)
    name: str


@dataclass(frozen=True)
class ImportView:
    """An import as the Import API shows it."""

    id: str
    state: str  # pending, unpacking, importing, guessing, complete, failure
    project: str
    options: ImportOptions
    data_type: str | None  # "file", "url" or None
    display_name: str | None
    original_url: str | None
    tables: list[ImportedTable]
    visualization_id: str | None  # the map it created (create_vis, a .carto file), else None
    error_code: str | None  # the core's code (imports.emptyFile…); the face maps it to CARTO's
    error_message: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.state in ("complete", "failure")


def create_import(
    services: Services, caller: Caller, source: ImportSource, options: ImportOptions
) -> ImportView:
    """Queue an import of ``source``; answers once it finished or ``job_response_wait`` passed."""
    principal = caller.principal
    principal.require_authenticated()
    project = member_project(services, principal, caller.project)
    require_create(principal)
    if options.privacy not in PRIVACIES:
        raise E.InvalidInput(
            f"privacy must be one of {', '.join(p.upper() for p in PRIVACIES)}", code="imports.invalidPrivacy"
        )
    ensure_default_bucket(services, project)
    import_uuid = str(uuidlib.uuid4())
    params: dict[str, Any] = {
        "v": PARAMS_VERSION,
        "uuid": import_uuid,
        "source": "none",
        "table_name": options.table_name,
        "privacy": options.privacy,
        "create_vis": options.create_vis,
        "type_guessing": options.type_guessing,
        "quoted_fields_guessing": options.quoted_fields_guessing,
        "content_guessing": options.content_guessing,
    }
    if source.upload is not None:
        try:
            filename = safe_name(source.filename or "upload")
        except E.InvalidInput:
            filename = "upload"
        key = f"imports/{project.id}/{import_uuid}/{filename}"
        services.blobs.put(key, _bounded(source.upload, services.settings.url_import_max_bytes))
        params.update(source="file", blob_key=key, filename=source.filename or filename)
    elif source.url:
        params.update(source="url", url=source.url)
    job = services.jobs.submit(project.id, KIND, params, token_id=principal.token_id, max_attempts=1)
    wait = services.settings.job_response_wait
    if wait > 0:
        job = services.jobs.wait(job.id, timeout=wait)
    return view(job, project.name)


def get_import(services: Services, caller: Caller, import_id: str) -> ImportView:
    """An import of the caller's project; waits up to ``job_response_wait`` for a running one to finish."""
    project = member_project(services, caller.principal, caller.project)
    caller.principal.require_authenticated()
    missing = E.NotFound(f"Import {import_id} not found", code="imports.notFound")
    if not import_id.isdigit():
        raise missing
    try:
        job = services.jobs.get(int(import_id), project.id, visible_to=caller.principal)
    except E.NotFound:
        raise missing from None
    if job.kind != KIND:
        raise missing
    if job.status not in TERMINAL and services.settings.job_response_wait > 0:
        job = services.jobs.wait(job.id, timeout=services.settings.job_response_wait)
    return view(job, project.name)


def list_imports(services: Services, caller: Caller) -> list[ImportView]:
    """The caller's project's recent imports it may see, newest first."""
    project = member_project(services, caller.principal, caller.project)
    caller.principal.require_authenticated()
    jobs = services.jobs.list(project.id, limit=LISTED, kinds=[KIND], visible_to=caller.principal)
    return [view(job, project.name) for job in jobs]


def require_create(principal: Any) -> None:
    if not principal.may_create_in(DEFAULT_SCHEMA):
        raise E.PermissionDenied(
            "this key may not create tables: an import needs a create grant on the schema "
            f"(database.schemas) or write access to the bucket {DEFAULT_SCHEMA}",
            code="imports.permissionDenied",
        )


def _bounded(upload: BinaryIO, limit: int) -> Iterator[bytes]:
    size = 0
    while chunk := upload.read(UPLOAD_CHUNK):
        size += len(chunk)
        if size > limit:
            raise E.PayloadTooLarge(
                f"the file is larger than {limit:,} bytes (setting url_import_max_bytes)",
                code="imports.tooLarge",
            )
        yield chunk


def state_of(job: Job) -> str:
    if job.status == SUCCEEDED:
        return "complete"
    if job.status in (FAILED, CANCELLED):
        return "failure"
    if job.status == QUEUED:
        return "pending"
    if job.progress >= GUESSING:
        return "guessing"
    if job.progress >= IMPORTING:
        return "importing"
    return "unpacking"


def view(job: Job, project: str) -> ImportView:
    params = job.params or {}
    results = job.results or {}
    error = job.error or {}
    options = ImportOptions(
        table_name=params.get("table_name"),
        privacy=params.get("privacy") or "private",
        create_vis=bool(params.get("create_vis")),
        type_guessing=bool(params.get("type_guessing", True)),
        quoted_fields_guessing=bool(params.get("quoted_fields_guessing", True)),
        content_guessing=bool(params.get("content_guessing")),
    )
    source = params.get("source")
    state = state_of(job)
    return ImportView(
        id=str(job.id),
        state=state,
        project=project,
        options=options,
        data_type={"file": "file", "url": "url"}.get(str(source)),
        display_name=params.get("filename") or params.get("url"),
        original_url=params.get("url"),
        tables=[ImportedTable(t["id"], t["name"]) for t in results.get("tables") or []],
        visualization_id=results.get("visualization_id"),
        error_code=(error.get("code") or "imports.failed") if state == "failure" else None,
        error_message=error.get("message") if state == "failure" else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
