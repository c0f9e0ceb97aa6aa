"""cloud request slots: one shared request schedule per rate-limited cloud account

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cloud_request_slots",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("last_slot", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cloud_request_slots")
