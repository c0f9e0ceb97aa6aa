"""the audit log is hash-chained: each record holds the previous record's hash and its own, and
a one-row head holds the last record's id and hash, so an edit, a removal or a truncation shows

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from regatta.rules.audit_chain import CHAINED_FIELDS as CHAINED
from regatta.rules.audit_chain import GENESIS, record_hash

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=False, server_default=GENESIS))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=False, server_default=""))
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    # Chain what is already there, oldest first, so the trail is whole from its first record.
    connection = op.get_bind()
    # Typed as the table declares them, so a time reads back as the same datetime verify will see.
    types = {"at": sa.DateTime(timezone=True), "id": sa.Integer(), "seq": sa.Integer()}
    log = sa.table("audit_log", *(sa.column(name, types.get(name)) for name in (*CHAINED, "prev_hash", "hash")))
    prev, last_id = GENESIS, 0
    for row in connection.execute(sa.select(*(log.c[name] for name in CHAINED)).order_by(log.c.id)).mappings():
        own = record_hash(prev, dict(row))
        connection.execute(sa.update(log).where(log.c.id == row["id"]).values(prev_hash=prev, hash=own))
        prev, last_id = own, row["id"]
    op.bulk_insert(head, [{"id": 1, "last_id": last_id, "last_hash": prev}])


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
