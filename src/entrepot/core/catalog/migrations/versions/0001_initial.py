"""Projects, tokens and jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("refreshed_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("is_master", sa.Boolean(), nullable=False),
        sa.Column("can_manage_buckets", sa.Boolean(), nullable=False),
        sa.Column("can_manage_tokens", sa.Boolean(), nullable=False),
        sa.Column("can_read_all_file_uploads", sa.Boolean(), nullable=False),
        sa.Column("can_manage_spaces", sa.Boolean(), nullable=False),
        sa.Column("bucket_permissions", sa.JSON(), nullable=False),
        sa.Column("space_permissions", sa.JSON(), nullable=False),
        sa.Column("creator_token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_tokens_project", "tokens", ["project_id"])
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("run_id", sa.String(256), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_jobs_status_id", "jobs", ["status", "id"])
    op.create_index("ix_jobs_project_id", "jobs", ["project_id", "id"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("tokens")
    op.drop_table("projects")
