"""The catalog: projects, tokens, jobs, files, buckets and tables in SQLite or PostgreSQL."""

from entrepot.core.catalog.db import Catalog
from entrepot.core.catalog.models import Base, Bucket, File, Job, Project, StoredTable, TableMetadata, Token

__all__ = ["Base", "Bucket", "Catalog", "File", "Job", "Project", "StoredTable", "TableMetadata", "Token"]
