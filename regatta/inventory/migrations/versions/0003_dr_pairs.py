"""disaster-recovery pairs: a primary, its standby, and which of them serves

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dr_pairs",
        sa.Column("primary", sa.String(100), primary_key=True),
        sa.Column("standby", sa.String(100), nullable=False, unique=True),
        sa.Column("serving", sa.String(20), nullable=False, server_default="primary"),
        sa.Column("last_operation", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dr_pairs")
