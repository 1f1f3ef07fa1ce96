"""CARTO sync tables: ``carto_synchronizations`` (a URL re-imported into one table on a schedule).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carto_synchronizations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("table_id", BigId, sa.ForeignKey("tables.id", ondelete="CASCADE"), nullable=True),
        sa.Column("job_id", BigId, sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_at", UtcDateTime(), nullable=True),
        sa.Column("ran_at", UtcDateTime(), nullable=True),
        sa.Column("modified_at", UtcDateTime(), nullable=True),
        sa.Column("etag", sa.String(512), nullable=True),
        sa.Column("last_modified", sa.String(128), nullable=True),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("retried_times", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_carto_synchronizations_project", "carto_synchronizations", ["project_id", "id"])
    op.create_index("ix_carto_synchronizations_run_at", "carto_synchronizations", ["run_at"])
    op.create_index("ix_carto_synchronizations_table", "carto_synchronizations", ["table_id"])


def downgrade() -> None:
    op.drop_table("carto_synchronizations")
