"""The bucket and table commands the faces call, one per request: typed inputs in, views out.

Each command checks the caller's access first (a missing or unreadable bucket or table is
``NotFound``), then its inputs, then acts. Slow work is queued as a job (:mod:`.jobs` holds the
kinds and their params) and answered as a :class:`~entrepot.core.jobs.views.JobView` after
at most ``job_response_wait`` seconds, so a small job is already finished when it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.jobs import SUCCEEDED
from entrepot.core.jobs import service as job_service
from entrepot.core.jobs.views import JobView
from entrepot.core.tables import buckets, extract, jobs, load, tables
from entrepot.core.tables.filters import RowFilter
from entrepot.core.tables.load import LoadOptions, LoadSource
from entrepot.core.tables.names import validate_table_name
from entrepot.core.tables.store import (
    find_table,
    get_bucket,
    get_table,
    table_ident,
    table_taken,
    taken_table_name,
)
from entrepot.core.tables.views import BucketView, MetadataView, TableView, bucket_view

if TYPE_CHECKING:
    from entrepot.core.services import Services

# -- access -----------------------------------------------------------------------------------


def check_bucket(services: Services, principal: Principal, bucket_id: str, access: str = "read") -> None:
    """``NotFound`` unless the caller may ``access`` the bucket (a face whose own parameter
    parsing failed asks this first, so that a missing bucket still answers 404)."""
    get_bucket(services, principal, bucket_id, access)


def check_table(services: Services, principal: Principal, table_id: str, access: str = "read") -> None:
    """``NotFound`` unless the caller may ``access`` the table (see :func:`check_bucket`)."""
    get_table(services, principal, table_id, access)


# -- buckets ----------------------------------------------------------------------------------


def list_buckets(services: Services, principal: Principal) -> list[BucketView]:
    """The project's buckets the caller may read, by id."""
    return [bucket_view(b) for b in buckets.list_buckets(services, principal)]


def create_bucket(
    services: Services,
    principal: Principal,
    name: str | None,
    *,
    stage: str | None = None,
    description: str = "",
    display_name: str | None = None,
) -> BucketView:
    """Create bucket ``<stage>.c-<name>`` (its lake schema too); ``AlreadyExists`` if it is taken."""
    bucket = buckets.create_bucket(
        services, principal, name, stage=stage, description=description, display_name=display_name
    )
    return bucket_view(bucket)


def bucket_detail(
    services: Services, principal: Principal, bucket_id: str
) -> tuple[BucketView, list[TableView]]:
    """A readable bucket and its tables (those the caller may read, by name)."""
    bucket = get_bucket(services, principal, bucket_id)
    return bucket_view(bucket), tables.list_tables(services, principal, bucket_row_id=bucket.id)


def bucket_tables(services: Services, principal: Principal, bucket_id: str) -> list[TableView]:
    """The tables of a readable bucket, by name."""
    return bucket_detail(services, principal, bucket_id)[1]


def delete_bucket(
    services: Services,
    principal: Principal,
    bucket_id: str,
    *,
    force: bool = False,
    run_async: bool = False,
    run_id: str | None = None,
) -> JobView | None:
    """Delete a bucket (with its tables when ``force``): now, or as a ``buckets.delete`` job.

    The checks (it exists, the token manages buckets, it is empty unless ``force``) run now
    either way, so an async delete that cannot succeed is refused at once.
    """
    bucket = buckets.check_delete(services, principal, bucket_id, force=force)
    if run_async:
        return job_service.submit(
            services,
            principal,
            jobs.DELETE_BUCKET,
            jobs.delete_bucket_params(bucket.ident, force=force),
            subject=bucket.ident,
            run_id=run_id,
        )
    buckets.delete_bucket(services, principal, bucket.ident, force=force)
    return None


# -- tables -----------------------------------------------------------------------------------


def list_tables(services: Services, principal: Principal) -> list[TableView]:
    """Every table the caller may read, by id."""
    return tables.list_tables(services, principal)


