"""Storage spaces, objects and multipart uploads; every existing project gets public and private.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, ObjectKey, UtcDateTime
from entrepot.core.clock import utcnow

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    spaces = op.create_table(
        "spaces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_spaces_project_name"),
        sqlite_autoincrement=True,  # a deleted space's id (its blob prefix) is never reused
    )
    op.create_table(
        "objects",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("space_id", BigId, sa.ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", ObjectKey, nullable=False),
        sa.Column("blob_key", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("user_metadata", sa.JSON(), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("space_id", "key", name="uq_objects_space_key"),
    )
    op.create_table(
        "multipart_uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("space_id", BigId, sa.ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", ObjectKey, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("user_metadata", sa.JSON(), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_multipart_uploads_space_key", "multipart_uploads", ["space_id", "key"])
    op.create_index("ix_multipart_uploads_created_at", "multipart_uploads", ["created_at"])
    op.create_table(
        "multipart_parts",
        sa.Column(
            "upload_id",
            sa.String(64),
            sa.ForeignKey("multipart_uploads.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part_number", sa.Integer(), primary_key=True),
        sa.Column("blob_key", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    # every project has the two default spaces
    conn = op.get_bind()
    now = utcnow()
    project_ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM projects"))]
    for project_id in project_ids:
        for name, public in (("public", True), ("private", False)):
            conn.execute(
                spaces.insert().values(
                    project_id=project_id,
                    name=name,
                    description="",
                    is_public=public,
                    created_at=now,
                    expires_at=None,
                )
            )


def downgrade() -> None:
    op.drop_table("multipart_parts")
    op.drop_index("ix_multipart_uploads_created_at", table_name="multipart_uploads")
    op.drop_index("ix_multipart_uploads_space_key", table_name="multipart_uploads")
    op.drop_table("multipart_uploads")
    op.drop_table("objects")
    op.drop_table("spaces")
