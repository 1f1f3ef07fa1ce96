"""The catalog: projects, tokens and jobs in SQLite (embedded) or PostgreSQL (scale-out)."""

from entrepot.core.catalog.db import Catalog
from entrepot.core.catalog.models import Base, Job, Project, Token

__all__ = ["Base", "Catalog", "Job", "Project", "Token"]
