"""Keboola's Bucket, Table and Metadata objects (reference §4, §8, §3.14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from entrepot.core.services import Services
from entrepot.core.tables.views import BucketView, MetadataView, TableView
from entrepot.faces.storage_v2.render import ts


def metadata_json(row: MetadataView) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "key": row.key,
        "value": row.value,
        "provider": row.provider,
        "timestamp": ts(row.updated_at),
    }


def bucket_json(
    services: Services, bucket: BucketView, *, tables: Sequence[TableView] | None = None
) -> dict[str, Any]:
    """The Bucket object; ``tables`` is the URL of its table list, or (detail) the Table objects."""
    base = services.settings.effective_public_url
    uri = f"{base}/v2/storage/buckets/{bucket.id}"
    out: dict[str, Any] = {
        "uri": uri,
        "id": bucket.id,
        "name": f"c-{bucket.name}",
        "displayName": bucket.display_name,
        "stage": bucket.stage,
        "description": bucket.description,
        "tables": f"{uri}/tables",
        "created": ts(bucket.created_at),
        "lastChangeDate": ts(bucket.updated_at),
        "updated": ts(bucket.updated_at),
        "isReadOnly": False,
        "dataSizeBytes": 0,
        "rowsCount": 0,
        "isMaintenance": False,
        "backend": services.settings.backend_name,
        "sharing": None,
        "attributes": [],
        "metadata": [],
        "isLinkedBucket": False,
        "color": None,
    }
    if tables is not None:
        out["tables"] = [table_json(services, v, with_bucket=False) for v in tables]
        out["rowsCount"] = sum(v.rows_count for v in tables)
        out["dataSizeBytes"] = sum(v.data_size_bytes for v in tables)
    return out


def table_json(services: Services, view: TableView, *, with_bucket: bool = True) -> dict[str, Any]:
    """The Table object (every field of reference §4 that entrepot knows)."""
    base = services.settings.effective_public_url
    column_metadata: dict[str, list[dict[str, Any]]] = {}
    table_metadata = []
    for m in view.metadata:
        if m.column_name:
            column_metadata.setdefault(m.column_name, []).append(metadata_json(m))
        else:
            table_metadata.append(metadata_json(m))
    out: dict[str, Any] = {
        "uri": f"{base}/v2/storage/tables/{view.id}",
        "id": view.id,
        "name": view.name,
        "displayName": view.display_name,
        "transactional": False,
        "primaryKey": list(view.primary_key),
        "indexType": None,
        "indexKey": [],
        "distributionType": None,
        "distributionKey": [],
        "syntheticPrimaryKeyEnabled": False,
        "created": ts(view.created_at),
        "lastImportDate": ts(view.last_import_at),
        "lastChangeDate": ts(view.last_change_at),
        "rowsCount": view.rows_count,
        "dataSizeBytes": view.data_size_bytes,
        "isAlias": False,
        "isAliasable": True,
        "isTyped": False,
        "tableType": "table",
        "timestampType": "MANAGED",
        "path": f"/{view.id}",
        "columns": list(view.columns),
        "attributes": [],
        "metadata": table_metadata,
        "columnMetadata": column_metadata,
        # entrepot extension: the stable id of the Export API
        "uuid": view.uuid,
    }
    if with_bucket:
        out["bucket"] = bucket_json(services, view.bucket)
    return out
