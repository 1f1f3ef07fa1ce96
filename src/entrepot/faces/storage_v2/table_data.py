"""Keboola table data endpoints: data preview, export and delete rows (reference §3.7-§3.11).

Data preview answers in one of three modes:

* CSV (default, also ``format=rfc``): header plus rows, every field double-quoted, LF line
  ends, ``limit`` 100 by default and at most 1000 (400 above). kbcstorage sends
  ``Accept: */*`` and gets CSV.
* ``format=json``, or an ``Accept`` header that asks for ``application/json`` and not for
  CSV: Keboola's ``{"columns": [...], "rows": [[{columnName, value, isTruncated}]]}``
  (values over 16 KiB are cut and flagged), same limits.
* row objects (entrepot extension for the seeds' pagination): when ``offset`` is present and
  ``format`` is not, a JSON array of ``{column: value}`` objects, ``[]`` past the end; ``limit``
  may go up to ``preview_page_limit`` (10000 by default; 400 above).

Rows come in a stable order (primary key, else insertion order) so offset pages line up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput, NotSupported
from entrepot.core.tables import service as tables
from entrepot.core.tables.extract import parse_order
from entrepot.core.tables.filters import RowFilter
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller
from entrepot.faces.storage_v2.jobs import job_response
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.table_params import parse_after, run_id

router = APIRouter(prefix=PREFIX)

PREVIEW_DEFAULT_LIMIT = 100
PREVIEW_MAX_LIMIT = 1000  # Keboola's documented maximum (CSV and format=json)
TRUNCATE_AT = 16 * 1024  # format=json cuts longer values and sets isTruncated


def render_csv(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> str:
    """Header plus rows, every field double-quoted (inner quotes doubled), LF line ends, NULL as ``""``."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def _json_rows(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> list[list[dict[str, Any]]]:
    out = []
    for row in rows:
        cells = []
        for name, value in zip(columns, row, strict=True):
            truncated = value is not None and len(value) > TRUNCATE_AT
            cells.append(
                {
                    "columnName": name,
                    "value": value[:TRUNCATE_AT] if value is not None and truncated else value,
                    "isTruncated": truncated,
                }
            )
        out.append(cells)
    return out


@router.get("/tables/{table_id}/data-preview", summary="Preview table rows (CSV, JSON or row objects)")
@router.get("/tables/{table_id}/data-preview/", include_in_schema=False)
def data_preview(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    services = services_of(request)
    page = parse_after(
        lambda: tables.check_table(services, principal, table_id, "read"),
        lambda: _preview_page(
            params, request.headers.get("accept", ""), services.settings.preview_page_limit
        ),
    )
    columns, rows = tables.preview(
        services,
        principal,
        table_id,
        columns=page.columns,
        row_filter=page.row_filter,
        limit=page.limit,
        offset=page.offset,
        order=page.order,
    )
    if page.mode == "rows":
        return JSONResponse([dict(zip(columns, row, strict=True)) for row in rows])
    if page.mode == "json":
        return JSONResponse({"columns": columns, "rows": _json_rows(columns, rows)})
    return Response(render_csv(columns, rows), media_type="text/csv; charset=utf-8")


@dataclass(frozen=True)
class _Page:
    mode: str  # csv, json (Keboola's cells) or rows (row objects)
    columns: list[str] | None
    row_filter: RowFilter
    limit: int
    offset: int
    order: list[tuple[str, str]]


def _preview_page(params: Params, accept: str, page_limit: int) -> _Page:
    fmt = params.str("format")
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt not in ("rfc", "json"):
            raise InvalidInput(f"unknown preview format {fmt!r}; use rfc (CSV, the default) or json")
    row_objects = fmt is None and "offset" in params
    if fmt is None and not row_objects and _wants_json(accept):
        fmt = "json"
    cap = page_limit if row_objects else PREVIEW_MAX_LIMIT
    limit = params.int("limit", PREVIEW_DEFAULT_LIMIT, minimum=0)
    assert limit is not None
    if limit > cap:
        raise InvalidInput(
            f"limit {limit} is over the maximum of {cap} rows per preview"
            + (
                ""
                if row_objects
                else "; page with offset (up to preview_page_limit rows) or export the table"
            ),
            code="storage.tables.previewLimit",
        )
    offset = params.int("offset", 0, minimum=0) or 0
    return _Page(
        mode="rows" if row_objects else "json" if fmt == "json" else "csv",
        columns=params.list("columns") or None,
        row_filter=RowFilter.from_params(params.values),
        limit=limit,
        offset=offset,
        order=parse_order(params.get("orderBy")),
    )


def _export(table_id: str, request: Request, principal: Principal, params: Params) -> JSONResponse:
    services = services_of(request)
    columns, row_filter, gzip, fmt, limit = parse_after(
        lambda: tables.check_table(services, principal, table_id, "read"), lambda: _export_params(params)
    )
    job = tables.export_table(
        services,
        principal,
        table_id,
        columns=columns,
        row_filter=row_filter,
        gzip=gzip,
        format=fmt,
        limit=limit,
        run_id=run_id(request),
    )
    return job_response(services, job)


def _export_params(params: Params) -> tuple[list[str] | None, RowFilter, bool, str | None, int | None]:
    """Columns, filter, gzip, format and limit of an export (csv is the one file type)."""
    file_type = (params.str("fileType") or "csv").lower()
    if file_type != "csv":
        raise NotSupported(f"export fileType {file_type!r} is not supported; entrepot exports csv")
    return (
        params.list("columns") or None,
        RowFilter.from_params(params.values),
        params.bool("gzip"),
        params.str("format"),
        params.int("limit"),
    )


@router.post("/tables/{table_id}/export-async", status_code=202, summary="Export a table to a file (job)")
def export_post(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    return _export(table_id, request, principal, params)


@router.get(
    "/tables/{table_id}/export-async", status_code=202, summary="Export a table (GET alias, seed 001)"
)
def export_get(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    return _export(table_id, request, principal, params)


@router.delete("/tables/{table_id}/rows", status_code=202, summary="Delete rows matching a filter (job)")
def delete_rows(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    row_filter, allow_truncate = parse_after(
        lambda: tables.check_table(services, principal, table_id, "write"),
        lambda: (RowFilter.from_params(params.values), params.bool("allowTruncate")),
    )
    job = tables.delete_rows(
        services, principal, table_id, row_filter, allow_truncate=allow_truncate, run_id=run_id(request)
    )
    return job_response(services, job)


def _wants_json(accept: str) -> bool:
    """True when the Accept header names JSON and not CSV (``*/*`` and absent mean CSV)."""
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return "application/json" in kinds and "text/csv" not in kinds
