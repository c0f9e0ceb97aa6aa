"""clusters carry their pod capacity and free room from the last fleet sweep

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("pods_capacity", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pods_free", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("pods_free")
        batch.drop_column("pods_capacity")
