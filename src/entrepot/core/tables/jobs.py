"""The job kinds of buckets and tables: their params (built when queued, read when run) and handlers.

Params are core-internal, snake_case and versioned (``"v": 2``). Jobs queued by an older server
carry version 1 params (unversioned, camelCase: ``tableId``, ``dataFileId``, ``whereFilters``
…); :func:`_upgrade_params` renames them when such a job runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from entrepot.core.jobs import JobContext, JobRegistry
from entrepot.core.tables import buckets, extract, load, tables
from entrepot.core.tables.extract import DeleteRowsRequest, ExportRequest
from entrepot.core.tables.filters import RowFilter
from entrepot.core.tables.load import LoadOptions, StoredSource

if TYPE_CHECKING:
    from entrepot.core.services import Services

CREATE = "tables.create"
IMPORT = "tables.import"
DROP = "tables.drop"
ADD_PRIMARY_KEY = "tables.add_primary_key"
REMOVE_PRIMARY_KEY = "tables.remove_primary_key"
OPTIMIZE = "tables.optimize"
EXPORT = extract.EXPORT_KIND
DELETE_ROWS = extract.DELETE_ROWS_KIND
DELETE_BUCKET = "buckets.delete"

PARAMS_VERSION = 2

# version 1 names of the params that version 2 renamed (the others kept theirs)
_V1_NAMES = {
    "tableId": "table_id",
    "bucketId": "bucket_id",
    "primaryKey": "primary_key",
    "dataFileId": "data_file_id",
    "dataUrl": "data_url",
    "escapedBy": "escaped_by",
    "withoutHeaders": "without_headers",
    "skipDuplicatesCheck": "skip_duplicates_check",
    "allowTruncate": "allow_truncate",
    "changedSince": "changed_since",
    "changedUntil": "changed_until",
    "whereColumn": "where_column",
    "whereOperator": "where_operator",
    "whereValues": "where_values",
    "whereFilters": "where_filters",
}


def _upgrade_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params of any version as version 2; version 1 is renamed key by key (``whereFilters`` items too)."""
    if params.get("v") == PARAMS_VERSION:
        return dict(params)
    out: dict[str, Any] = {"v": PARAMS_VERSION}
    for key, value in params.items():
        if key == "whereFilters" and isinstance(value, list):
            value = [
                {("data_type" if k == "dataType" else k): v for k, v in item.items()}
                if isinstance(item, Mapping)
                else item
                for item in value
            ]
        out[_V1_NAMES.get(key, key)] = value
    return out


# -- params, as the service queues them --------------------------------------------------------


def _load_params(source: StoredSource, options: LoadOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "delimiter": options.delimiter,
        "enclosure": options.enclosure,
        "escaped_by": options.escaped_by,
        "without_headers": options.without_headers,
        "columns": list(options.columns) if options.columns is not None else None,
    }
    if source.file_id is not None:
        out["data_file_id"] = source.file_id
        if source.inline:
            out["inline"] = True
    else:
        out["data_url"] = source.url
    return out


def create_params(
    table_id: str,
    bucket_id: str,
    name: str,
    primary_key: Sequence[str],
    source: StoredSource,
    options: LoadOptions,
) -> dict[str, Any]:
    """``tables.create`` (``options`` checked by ``load.check_options``)."""
    return {
        "v": PARAMS_VERSION,
        "table_id": table_id,
        "bucket_id": bucket_id,
        "name": name,
        "primary_key": list(primary_key),
        **_load_params(source, options),
    }


def import_params(table_id: str, source: StoredSource, options: LoadOptions) -> dict[str, Any]:
    """``tables.import`` (``options`` checked by ``load.check_options``)."""
    return {
        "v": PARAMS_VERSION,
        "table_id": table_id,
        "incremental": options.incremental,
        **_load_params(source, options),
    }


def table_params(table_id: str) -> dict[str, Any]:
    """``tables.drop``, ``tables.remove_primary_key`` and ``tables.optimize``."""
    return {"v": PARAMS_VERSION, "table_id": table_id}


def add_primary_key_params(
    table_id: str, columns: Sequence[str], *, skip_duplicates_check: bool
) -> dict[str, Any]:
    return {
        "v": PARAMS_VERSION,
        "table_id": table_id,
        "columns": list(columns),
        "skip_duplicates_check": skip_duplicates_check,
    }


