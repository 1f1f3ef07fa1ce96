"""Export API: export jobs and templates; tokens get an owner name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
    op.create_table(
        "export_templates",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("template_type", sa.String(8), nullable=False),
        sa.Column("system_key", sa.String(64), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("configuration", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "system_key", name="uq_export_templates_system"),
    )
    op.create_index("ix_export_templates_project", "export_templates", ["project_id", "id"])
    op.create_table(
        "export_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("datasource_uuid", sa.String(36), nullable=False),
        sa.Column("datasource_name", sa.String(255), nullable=False),
        sa.Column("table_ident", sa.String(255), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column(
            "template_id", BigId, sa.ForeignKey("export_templates.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("job_id", BigId, sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_name", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("blob_key", sa.String(1024), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("file_expired_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_export_jobs_project_owner", "export_jobs", ["project_id", "owner", "id"])
    op.create_index("ix_export_jobs_project", "export_jobs", ["project_id", "id"])
    op.create_index("ix_export_jobs_expires_at", "export_jobs", ["expires_at"])


def downgrade() -> None:
    op.drop_table("export_jobs")
    op.drop_table("export_templates")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("owner")
