"""access grants: a person's time-bound access to a cluster, live and past

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("grant_id", sa.String(200), primary_key=True),
        sa.Column("cluster", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("person", sa.String(100), nullable=False, index=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(200), nullable=True),
        sa.Column("phase", sa.String(30), nullable=False),
        sa.Column("approved_by", sa.String(100), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handed_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(100), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("access_grants")
