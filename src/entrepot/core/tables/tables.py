"""Tables: list, detail, delete, primary keys, optimize and table/column metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
from sqlalchemy import delete, select

from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, StoredTable, TableMetadata
from entrepot.core.clock import utcnow
from entrepot.core.engine import execute, quote_ident, quote_literal
from entrepot.core.engine.tables import TableRef
from entrepot.core.errors import InvalidInput, NotFound
from entrepot.core.ids import parse_id
from entrepot.core.tables.load import match_columns
from entrepot.core.tables.store import find_table, get_table, lake_name
from entrepot.core.tables.views import MetadataView, TableView, metadata_view, table_view
from entrepot.core.text import check_text

if TYPE_CHECKING:
    from entrepot.core.jobs import JobContext
    from entrepot.core.services import Services

METADATA_KEY_MAX = 255  # provider and key (catalog VARCHAR(255))


def list_tables(
    services: Services, principal: Principal, *, bucket_row_id: int | None = None
) -> list[TableView]:
    """The tables the caller may read (of one bucket, or all), by id, with metadata."""
    principal.require_authenticated()
    with services.catalog.session(readonly=True) as s:
        q = (
            select(StoredTable, Bucket)
            .join(Bucket, StoredTable.bucket_id == Bucket.id)
            .where(Bucket.project_id == principal.project_id)
            .order_by(Bucket.ident, StoredTable.name)
        )
        if bucket_row_id is not None:
            q = q.where(Bucket.id == bucket_row_id)
        rows = [(t, b) for t, b in s.execute(q).all() if principal.table_access(b.ident, t.name) is not None]
        ids = [t.id for t, _ in rows]
        meta: dict[int, list[TableMetadata]] = {}
        if ids:
            for m in s.scalars(
                select(TableMetadata).where(TableMetadata.table_id.in_(ids)).order_by(TableMetadata.id)
            ):
                meta.setdefault(m.table_id, []).append(m)
    return [table_view(t, b, meta.get(t.id, [])) for t, b in rows]


def table_detail(services: Services, principal: Principal, table_id: str) -> TableView:
    """One readable table with its bucket and metadata; ``NotFound`` otherwise."""
    table = get_table(services, principal, table_id)
    return view_of(services, table)


def view_of(services: Services, table: StoredTable) -> TableView:
    """The view of ``table`` as the catalog has it now: bucket and metadata looked up."""
    with services.catalog.session(readonly=True) as s:
        bucket = s.get(Bucket, table.bucket_id)
        meta = list(
            s.scalars(
                select(TableMetadata).where(TableMetadata.table_id == table.id).order_by(TableMetadata.id)
            )
        )
    if bucket is None:
        raise NotFound(f"table {table.name} not found", code="tables.notFound")
    return table_view(table, bucket, meta)


# -- delete -----------------------------------------------------------------------------------


def delete_table(services: Services, principal: Principal, table_id: str) -> None:
    """Drop a table (lake and catalog, with its metadata) now."""
    get_table(services, principal, table_id, "write")
    assert principal.project_id is not None
    drop_table(services, principal.project_id, table_id)


def drop_table(
    services: Services, project_id: int, table_id: str, ctx: JobContext[Services] | None = None
) -> None:
    table, bucket = find_table(services, project_id, table_id)
    with services.engine.lake(lake_name(services, project_id)).cursor() as cur:
        execute(
            cur,
            f"DROP TABLE IF EXISTS {TableRef(bucket.ident, table.name).sql}",
            cancel=ctx.cancelled if ctx else None,
        )
    with services.catalog.session() as s:
        s.execute(delete(TableMetadata).where(TableMetadata.table_id == table.id))
        s.execute(delete(StoredTable).where(StoredTable.id == table.id))


# -- primary key ------------------------------------------------------------------------------


def _duplicates(
    cur: duckdb.DuckDBPyConnection, table: StoredTable, bucket: Bucket, pk: Sequence[str]
) -> list[str] | None:
    """One duplicated key value (as strings), or None."""
    cols = ", ".join(quote_ident(c) for c in pk)
    row = execute(
        cur,
        f"SELECT {cols} FROM {TableRef(bucket.ident, table.name).sql} GROUP BY ALL HAVING count(*) > 1 LIMIT 1",
    ).fetchone()
    return None if row is None else ["" if v is None else str(v) for v in row]


def set_primary_key(
    services: Services,
    project_id: int,
    table_id: str,
    columns: Sequence[str],
    *,
    replace: bool,
    skip_duplicates_check: bool = False,
) -> StoredTable:
    """Set the table's primary key (``replace`` an existing one, else it must have none).

    The check and the store run under the lake's writer lock, so no load can commit
    duplicate keys in between.
    """
    if not columns:
        raise InvalidInput(
            "give the primary key columns (columns[] or primaryKey)", code="tables.invalidPrimaryKey"
        )
    with services.engine.lake(lake_name(services, project_id)).cursor() as cur:
        table, bucket = find_table(services, project_id, table_id)
        if table.primary_key and not replace and list(table.primary_key) != list(columns):
            raise InvalidInput(
                f"table {table_id} already has a primary key ({', '.join(table.primary_key)}); remove it first",
                code="tables.primaryKeyAlreadyExists",
            )
        pk = match_columns(columns, table.columns, what=f"table {table_id}")
        if not skip_duplicates_check:
            dup = _duplicates(cur, table, bucket, pk)
            if dup is not None:
                shown = ", ".join(f"{c}={v!r}" for c, v in zip(pk, dup, strict=True))
                raise InvalidInput(
                    f"the primary key ({', '.join(pk)}) cannot be set: table {table_id} has duplicate values "
                    f"({shown}); remove the duplicates first",
                    code="tables.primaryKeyDuplicates",
                )
        return _store_pk(services, table.id, pk)


def _store_pk(services: Services, table_row_id: int, pk: list[str]) -> StoredTable:
    with services.catalog.session() as s:
        row = s.get(StoredTable, table_row_id)
        if row is None:
            raise NotFound("the table no longer exists", code="tables.notFound")
        row.primary_key = pk
        row.last_change_at = utcnow()
        s.flush()
        s.expunge(row)
    return row


def check_add_primary_key(
    services: Services, principal: Principal, table_id: str, columns: Sequence[str]
) -> StoredTable:
    """What ``POST …/primary-key`` checks synchronously: write access, columns given, no key yet."""
    table = get_table(services, principal, table_id, "write")
    if not columns:
        raise InvalidInput(
            "parameter columns[] is required: the primary key columns",
            code="tables.invalidPrimaryKey",
        )
    if table.primary_key:
        raise InvalidInput(
            f"table {table_id} already has a primary key ({', '.join(table.primary_key)}); remove it first",
            code="tables.primaryKeyAlreadyExists",
        )
    match_columns(columns, table.columns, what=f"table {table_id}")
    return table


def remove_primary_key(services: Services, project_id: int, table_id: str) -> None:
    """Drop the table's primary key (its rows stay as they are)."""
    table, _ = find_table(services, project_id, table_id)
    _store_pk(services, table.id, [])


