"""rehearsals: each wave or upgrade rehearsed on a twin, kept to be held against the real run

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rehearsals",
        sa.Column("rehearsal_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, index=True),
        sa.Column("rehearsed_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("clusters", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("accuracy", sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rehearsals")
