"""Multipart objects are stored as their parts: ``objects.segments`` and ``object_segments``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("segments", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "object_segments",
        sa.Column("manifest", sa.String(1024), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("space_id", BigId, sa.ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(1024), nullable=False),
    )
    op.create_index("ix_object_segments_space", "object_segments", ["space_id"])


def downgrade() -> None:
    op.drop_index("ix_object_segments_space", table_name="object_segments")
    op.drop_table("object_segments")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("segments")
