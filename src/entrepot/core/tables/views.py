"""What the faces render of buckets and tables: frozen views built from the catalog rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from entrepot.core.catalog import Bucket, StoredTable, TableMetadata


@dataclass(frozen=True)
class BucketView:
    """A bucket: ``id`` is its ident (``in.c-main``), ``name`` its name without stage and ``c-``."""

    id: str
    name: str
    display_name: str  # the name when none was given
    stage: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MetadataView:
    """One metadata entry of a table (``column_name`` empty) or of one of its columns."""

    id: int
    column_name: str
    provider: str
    key: str
    value: str
    updated_at: datetime


@dataclass(frozen=True)
class TableView:
    """A table with its bucket and metadata (table and column entries, oldest first)."""

    id: str  # <bucket id>.<name>
    uuid: str  # stable across renames: the Export API's datasource
    name: str
    display_name: str  # the name when none was given
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    rows_count: int
    data_size_bytes: int
    created_at: datetime
    last_import_at: datetime | None
    last_change_at: datetime | None
    bucket: BucketView
    metadata: tuple[MetadataView, ...] = ()


def bucket_view(bucket: Bucket) -> BucketView:
    return BucketView(
        id=bucket.ident,
        name=bucket.name,
        display_name=bucket.display_name or bucket.name,
        stage=bucket.stage,
        description=bucket.description,
        created_at=bucket.created_at,
        updated_at=bucket.updated_at,
    )


def metadata_view(row: TableMetadata) -> MetadataView:
    return MetadataView(
        id=row.id,
        column_name=row.column_name,
        provider=row.provider,
        key=row.key,
        value=row.value,
        updated_at=row.updated_at,
    )


def table_view(table: StoredTable, bucket: Bucket, metadata: Iterable[TableMetadata] = ()) -> TableView:
    return TableView(
        id=f"{bucket.ident}.{table.name}",
        uuid=table.uuid,
        name=table.name,
        display_name=table.display_name or table.name,
        columns=tuple(table.columns or ()),
        primary_key=tuple(table.primary_key or ()),
        rows_count=int(table.rows_count),
        data_size_bytes=int(table.data_size_bytes),
        created_at=table.created_at,
        last_import_at=table.last_import_at,
        last_change_at=table.last_change_at,
        bucket=bucket_view(bucket),
        metadata=tuple(metadata_view(m) for m in metadata),
    )
