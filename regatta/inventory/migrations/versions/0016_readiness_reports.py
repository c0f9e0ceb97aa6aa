"""readiness reports: each cluster's last readiness read for its next minor version, from the fleet sweep

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readiness_reports",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("target_version", sa.String(20), nullable=False),
        sa.Column("blocking", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("readiness_reports")
