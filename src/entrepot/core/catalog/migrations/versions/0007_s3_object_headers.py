"""Objects and multipart uploads keep standard headers and an additional checksum (the S3 face).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("checksum", sa.String(128), nullable=True))
    with op.batch_alter_table("multipart_uploads") as batch:
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("checksum_algorithm", sa.String(16), nullable=True))
    with op.batch_alter_table("multipart_parts") as batch:
        batch.add_column(sa.Column("checksum", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("multipart_parts") as batch:
        batch.drop_column("checksum")
    with op.batch_alter_table("multipart_uploads") as batch:
        batch.drop_column("checksum_algorithm")
        batch.drop_column("headers")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("checksum")
        batch.drop_column("headers")
