"""The catalog: projects, tokens, jobs, files, buckets, tables, spaces and objects (SQLite or PostgreSQL)."""

from entrepot.core.catalog.db import Catalog
from entrepot.core.catalog.models import (
    Base,
    Bucket,
    File,
    Job,
    MultipartPart,
    MultipartUpload,
    Project,
    Space,
    StoredObject,
    StoredTable,
    TableMetadata,
    Token,
)

__all__ = [
    "Base",
    "Bucket",
    "Catalog",
    "File",
    "Job",
    "MultipartPart",
    "MultipartUpload",
    "Project",
    "Space",
    "StoredObject",
    "StoredTable",
    "TableMetadata",
    "Token",
]