# -- optimize ---------------------------------------------------------------------------------


def optimize_table(ctx: JobContext[Services], table_id: str) -> None:
    """Job ``tables.optimize``: flush inlined rows, then compact the table's Parquet files."""
    table, bucket = find_table(ctx.services, ctx.project_id, table_id)
    name, schema = quote_literal(table.name), quote_literal(bucket.ident)
    with ctx.services.engine.lake(lake_name(ctx.services, ctx.project_id)).cursor() as cur:
        cancel = ctx.cancelled
        execute(
            cur,
            f"CALL ducklake_flush_inlined_data('lake', table_name => {name}, schema_name => {schema})",
            cancel=cancel,
        )
        ctx.progress(30)
        execute(cur, f"CALL ducklake_rewrite_data_files('lake', {name}, schema => {schema})", cancel=cancel)
        ctx.progress(60)
        execute(cur, f"CALL ducklake_merge_adjacent_files('lake', {name}, schema => {schema})", cancel=cancel)
    from entrepot.core.tables.store import refresh_stats

    refresh_stats(ctx.services, table.id)


# -- metadata ---------------------------------------------------------------------------------


def _entries(items: Any, what: str) -> list[tuple[str, str]]:
    if items in (None, "", []):
        return []
    if not isinstance(items, list):
        raise InvalidInput(f"{what} must be a list of {{key, value}} objects", code="metadata.invalid")
    out = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("key") or "").strip():
            raise InvalidInput(f"every item of {what} needs a non-empty key", code="metadata.invalid")
        value = item.get("value")
        if isinstance(value, (dict, list)):
            raise InvalidInput(
                f"the value of {what} key {item['key']!r} must be a string, number or boolean, not an object or list",
                code="metadata.invalid",
            )
        key, text = str(item["key"]), "" if value is None else str(value)
        check_text(key, f"{what} key", METADATA_KEY_MAX, code="metadata.invalid")
        check_text(text, f"the value of {what} key {key!r}", code="metadata.invalid")
        out.append((key, text))
    return out


