"""Tables get a privacy: private (tokens only), public or link (readable by anonymous SQL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tables") as batch:
        batch.add_column(sa.Column("privacy", sa.String(8), nullable=False, server_default="private"))


def downgrade() -> None:
    with op.batch_alter_table("tables") as batch:
        batch.drop_column("privacy")
