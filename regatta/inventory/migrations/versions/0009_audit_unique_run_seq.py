"""audit lines unique per run and position: a retried write is refused by the database itself

A workflow numbers its audit lines (run_id, seq); the same line written twice by a retried
activity must be one record. A unique index over (operation_id, run_id, seq) for seq > 0 makes
the database refuse the second, where a check before the write could race. Records written before
this revision are left as they are (the hash chain already covers them, and removing one would
break it): the index starts after the last of them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    last = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM audit_log")).scalar_one()
    where = sa.text(f"seq > 0 AND id > {int(last)}")
    op.create_index("uq_audit_run_seq", "audit_log", ["operation_id", "run_id", "seq"], unique=True,
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("uq_audit_run_seq", table_name="audit_log")