def export_params(request: ExportRequest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "v": PARAMS_VERSION,
        "table_id": request.table_id,
        "gzip": request.gzip,
        "format": request.format,
    }
    if request.columns:
        out["columns"] = list(request.columns)
    if request.limit is not None:
        out["limit"] = request.limit
    out.update(request.row_filter.to_job())
    return out


def delete_rows_params(request: DeleteRowsRequest) -> dict[str, Any]:
    return {
        "v": PARAMS_VERSION,
        "table_id": request.table_id,
        "allow_truncate": request.allow_truncate,
        **request.row_filter.to_job(),
    }


def delete_bucket_params(bucket_id: str, *, force: bool) -> dict[str, Any]:
    return {"v": PARAMS_VERSION, "bucket_id": bucket_id, "force": force}


# -- handlers ----------------------------------------------------------------------------------


def _source(p: Mapping[str, Any]) -> StoredSource:
    file_id = p.get("data_file_id")
    return StoredSource(
        file_id=int(file_id) if file_id is not None else None,
        url=str(p["data_url"]) if p.get("data_url") else None,
        inline=bool(p.get("inline")),
    )


def _options(p: Mapping[str, Any]) -> LoadOptions:
    return LoadOptions(
        delimiter=p.get("delimiter"),
        enclosure=p.get("enclosure"),
        escaped_by=p.get("escaped_by"),
        without_headers=bool(p.get("without_headers")),
        columns=tuple(str(c) for c in p["columns"]) if p.get("columns") else None,
        incremental=bool(p.get("incremental")),
    )


def _subject_table(ctx: JobContext[Services], p: Mapping[str, Any]) -> str:
    """The table a read or delete job is about (early exports named it only as their subject)."""
    return str(p.get("table_id") or ctx.job.subject or "")


def _create(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    return load.create_table(
        ctx,
        bucket_id=str(p["bucket_id"]),
        name=str(p.get("name") or ""),
        primary_key=[str(c) for c in p.get("primary_key") or []],
        source=_source(p),
        options=_options(p),
    )


def _import(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    return load.import_table(ctx, table_id=str(p["table_id"]), source=_source(p), options=_options(p))


def _drop(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    tables.drop_table(ctx.services, ctx.project_id, str(p["table_id"]), ctx)
    return {}


def _add_primary_key(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    tables.set_primary_key(
        ctx.services,
        ctx.project_id,
        str(p["table_id"]),
        [str(c) for c in p.get("columns") or []],
        replace=False,
        skip_duplicates_check=bool(p.get("skip_duplicates_check")),
    )
    return {}


def _remove_primary_key(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    tables.remove_primary_key(ctx.services, ctx.project_id, str(p["table_id"]))
    return {}


def _optimize(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    tables.optimize_table(ctx, str(p["table_id"]))
    return {}


def _export(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    limit = p.get("limit")
    request = ExportRequest(
        table_id=_subject_table(ctx, p),
        columns=[str(c) for c in p["columns"]] if p.get("columns") else None,
        row_filter=RowFilter.from_job(p),
        gzip=bool(p.get("gzip")),
        format=str(p.get("format") or "rfc"),
        limit=int(limit) if limit is not None else None,
    )
    return extract.export_table(ctx, request)


def _delete_rows(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    request = DeleteRowsRequest(
        table_id=_subject_table(ctx, p),
        row_filter=RowFilter.from_job(p),
        allow_truncate=bool(p.get("allow_truncate")),
    )
    return extract.delete_rows(ctx, request)


def _delete_bucket(ctx: JobContext[Services]) -> dict[str, Any]:
    p = _upgrade_params(ctx.params)
    buckets.drop_bucket(
        ctx.services, ctx.project_id, str(p["bucket_id"]), force=bool(p.get("force")), ctx=ctx
    )
    return {}


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(CREATE, _create)
    registry.register(IMPORT, _import)
    registry.register(DROP, _drop)
    registry.register(ADD_PRIMARY_KEY, _add_primary_key)
    registry.register(REMOVE_PRIMARY_KEY, _remove_primary_key)
    registry.register(OPTIMIZE, _optimize)
    registry.register(EXPORT, _export)
    registry.register(DELETE_ROWS, _delete_rows)
    registry.register(DELETE_BUCKET, _delete_bucket)
