"""The catalog: projects, tokens, jobs, files, buckets, tables, spaces, objects, exports (SQLite or PostgreSQL)."""

from entrepot.core.catalog.db import Catalog, affected
from entrepot.core.catalog.models import (
    Base,
    Bucket,
    CartoApiKey,
    ExportJob,
    ExportTemplate,
    File,
    Job,
    MultipartPart,
    MultipartUpload,
    ObjectSegment,
    Project,
    S3AccessKey,
    Space,
    StoredObject,
    StoredTable,
    TableMetadata,
    Token,
)

__all__ = [
    "Base",
    "Bucket",
    "CartoApiKey",
    "Catalog",
    "ExportJob",
    "ExportTemplate",
    "File",
    "Job",
    "MultipartPart",
    "MultipartUpload",
    "ObjectSegment",
    "Project",
    "S3AccessKey",
    "Space",
    "StoredObject",
    "StoredTable",
    "TableMetadata",
    "Token",
    "affected",
]
