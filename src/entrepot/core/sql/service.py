"""The SQL API's commands: what a face calls, one command per request, with typed inputs.

A face first turns the request's credentials into a :class:`Caller` (:func:`identify`), then
makes one call:

* :func:`query` runs a script and yields its last result's rows, streamed; :func:`query_file`
  has DuckDB write that result as a parquet or xlsx file;
* :func:`copy_from` loads a streamed ``COPY … FROM STDIN`` body, :func:`copy_to` streams the
  encoded rows of a ``COPY … TO STDOUT``;
* :func:`create_batch`, :func:`batch_job`, :func:`update_batch` and :func:`cancel_batch` manage
  batch jobs (``batch.py``);
* :func:`table_privacy` and :func:`set_table_privacy` read and set who may read a table.

Every command checks the project (it exists, the token belongs to it) and authorises what it
does (``authorize.py``); scripts run as ``execute.py`` says. Results are views (``results.py``,
``batch.BatchJob``) that the face renders in its API's formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from entrepot.core import errors as E
from entrepot.core.auth import Principal, authenticate
from entrepot.core.catalog import Job
from entrepot.core.jobs import CANCELLED, TERMINAL
from entrepot.core.projects import get_project
from entrepot.core.sql import batch, copy
from entrepot.core.sql.authorize import member_project, prepare
from entrepot.core.sql.batch import BatchError, BatchJob
from entrepot.core.sql.catalog_sync import stored_table
from entrepot.core.sql.execute import execute, execute_into, refuse_copy
from entrepot.core.sql.namespace import table_ref
from entrepot.core.sql.results import Loaded, Page, ResultFile, Rows

if TYPE_CHECKING:
    from entrepot.core.services import Services

PRIVACIES = ("private", "public", "link")
FileFormat = Literal["parquet", "xlsx"]


# -- the caller ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a request says about its caller and the project it addresses."""

    key: str | None  # the API key; None for anonymous callers
    project: str | None = None  # the project named in the URL (CARTO's /user/<project>/)
    subdomain: str = ""  # the host's first label (CARTO's <user>.carto.com); "" when none
    basic_user: str | None = None  # the user name of HTTP Basic credentials


@dataclass(frozen=True)
class Caller:
    """An authenticated (or anonymous) principal and the name of the project it addresses."""

    principal: Principal
    project: str
    key: str | None = field(default=None, repr=False)  # the key as presented (the Auth API echoes it)


def identify(services: Services, credentials: Credentials) -> Caller:
    """Authenticate the key and find the project: the URL's, else the subdomain's, else the key's.

    A subdomain names a project only when one has that name (``api.example.com`` does not); an
    HTTP Basic user name must be the project's. Whether the project is enabled and the key
    belongs to it is checked by each command.
    """
    principal = authenticate(
        services.catalog, credentials.key, touch_interval=services.settings.token_touch_interval
    )
    project = credentials.project
    if project is None:
        label = credentials.subdomain
        if label and not label.isdigit() and _is_project(services, label):
            project = label
        elif principal.project_name is not None:
            project = principal.project_name
        else:
            raise E.NotFound(
                "Sorry, we can't find the CARTO user of this request: use /user/<project>/ in the URL "
                "or send an api_key",
                code="sql.unknownUser",
            )
    if credentials.basic_user and credentials.basic_user != project:
        raise E.PermissionDenied(
            f"permission denied: the Basic auth user {credentials.basic_user!r} is not {project!r}",
            code="sql.otherUser",
        )
    return Caller(principal, project, credentials.key)


def _is_project(services: Services, name: str) -> bool:
    """Whether a project (enabled or not) has the name ``name``."""
    try:
        get_project(services.catalog, name)
    except E.NotFound:
        return False
    return True


# -- queries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A script to run, and what to give back of its last result."""

    sql: str
    page: Page | None = None  # one page of the rows (the script must only read)
    geojson: bool = False  # add the_geom as GeoJSON text, at Rows.geojson (the script must only read)
    bounded: bool = True  # hold a read's rows to sql_max_rows too (an answer the client keeps whole)


@contextmanager
def query(services: Services, caller: Caller, query: Query) -> Iterator[Rows]:
    """Run ``query.sql``; yields its last statement's rows while they stream.

    A writing script's result is held in memory, so it is always held to ``sql_max_rows``
    rows. COPY statements are refused here (``copy_from``, ``copy_to``).
    """
    project, statements = prepare(services, caller.principal, caller.project, query.sql)
    refuse_copy(statements)
    limit = services.settings.sql_max_rows
    with execute(
        services,
        project,
        statements,
        max_rows=limit,
        bound=limit if query.bounded else None,
        page=query.page,
        geojson=query.geojson,
        owner=caller.principal,
    ) as rows:
        yield rows


@contextmanager
def query_file(
    services: Services, caller: Caller, sql: str, file_format: FileFormat, *, page: Page | None = None
) -> Iterator[ResultFile]:
    """Run the reading script ``sql``; yields the file DuckDB wrote its last result to (deleted after)."""
    project, statements = prepare(services, caller.principal, caller.project, sql)
    refuse_copy(statements)
    with execute_into(services, project, statements, file_format, page=page) as result:
        yield result


