"""Reading tables out: data preview, export to a File, and deleting rows by filter.

* :func:`preview` reads one page of rows as strings, in a **stable order**: the order given,
  else the primary key, else insertion order. Insertion order is DuckLake's ``rowid``: each
  row gets an increasing id when inserted, kept through updates and compaction (checked on
  DuckDB 1.5.5), so ``LIMIT/OFFSET`` pages never skip or repeat rows of an unchanged table.
* ``tables.export`` (job) writes the rows with DuckDB's ``COPY ... TO`` as header-less CSV,
  every field quoted, LF line ends (gzip when asked), then hands the file to ``core.files``
  with the exported column list, so the signed download can prepend the header (§6.4).
* ``tables.delete_rows`` (job) deletes the filtered rows in one lake transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrepot.core import errors as E
from entrepot.core.auth import Principal, token_principal
from entrepot.core.catalog import Bucket, Project, StoredTable, Token
from entrepot.core.clock import utcnow
from entrepot.core.engine import execute, interrupt_on_cancel, quote_ident, quote_literal
from entrepot.core.engine.tables import TableRef, transaction
from entrepot.core.jobs import JobContext
from entrepot.core.tables import store
from entrepot.core.tables.filters import RowFilter, resolve_column

if TYPE_CHECKING:
    from entrepot.core.services import Services

EXPORT_KIND = "tables.export"
DELETE_ROWS_KIND = "tables.delete_rows"
EXPORT_FORMATS = ("rfc", "escaped", "raw")
EXPORT_TAG = "table-export"

Order = Sequence[tuple[str, str]]


# -- shared ------------------------------------------------------------------------------------


def open_table(
    services: Services, principal: Principal, table_id: str, access: str = "read"
) -> tuple[StoredTable, Bucket]:
    """The table ``table_id`` and its bucket if the caller may ``access`` it (``NotFound`` otherwise)."""
    principal.require_authenticated()
    assert principal.project_id is not None
    table, bucket = store.find_table(services, principal.project_id, table_id)
    principal.require_table(bucket.ident, table.name, access)  # type: ignore[arg-type]
    return table, bucket


def select_columns(table: StoredTable, wanted: Sequence[str] | None) -> list[str]:
    """The output columns: ``wanted`` in the given order (checked, table spelling), else all in table order."""
    if not wanted:
        return list(table.columns)
    out: list[str] = []
    for name in wanted:
        column = resolve_column(name, table.columns, what="column")
        if column in out:
            raise E.InvalidInput(
                f"column {column!r} is listed twice in columns", code="tables.columnNotFound"
            )
        out.append(column)
    return out


def parse_order(raw: Any) -> list[tuple[str, str]]:
    """``orderBy`` (a list of ``{column, order: ASC|DESC}``) as ``[(column, "ASC"|"DESC")]``."""
    if raw in (None, "", [], {}):
        return []
    if isinstance(raw, Mapping):
        raw = [raw] if "column" in raw else [raw[k] for k in sorted(raw, key=str)]
    if isinstance(raw, str):
        raw = [{"column": raw}]
    out: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"column": item}
        if not isinstance(item, Mapping) or not str(item.get("column") or "").strip():
            raise E.InvalidInput(f"orderBy[{i}] must be an object with a column and an order (ASC or DESC)")
        direction = str(item.get("order") or "ASC").strip().upper()
        if direction not in ("ASC", "DESC"):
            raise E.InvalidInput(f"orderBy[{i}].order {direction!r} is invalid; use ASC or DESC")
        out.append((str(item["column"]).strip(), direction))
    return out


def stable_order(table: StoredTable, order: Order | None = None) -> str:
    """``ORDER BY`` terms: ``order`` (checked), then the primary key, then insertion order (``rowid``)."""
    terms: list[str] = []
    seen: set[str] = set()
    for name, direction in order or ():
        column = resolve_column(name, table.columns, what="orderBy column")
        terms.append(f"{quote_ident(column)} {direction}")
        seen.add(column)
    for column in table.primary_key or ():
        if column not in seen:
            terms.append(quote_ident(column))
            seen.add(column)
    if "rowid" not in {c.lower() for c in table.columns}:
        terms.append("rowid")
    else:  # a user column shadows the pseudo-column: fall back to every column
        terms += [quote_ident(c) for c in table.columns if c not in seen]
    return ", ".join(terms)


def _lake(services: Services, project_id: int) -> Any:
    return services.engine.lake(store.lake_name(services, project_id))


# -- preview -----------------------------------------------------------------------------------


def preview(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    columns: Sequence[str] | None = None,
    row_filter: RowFilter | None = None,
    limit: int = 100,
    offset: int = 0,
    order: Order | None = None,
) -> tuple[list[str], list[tuple[str | None, ...]]]:
    """One page of rows of ``table_id`` as strings (None for NULL) with the output column names.

    Pages are bounded by the caller (the face caps ``limit``); the rows are read in the stable
    order of :func:`stable_order` with ``LIMIT``/``OFFSET`` so consecutive pages line up.
    """
    table, bucket = open_table(services, principal, table_id, "read")
    out_columns = select_columns(table, columns)
    where, args = (row_filter or RowFilter()).to_sql(table.columns)
    select = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in out_columns) or "NULL"
    sql = (
        f"SELECT {select} FROM {TableRef(bucket.ident, table.name).sql} WHERE {where} "
        f"ORDER BY {stable_order(table, order)} LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    if limit <= 0:
        return out_columns, []
    with _lake(services, table.project_id).cursor(write=False) as cur:
        rows = execute(cur, sql, args).fetchall()
    return out_columns, rows


# -- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRequest:
    """A validated export: what the ``tables.export`` job is queued with."""

    table_id: str
    columns: list[str] | None
    row_filter: RowFilter
    gzip: bool = False
    format: str = "rfc"
    limit: int | None = None


def check_export(
    services: Services,
    principal: Principal,
    table_id: str,
    *,
    columns: Sequence[str] | None,
    row_filter: RowFilter,
    gzip: bool = False,
    format: str | None = None,
    limit: int | None = None,
) -> ExportRequest:
    """Validate an export before it is queued: the table, columns, filter, format and limit."""
    table, _ = open_table(services, principal, table_id, "read")
    chosen = select_columns(table, columns) if columns else None
    row_filter.validate(table.columns)
    fmt = (format or "rfc").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise E.InvalidInput(
            f"unknown export format {format!r}; use rfc (default), escaped or raw",
            code="tables.invalidFormat",
        )
    if limit is not None and limit < 1:
        raise E.InvalidInput("parameter limit must be at least 1")
    return ExportRequest(table_id, chosen, row_filter, gzip=gzip, format=fmt, limit=limit)


def _copy_options(fmt: str, gzip: bool) -> str:
    if fmt == "raw":
        options = "QUOTE '', ESCAPE ''"
    elif fmt == "escaped":
        options = f"QUOTE '\"', ESCAPE {quote_literal(chr(92))}, FORCE_QUOTE *"
    else:
        options = "QUOTE '\"', ESCAPE '\"', FORCE_QUOTE *"
    options = f"FORMAT csv, HEADER false, DELIMITER ',', {options}"
    if gzip:
        options += ", COMPRESSION gzip"
    return options


def export_table(ctx: JobContext[Services], request: ExportRequest) -> dict[str, Any]:
    """Job ``tables.export``: write the table (columns, filter, limit) to a new File tagged ``table-export``."""
    from entrepot.core import files

    services = ctx.services
    principal = job_principal(ctx)
    table_id = request.table_id
    table, bucket = open_table(services, principal, table_id, "read")
    out_columns = select_columns(table, request.columns or None)
    where, args = request.row_filter.to_sql(table.columns)
    fmt = request.format
    if fmt not in EXPORT_FORMATS:
        raise E.InvalidInput(f"unknown export format {fmt!r}; use rfc, escaped or raw")
    gzip = request.gzip
    limit = request.limit
    # NULL is written as "" (an empty quoted field), like Keboola's string tables.
    select = ", ".join(
        f"coalesce(CAST({quote_ident(c)} AS VARCHAR), '') AS {quote_ident(c)}" for c in out_columns
    )
    query = f"SELECT {select} FROM {TableRef(bucket.ident, table.name).sql} WHERE {where}"
    if limit is not None:
        query += f" ORDER BY {stable_order(table)} LIMIT {int(limit)}"
    name = f"{table_id}.csv" + (".gz" if gzip else "")
    tmp_dir = services.settings.data_dir / "tmp" / "exports"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"job-{ctx.job.id}-{uuid.uuid4().hex}.csv{'.gz' if gzip else ''}"
    ctx.progress(5)
    try:
        with _lake(services, table.project_id).cursor(write=False) as cur:
            sql = f"COPY ({query}) TO {quote_literal(str(path))} ({_copy_options(fmt, gzip)})"
            with interrupt_on_cancel(ctx, cur):
                row = execute(cur, sql, args, cancel=ctx.cancelled).fetchone()
        rows = int(row[0]) if row else 0
        if not path.exists():  # DuckDB writes no file for an empty result on some versions
            _write_empty(path, gzip)
        ctx.check_cancelled()
        ctx.progress(80)
        file = files.create_from_path(
            services,
            table.project_id,
            ctx.job.token_id,
            path,
            name=name,
            tags=[EXPORT_TAG],
            columns=out_columns,
            content_type="application/gzip" if gzip else "text/csv",
            run_id=ctx.job.run_id,
        )
        url = files.download_url(services, file)
    finally:
        Path(path).unlink(missing_ok=True)
    ctx.progress(100)
    return {"file": {"id": file.id, "url": url}, "cacheHit": False, "rowsCount": rows, "columns": out_columns}


def _write_empty(path: Path, gzip: bool) -> None:
    if gzip:
        import gzip as gz

        with gz.open(path, "wb"):
            pass
    else:
        path.write_bytes(b"")


# -- delete rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteRowsRequest:
    """A validated delete-rows: what the ``tables.delete_rows`` job is queued with."""

    table_id: str
    row_filter: RowFilter
    allow_truncate: bool = False  # an empty filter deletes every row only with this


def check_delete_rows(
    services: Services, principal: Principal, table_id: str, row_filter: RowFilter, *, allow_truncate: bool
) -> DeleteRowsRequest:
    """Validate a delete-rows request before it is queued. No filter needs ``allow_truncate``."""
    table, _ = open_table(services, principal, table_id, "write")
    row_filter.validate(table.columns)
    if row_filter.is_empty and not allow_truncate:
        raise E.InvalidInput(
            "deleting rows needs a filter (changedSince, changedUntil, whereColumn with whereValues, or "
            "whereFilters); send allowTruncate=true to delete every row",
            code="tables.deleteRowsFilterRequired",
        )
    return DeleteRowsRequest(table_id, row_filter, allow_truncate)


def delete_rows(ctx: JobContext[Services], request: DeleteRowsRequest) -> dict[str, Any]:
    """Job ``tables.delete_rows``: delete the filtered rows in one transaction; results ``{"deletedRows": n}``."""
    services = ctx.services
    principal = job_principal(ctx)
    table, bucket = open_table(services, principal, request.table_id, "write")
    row_filter = request.row_filter
    if row_filter.is_empty and not request.allow_truncate:
        raise E.InvalidInput("deleting rows needs a filter or allowTruncate=true")
    where, args = row_filter.to_sql(table.columns)
    sql = f"DELETE FROM {TableRef(bucket.ident, table.name).sql} WHERE {where}"
    ctx.progress(5)
    with _lake(services, table.project_id).cursor(write=True) as cur, transaction(cur):
        with interrupt_on_cancel(ctx, cur):
            row = execute(cur, sql, args, cancel=ctx.cancelled).fetchone()
        ctx.check_cancelled()
    deleted = int(row[0]) if row else 0
    store.refresh_stats(services, table.id)
    if deleted:
        with services.catalog.session() as s:
            stored = s.get(StoredTable, table.id)
            if stored is not None:
                stored.last_change_at = utcnow()
    ctx.progress(100)
    return {"deletedRows": deleted}


# -- jobs --------------------------------------------------------------------------------------


def job_principal(ctx: JobContext[Services]) -> Principal:
    """The principal of the token that queued the job (permissions are checked again at run time)."""
    with ctx.services.catalog.session(readonly=True) as s:
        token = s.get(Token, ctx.job.token_id) if ctx.job.token_id is not None else None
        project = s.get(Project, ctx.project_id)
        if project is None:
            raise E.NotFound(f"project {ctx.project_id} no longer exists")
        if token is None or token.revoked_at is not None:
            raise E.PermissionDenied("the token that started this job no longer exists or was revoked")
        return token_principal(s, token, project)  # with a CARTO key's grants, as they are now
