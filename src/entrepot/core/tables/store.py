"""Shared helpers of buckets and tables: catalog look-ups with permission checks, lake names, stats.

A bucket is a schema of the project's lake named by its ident (``"in.c-main"``), a table is a
table of that schema. Every lake table has one more column than its ``columns``:
``_timestamp`` (TIMESTAMPTZ), the time the row last changed, which drives ``changedSince``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from sqlalchemy import func, select

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import Bucket, StoredTable
from entrepot.core.engine.tables import TableRef, columns, stats
from entrepot.core.errors import NotFound
from entrepot.core.projects import get_project
from entrepot.core.tables.names import parse_bucket_id, parse_table_id

if TYPE_CHECKING:
    from entrepot.core.services import Services

TIMESTAMP_COLUMN = "_timestamp"


def lake_name(services: Services, project_id: int) -> str:
    """The name of the project's lake (the project's name)."""
    return get_project(services.catalog, project_id).name


def _project_of(principal: Principal) -> int:
    principal.require_authenticated()
    assert principal.project_id is not None
    return principal.project_id


def find_bucket(services: Services, project_id: int, bucket_id: str) -> Bucket:
    """The bucket ``bucket_id`` of the project, without permission checks; ``NotFound`` otherwise."""
    parse_bucket_id(bucket_id)
    with services.catalog.session(readonly=True) as s:
        bucket = s.scalar(select(Bucket).where(Bucket.project_id == project_id, Bucket.ident == bucket_id))
    if bucket is None:
        raise NotFound(f"bucket {bucket_id} not found", code="buckets.notFound")
    return bucket


def get_bucket(services: Services, principal: Principal, bucket_id: str, access: str = "read") -> Bucket:
    """The bucket ``bucket_id`` if the caller may ``access`` it; ``NotFound`` (code ``storage.buckets.notFound``)."""
    bucket = find_bucket(services, _project_of(principal), bucket_id)
    principal.require_bucket(bucket.ident, access)  # type: ignore[arg-type]
    return bucket


def find_table(services: Services, project_id: int, table_id: str) -> tuple[StoredTable, Bucket]:
    """The table ``table_id`` and its bucket, without permission checks; ``NotFound`` otherwise."""
    bucket_ident, name = parse_table_id(table_id)
    with services.catalog.session(readonly=True) as s:
        row = s.execute(
            select(StoredTable, Bucket)
            .join(Bucket, StoredTable.bucket_id == Bucket.id)
            .where(Bucket.project_id == project_id, Bucket.ident == bucket_ident, StoredTable.name == name)
        ).first()
    if row is None:
        raise NotFound(f"table {table_id} not found", code="tables.notFound")
    return row[0], row[1]


def get_table(services: Services, principal: Principal, table_id: str, access: str = "read") -> StoredTable:
    """The table ``table_id`` if the caller may ``access`` it (its bucket, or a CARTO key's grant).

    ``NotFound`` (``storage.tables.notFound``) otherwise."""
    table, bucket = find_table(services, _project_of(principal), table_id)
    principal.require_table(bucket.ident, table.name, access)  # type: ignore[arg-type]
    return table


def bucket_of(services: Services, table: StoredTable) -> Bucket:
    with services.catalog.session(readonly=True) as s:
        bucket = s.get(Bucket, table.bucket_id)
    if bucket is None:
        raise NotFound(f"the bucket of table {table.name} no longer exists", code="buckets.notFound")
    return bucket


def table_ident(table: StoredTable, bucket: Bucket | None = None, *, services: Services | None = None) -> str:
    """The Keboola id of ``table`` (``in.c-main.my_table``); pass its bucket or the services."""
    if bucket is None:
        if services is None:
            raise ValueError("table_ident needs the table's bucket or the services to look it up")
        bucket = bucket_of(services, table)
    return f"{bucket.ident}.{table.name}"


def user_columns(cur: duckdb.DuckDBPyConnection, ref: TableRef) -> list[str]:
    """The user columns of a lake table, in order: its columns without ``_timestamp``."""
    return [c.name for c in columns(cur, ref) if c.name != TIMESTAMP_COLUMN]


def refresh_stats(services: Services, table_row_id: int) -> StoredTable:
    """Re-read ``rows_count`` and ``data_size_bytes`` of a table from the lake into the catalog."""
    with services.catalog.session(readonly=True) as s:
        table = s.get(StoredTable, table_row_id)
        if table is None:
            raise NotFound(f"table {table_row_id} not found", code="tables.notFound")
        bucket = s.get(Bucket, table.bucket_id)
        assert bucket is not None
    lake = lake_name(services, table.project_id)
    with services.engine.lake(lake).cursor(write=False) as cur:
        rows, size = stats(cur, TableRef(bucket.ident, table.name))
    with services.catalog.session() as s:
        row = s.get(StoredTable, table_row_id)
        if row is None:
            raise NotFound(f"table {table_row_id} not found", code="tables.notFound")
        row.rows_count = rows
        row.data_size_bytes = size
        s.flush()
        s.expunge(row)
    return row


def table_taken(bucket_ident: str, name: str, existing: str) -> E.AlreadyExists:
    """The error for a table name in use; names that differ only in letter case clash in the lake."""
    if existing == name:
        return E.AlreadyExists(f"table {bucket_ident}.{name} already exists", code="tables.alreadyExists")
    return E.AlreadyExists(
        f"table {bucket_ident}.{name} would clash with table {bucket_ident}.{existing}: table names must differ "
        "in more than letter case",
        code="tables.alreadyExists",
    )


def taken_table_name(services: Services, bucket_id: int, name: str) -> str | None:
    """The name of the bucket's table that ``name`` would clash with (same name ignoring case), if any."""
    with services.catalog.session(readonly=True) as s:
        return s.scalar(
            select(StoredTable.name).where(
                StoredTable.bucket_id == bucket_id, func.lower(StoredTable.name) == name.lower()
            )
        )