def table_detail(services: Services, principal: Principal, table_id: str) -> TableView:
    """One readable table with its bucket and metadata."""
    return tables.table_detail(services, principal, table_id)


def update_table(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    primary_key: Sequence[str] | None = None,
    display_name: str | None = None,
) -> TableView:
    """Replace the table's primary key (synchronously, duplicates checked).

    ``display_name`` is accepted and kept as it is: a table's display name is its name.
    Giving neither is an error.
    """
    table = get_table(services, principal, table_id, "write")
    if primary_key is not None:
        table = tables.set_primary_key(services, table.project_id, table_id, primary_key, replace=True)
    elif display_name is None:
        raise InvalidInput("nothing to update: give primaryKey", code="tables.validation")
    return tables.view_of(services, table)


def delete_table(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    run_async: bool = False,
    run_id: str | None = None,
) -> JobView | None:
    """Drop a table (lake rows, catalog entry, metadata): now, or as a ``tables.drop`` job."""
    table = get_table(services, principal, table_id, "write")
    if run_async:
        ident = table_ident(table, services=services)
        return _submit(services, principal, jobs.DROP, jobs.table_params(ident), ident, run_id)
    tables.delete_table(services, principal, table_id)
    return None


def create_table(
    services: Services,
    principal: Principal,
    bucket_id: str,
    name: str | None,
    source: LoadSource,
    options: LoadOptions,
    *,
    primary_key: Sequence[str] = (),
    run_id: str | None = None,
) -> JobView:
    """Queue a ``tables.create`` job: table ``name`` of a writable bucket from CSV.

    Refused at once: a name in use (also in other letter case), an unsupported or ambiguous
    source, a bad dialect or header, a File that is not there, a URL the guard refuses.
    """
    bucket = get_bucket(services, principal, bucket_id, "write")
    name = validate_table_name(name)
    table_id = f"{bucket.ident}.{name}"
    existing = taken_table_name(services, bucket.id, name)
    if existing is not None:
        raise table_taken(bucket.ident, name, existing)
    stored, checked = _checked_load(services, principal, source, options, run_id)
    params = jobs.create_params(table_id, bucket.ident, name, primary_key, stored, checked)
    return _submit(services, principal, jobs.CREATE, params, table_id, run_id)


def import_table(
    services: Services,
    principal: Principal,
    table_id: str,
    source: LoadSource,
    options: LoadOptions,
    *,
    run_id: str | None = None,
) -> JobView:
    """Queue a ``tables.import`` job: CSV into a writable table (``options.incremental``: merge)."""
    table = get_table(services, principal, table_id, "write")
    ident = table_ident(table, services=services)
    stored, checked = _checked_load(services, principal, source, options, run_id)
    return _submit(
        services, principal, jobs.IMPORT, jobs.import_params(ident, stored, checked), ident, run_id
    )


def _checked_load(
    services: Services, principal: Principal, source: LoadSource, options: LoadOptions, run_id: str | None
) -> tuple[load.StoredSource, LoadOptions]:
    """The source and options of a create or import, checked in the order the errors are reported."""
    load.check_source(source)
    checked = load.check_options(options)
    return load.store_source(services, principal, source, run_id=run_id), checked


def add_primary_key(
    services: Services,
    principal: Principal,
    table_id: str,
    columns: Sequence[str],
    *,
    skip_duplicates_check: bool = False,
    run_id: str | None = None,
) -> JobView:
    """Queue a ``tables.add_primary_key`` job (the table must have none; duplicates are checked by the job)."""
    table = tables.check_add_primary_key(services, principal, table_id, columns)
    ident = table_ident(table, services=services)
    params = jobs.add_primary_key_params(ident, columns, skip_duplicates_check=skip_duplicates_check)
    return _submit(services, principal, jobs.ADD_PRIMARY_KEY, params, ident, run_id)


def remove_primary_key(
    services: Services, principal: Principal, table_id: str, *, run_id: str | None = None
) -> JobView:
    """Queue a ``tables.remove_primary_key`` job."""
    ident = _writable_ident(services, principal, table_id)
    return _submit(services, principal, jobs.REMOVE_PRIMARY_KEY, jobs.table_params(ident), ident, run_id)


