"""audit lines carry the workflow run id

Operation ids are workflow ids, shared by every run on a cluster (an upgrade, then a
decommission). Deduplicating retried audit writes by (operation_id, seq) alone dropped the
later run's lines; the run id makes the key unique.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("run_id", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("run_id")