def _column_entries(raw: Any, columns: Sequence[str]) -> list[tuple[str, str, str]]:
    """``columnsMetadata`` as (column, key, value): an array of arrays, or an object keyed by column."""
    if raw in (None, "", [], {}):
        return []
    groups: list[tuple[str | None, Any]] = []
    if isinstance(raw, dict):
        groups = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        groups = [(None, v) for v in raw]
    else:
        raise InvalidInput(
            "columnsMetadata must be an array or an object keyed by column", code="metadata.invalid"
        )
    out = []
    by_lower = {c.lower(): c for c in columns}
    for key, items in groups:
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise InvalidInput("columnsMetadata items must be lists of {key, value}", code="metadata.invalid")
        for item in items:
            if not isinstance(item, dict):
                raise InvalidInput(
                    "columnsMetadata items must be {key, value} objects", code="metadata.invalid"
                )
            column = str(item.get("columnName") or key or "")
            if column.lower() not in by_lower:
                raise InvalidInput(
                    f"columnsMetadata names column {column!r}, which the table does not have",
                    code="metadata.invalidColumn",
                )
            for k, v in _entries([item], "columnsMetadata"):
                out.append((by_lower[column.lower()], k, v))
    return out


def upsert_metadata(
    services: Services,
    principal: Principal,
    table_id: str,
    provider: str | None,
    metadata: Any = None,
    columns_metadata: Any = None,
) -> tuple[list[MetadataView], dict[str, list[MetadataView]]]:
    """Upsert table and column metadata of one provider; returns the entries written."""
    table = get_table(services, principal, table_id, "write")
    if not provider:
        raise InvalidInput("parameter provider is required", code="metadata.invalid")
    check_text(provider, "provider", METADATA_KEY_MAX, code="metadata.invalid")
    table_items = [("", k, v) for k, v in _entries(metadata, "metadata")]
    column_items = _column_entries(columns_metadata, table.columns)
    if not table_items and not column_items:
        raise InvalidInput(
            "give metadata or columnsMetadata (a list of {key, value})", code="metadata.invalid"
        )
    now = utcnow()
    written: list[TableMetadata] = []
    with services.catalog.session() as s:
        for column, key, value in [*table_items, *column_items]:
            row = s.scalar(
                select(TableMetadata).where(
                    TableMetadata.table_id == table.id,
                    TableMetadata.column_name == column,
                    TableMetadata.provider == provider,
                    TableMetadata.key == key,
                )
            )
            if row is None:
                row = TableMetadata(table_id=table.id, column_name=column, provider=provider, key=key)
                s.add(row)
            row.value = value
            row.updated_at = now
            written.append(row)
        s.flush()
        for row in written:
            s.expunge(row)
    views = [metadata_view(row) for row in written]
    by_column: dict[str, list[MetadataView]] = {}
    for view in views:
        if view.column_name:
            by_column.setdefault(view.column_name, []).append(view)
    return [v for v in views if not v.column_name], by_column


def list_metadata(services: Services, principal: Principal, table_id: str) -> list[MetadataView]:
    """The table-level metadata of a readable table."""
    return [m for m in table_detail(services, principal, table_id).metadata if not m.column_name]


def delete_metadata(services: Services, principal: Principal, table_id: str, metadata_id: str) -> None:
    table = get_table(services, principal, table_id, "write")
    row_id = parse_id(metadata_id)
    if row_id is None:
        raise NotFound(f"metadata {metadata_id} not found", code="metadata.notFound")
    with services.catalog.session() as s:
        row = s.get(TableMetadata, row_id)
        if row is None or row.table_id != table.id:
            raise NotFound(f"metadata {metadata_id} of table {table_id} not found", code="metadata.notFound")
        s.delete(row)
