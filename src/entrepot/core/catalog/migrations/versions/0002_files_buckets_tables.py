"""Files, buckets, tables and table metadata.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_subject", "jobs", ["project_id", "subject", "status"])
    op.create_table(
        "files",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("blob_key", sa.String(1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(128), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_sliced", sa.Boolean(), nullable=False),
        sa.Column("is_encrypted", sa.Boolean(), nullable=False),
        sa.Column("is_permanent", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(256), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("uploaded_at", UtcDateTime(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_files_project_id", "files", ["project_id", "id"])
    op.create_table(
        "buckets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ident", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "ident", name="uq_buckets_project_ident"),
    )
    op.create_table(
        "tables",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bucket_id", BigId, sa.ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("primary_key", sa.JSON(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("rows_count", sa.BigInteger(), nullable=False),
        sa.Column("data_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_import_at", UtcDateTime(), nullable=True),
        sa.Column("last_change_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("bucket_id", "name", name="uq_tables_bucket_name"),
    )
    op.create_table(
        "table_metadata",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("table_id", BigId, sa.ForeignKey("tables.id", ondelete="CASCADE"), nullable=False),
        sa.Column("column_name", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("table_id", "column_name", "provider", "key", name="uq_table_metadata_entry"),
    )


def downgrade() -> None:
    op.drop_table("table_metadata")
    op.drop_table("tables")
    op.drop_table("buckets")
    op.drop_index("ix_files_project_id", table_name="files")
    op.drop_table("files")
    op.drop_index("ix_jobs_subject", table_name="jobs")
