"""fleet-view sessions of people signed in through the identity provider: the role, environments, group,
groups and issuer their sign-in gave them (an API token's session leaves these empty and reads its token)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("signed_in_with", sa.String(300), nullable=True))
        batch.add_column(sa.Column("role", sa.String(20), nullable=True))
        batch.add_column(sa.Column("environments", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("group_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        for column in ("groups", "group_name", "environments", "role", "signed_in_with"):
            batch.drop_column(column)