# -- COPY ----------------------------------------------------------------------------------------


def copy_from(
    services: Services, caller: Caller, sql: str, chunks: Iterable[bytes], *, gzip: bool = False
) -> Loaded:
    """Load the COPY data ``chunks`` (gzip-compressed with ``gzip``) into the table ``sql`` names.

    Consumes ``chunks`` to the end on success; on an early error the caller drains the rest.
    """
    return copy.copy_from(services, caller.principal, caller.project, sql, chunks, gzip=gzip)


def copy_to(services: Services, caller: Caller, sql: str) -> Iterator[bytes]:
    """The encoded rows of a ``COPY (query) TO STDOUT``; its errors surface before this returns."""
    return copy.copy_to(services, caller.principal, caller.project, sql)


# -- batch jobs ----------------------------------------------------------------------------------


def create_batch(services: Services, caller: Caller, document: Any) -> BatchJob:
    """Queue a batch job for ``document`` (a SQL string, a list of them, or a fallback document)."""
    row = member_project(services, caller.principal, caller.project)
    batch.require_batch(caller.principal)
    params = batch.normalize(document)
    batch.check_queries(caller.principal, params, lambda who, sql: prepare(services, who, row.id, sql)[1])
    job = services.jobs.submit(
        row.id, batch.KIND, params, token_id=caller.principal.token_id, subject=caller.project, max_attempts=1
    )
    return batch.view(job)


def batch_job(services: Services, caller: Caller, job_id: str) -> BatchJob:
    """The batch job ``job_id`` of the caller's project."""
    return batch.view(_batch_row(services, caller, job_id))


def update_batch(services: Services, caller: Caller, job_id: str, document: Any) -> BatchJob:
    """Replace the queries of a batch job that has not started."""
    job = _batch_row(services, caller, job_id)
    params = batch.normalize(document)
    batch.check_queries(
        caller.principal, params, lambda who, sql: prepare(services, who, job.project_id, sql)[1]
    )
    if not services.jobs.update_params(job.id, job.project_id, params):
        raise BatchError("Job is not pending, it cannot be updated", code="sql.batch.notPending")
    return batch.view(services.jobs.get(job.id))


def cancel_batch(services: Services, caller: Caller, job_id: str) -> BatchJob:
    """Cancel a batch job that has not finished; a running one is answered as cancelled at once."""
    job = _batch_row(services, caller, job_id)
    if job.status in TERMINAL:
        raise BatchError(
            f"Cannot set status from {batch.STATUS_WORDS[job.status]} to cancelled", code="sql.batch.finished"
        )
    try:
        services.jobs.cancel(job.id, job.project_id)
    except E.Conflict:  # it finished meanwhile
        job = services.jobs.get(job.id)
        raise BatchError(
            f"Cannot set status from {batch.STATUS_WORDS[job.status]} to cancelled", code="sql.batch.finished"
        ) from None
    job = services.jobs.get(job.id)
    # a running job is cancelled cooperatively: answered as cancelled at once
    return batch.view(job, status=CANCELLED if job.status not in TERMINAL else None)


def _batch_row(services: Services, caller: Caller, job_id: str) -> Job:
    principal = caller.principal
    row = member_project(services, principal, caller.project)
    if principal.anonymous:
        batch.require_batch(principal)
    missing = BatchError(f"Job with id {job_id} not found", code="sql.batch.notFound")
    if not job_id.isdigit():
        raise missing
    try:  # a job the token may not see (core/jobs/visibility) is "not found", like no job at all
        job = services.jobs.get(int(job_id), row.id, visible_to=principal)
    except E.NotFound:
        raise missing from None
    if job.kind != batch.KIND:
        raise missing
    batch.require_batch(principal)
    return job


# -- table privacy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePrivacy:
    """Who may read a table with SQL: ``private`` (tokens), ``public`` or ``link`` (anyone too)."""

    table: str  # a table of the default schema, or "in.c-main.t"
    privacy: str


def table_privacy(services: Services, caller: Caller, table: str) -> TablePrivacy:
    """The privacy of ``table`` (a table of the default schema, or ``"in.c-main.t"``)."""
    row = member_project(services, caller.principal, caller.project)
    ref = table_ref(table)
    caller.principal.require_bucket(ref.schema, "read")
    with services.catalog.session(readonly=True) as s:
        stored = stored_table(s, row, ref)
        if stored is None:
            raise E.NotFound(f'relation "{table}" does not exist', code="sql.missingRelation")
        return TablePrivacy(table, stored.privacy)


def set_table_privacy(services: Services, caller: Caller, change: TablePrivacy) -> TablePrivacy:
    """Make a table private, public or link-shared (public and link: anonymous SQL may read it)."""
    if change.privacy not in PRIVACIES:
        raise E.InvalidInput(f"privacy must be one of {', '.join(PRIVACIES)}", code="sql.invalidPrivacy")
    row = member_project(services, caller.principal, caller.project)
    ref = table_ref(change.table)
    caller.principal.require_bucket(ref.schema, "write")
    with services.catalog.session() as s:
        stored = stored_table(s, row, ref)
        if stored is None:
            raise E.NotFound(f'relation "{change.table}" does not exist', code="sql.missingRelation")
        stored.privacy = change.privacy
    return change
