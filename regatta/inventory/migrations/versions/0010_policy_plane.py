"""the policy plane: bundle revisions, compliance per cluster × bundle with its whole history, drifts and their suppressions

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_revisions",
        sa.Column("bundle", sa.String(100), primary_key=True),
        sa.Column("revision", sa.String(64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "compliance",
        sa.Column("cluster", sa.String(100), primary_key=True),
        sa.Column("bundle", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(20), nullable=True),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "compliance_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(100), nullable=False, index=True),
        sa.Column("bundle", sa.String(100), nullable=False, index=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(20), nullable=True),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    )


    op.create_table(
        "drifts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(100), nullable=False, index=True),
        sa.Column("bundle", sa.String(100), nullable=False, index=True),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "drift_suppressions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(100), nullable=False, index=True),
        sa.Column("bundle", sa.String(100), nullable=False),
        sa.Column("suppression", sa.JSON(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_suppressions")
    op.drop_table("drifts")
    op.drop_table("compliance_history")
    op.drop_table("compliance")
    op.drop_table("bundle_revisions")
