"""placement of applications: each cluster's CPU and memory from the fleet sweep and since when it is
unhealthy (the damping of re-placement), holds that evacuate, and every application's placement

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("cpu_allocatable_m", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cpu_requested_m", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("memory_allocatable_mi", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("memory_requested_mi", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unhealthy_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("maintenance_holds") as batch:
        batch.add_column(sa.Column("evacuate", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "placements",
        sa.Column("app", sa.String(100), primary_key=True),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation_id", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("placements")
    with op.batch_alter_table("maintenance_holds") as batch:
        batch.drop_column("evacuate")
    with op.batch_alter_table("clusters") as batch:
        for column in ("unhealthy_since", "memory_requested_mi", "memory_allocatable_mi", "cpu_requested_m",
                       "cpu_allocatable_m"):
            batch.drop_column(column)
