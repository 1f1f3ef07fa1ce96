"""S3 access keys: long-lived keys of a token, their secrets sealed with the installation key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "s3_access_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("access_key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("secret_key_id", sa.String(16), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_s3_access_keys_token", "s3_access_keys", ["token_id"])
    op.create_index("ix_s3_access_keys_project", "s3_access_keys", ["project_id"])


def downgrade() -> None:
    op.drop_table("s3_access_keys")
