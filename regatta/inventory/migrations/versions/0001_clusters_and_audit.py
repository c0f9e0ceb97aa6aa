"""clusters and the audit log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("region", sa.String(50), nullable=False),
        sa.Column("environment", sa.String(50), nullable=False, index=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("control_plane_version", sa.String(20), nullable=False),
        sa.Column("node_pools", sa.JSON, nullable=False),
        sa.Column("health", sa.String(200), nullable=False),
        sa.Column("credential_ref", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("operation_id", sa.String(200), nullable=False, index=True),
        sa.Column("operation", sa.String(50), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False, index=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("ticket", sa.String(100), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("clusters")
