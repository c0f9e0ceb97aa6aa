"""rehearsals: the real wave a rehearsal was attached to when it started, and when it started

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rehearsals") as table:
        table.add_column(sa.Column("operation_id", sa.String(200), nullable=True))
        table.add_column(sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rehearsals") as table:
        table.drop_column("attached_at")
        table.drop_column("operation_id")
