"""clusters managed by Cluster API: where each is managed from (its management cluster's context, the namespace
and name of its Cluster object); null for every other cluster

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as table:
        table.add_column(sa.Column("management", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clusters") as table:
        table.drop_column("management")