def optimize_table(
    services: Services, principal: Principal, table_id: str, *, run_id: str | None = None
) -> JobView:
    """Queue a ``tables.optimize`` job (flush inlined rows, compact the table's files)."""
    ident = _writable_ident(services, principal, table_id)
    return _submit(services, principal, jobs.OPTIMIZE, jobs.table_params(ident), ident, run_id)


def created_table(services: Services, job: JobView) -> TableView | None:
    """The table a finished ``tables.create`` job made, as it is now; None for any other job,
    or when the table has been dropped since (its results then say all there is)."""
    results = job.results
    if job.kind != jobs.CREATE or job.status != SUCCEEDED or not isinstance(results, Mapping):
        return None
    if not results.get("id"):
        return None
    try:
        table, _ = find_table(services, job.project_id, str(results["id"]))
    except NotFound:
        return None
    return tables.view_of(services, table)


# -- metadata ---------------------------------------------------------------------------------


def list_metadata(services: Services, principal: Principal, table_id: str) -> list[MetadataView]:
    """The table-level metadata of a readable table."""
    return tables.list_metadata(services, principal, table_id)


def upsert_metadata(
    services: Services,
    principal: Principal,
    table_id: str,
    provider: str | None,
    metadata: Any = None,
    columns_metadata: Any = None,
) -> tuple[list[MetadataView], dict[str, list[MetadataView]]]:
    """Upsert table and column metadata of one provider; the entries written (table, by column)."""
    return tables.upsert_metadata(services, principal, table_id, provider, metadata, columns_metadata)


def delete_metadata(services: Services, principal: Principal, table_id: str, metadata_id: str) -> None:
    tables.delete_metadata(services, principal, table_id, metadata_id)


# -- rows: preview, export, delete --------------------------------------------------------------


def preview(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    columns: Sequence[str] | None = None,
    row_filter: RowFilter | None = None,
    limit: int = 100,
    offset: int = 0,
    order: extract.Order | None = None,
) -> tuple[list[str], list[tuple[str | None, ...]]]:
    """One page of a readable table's rows as strings (None for NULL), with the column names."""
    return extract.preview(
        services,
        principal,
        table_id,
        columns=columns,
        row_filter=row_filter,
        limit=limit,
        offset=offset,
        order=order,
    )


def export_table(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    columns: Sequence[str] | None = None,
    row_filter: RowFilter | None = None,
    gzip: bool = False,
    format: str | None = None,
    limit: int | None = None,
    run_id: str | None = None,
) -> JobView:
    """Queue a ``tables.export`` job: the rows (columns, filter, limit) as a CSV File."""
    request = extract.check_export(
        services,
        principal,
        table_id,
        columns=columns,
        row_filter=row_filter or RowFilter(),
        gzip=gzip,
        format=format,
        limit=limit,
    )
    return _submit(services, principal, jobs.EXPORT, jobs.export_params(request), table_id, run_id)


def delete_rows(
    services: Services,
    principal: Principal,
    table_id: str,
    row_filter: RowFilter,
    *,
    allow_truncate: bool = False,
    run_id: str | None = None,
) -> JobView:
    """Queue a ``tables.delete_rows`` job; an empty filter needs ``allow_truncate``."""
    request = extract.check_delete_rows(
        services, principal, table_id, row_filter, allow_truncate=allow_truncate
    )
    return _submit(services, principal, jobs.DELETE_ROWS, jobs.delete_rows_params(request), table_id, run_id)


# -- internals ----------------------------------------------------------------------------------


def _writable_ident(services: Services, principal: Principal, table_id: str) -> str:
    return table_ident(get_table(services, principal, table_id, "write"), services=services)


def _submit(
    services: Services,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    subject: str,
    run_id: str | None,
) -> JobView:
    return job_service.submit(services, principal, kind, params, subject=subject, run_id=run_id)
