"""CARTO maps, their ``.carto`` exports, organizations and their users: ``carto_visualizations``,
``carto_visualization_exports``, ``carto_organizations``, ``carto_users``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carto_visualizations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("privacy", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_carto_visualizations_project", "carto_visualizations", ["project_id", "id"])
    op.create_table(
        "carto_visualization_exports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("visualization_uuid", sa.String(36), nullable=False),
        sa.Column("job_id", BigId, sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("blob_key", sa.String(1024), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index(
        "ix_carto_visualization_exports_project", "carto_visualization_exports", ["project_id", "id"]
    )
    op.create_index(
        "ix_carto_visualization_exports_expires_at", "carto_visualization_exports", ["expires_at"]
    )
    op.create_table(
        "carto_organizations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column(
            "admin_project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("admin_project_id"),
    )
    op.create_table(
        "carto_users",
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "organization_id",
            BigId,
            sa.ForeignKey("carto_organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_carto_users_organization", "carto_users", ["organization_id"])


def downgrade() -> None:
    op.drop_index("ix_carto_users_organization", table_name="carto_users")
    op.drop_table("carto_users")
    op.drop_table("carto_organizations")
    op.drop_index("ix_carto_visualization_exports_expires_at", table_name="carto_visualization_exports")
    op.drop_index("ix_carto_visualization_exports_project", table_name="carto_visualization_exports")
    op.drop_table("carto_visualization_exports")
    op.drop_index("ix_carto_visualizations_project", table_name="carto_visualizations")
    op.drop_table("carto_visualizations")
