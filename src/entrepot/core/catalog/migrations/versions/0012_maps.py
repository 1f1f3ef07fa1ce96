"""CARTO's Maps API: named map templates and instantiated layergroups (``map_templates``,
``map_layergroups``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from entrepot.core.catalog.models import BigId, UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_templates",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_map_templates_project_name"),
    )
    op.create_table(
        "map_layergroups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_id", BigId, sa.ForeignKey("tokens.id", ondelete="CASCADE"), nullable=True),
        sa.Column("template", sa.String(128), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_map_layergroups_project", "map_layergroups", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_map_layergroups_project", table_name="map_layergroups")
    op.drop_table("map_layergroups")
    op.drop_table("map_templates")
