"""Appending one record to the hash-chained audit trail: the one write every audit line goes
through (Inventory.append_audit, which also keeps a retried line once).

SQLAlchemy Core with statements built once rather than the ORM: an upgrade writes several lines,
every one of them through the chain head's lock, and building statements was a quarter of an
append's CPU in a profile of the 1,000-cluster wave, the ORM's unit of work most of it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Engine

from regatta.inventory.audit_files import AuditKeyError, AuditKeys
from regatta.inventory.tables import AuditChainHead, AuditRow
from regatta.models import OperationRecord
from regatta.rules import audit_chain

# A no-op write that takes the head's row lock and reads it in one round trip.
TAKE_HEAD = (update(AuditChainHead).where(AuditChainHead.id == 1).values(last_id=AuditChainHead.last_id)
             .returning(AuditChainHead.last_id, AuditChainHead.last_hash))
KEY_OF = select(AuditRow.key_id).where(AuditRow.id == bindparam("row_id"))
ADD_ROW = insert(AuditRow).returning(AuditRow.id)
SET_HASH = update(AuditRow).where(AuditRow.id == bindparam("row_id")).values(hash=bindparam("row_hash"))
MOVE_HEAD = (update(AuditChainHead).where(AuditChainHead.id == 1)
             .values(last_id=bindparam("new_last_id"), last_hash=bindparam("new_last_hash")))


def append(engine: Engine, keys: AuditKeys, record: OperationRecord) -> None:
    """Chain `record` onto the trail's last record, hashed (and keyed, with an audit key)."""
    fields = {**record.model_dump(exclude={"at"}), "at": datetime.now(UTC)}
    with engine.begin() as connection:
        # The head first: its row lock (PostgreSQL) or the write lock (SQLite) makes appends take
        # turns, so no two records ever chain onto the same predecessor.
        found = connection.execute(TAKE_HEAD).one_or_none()
        assert found is not None, "migration 0005 writes the chain's head row"
        last_id, last_hash = found
        if keys.current is None and last_id and connection.scalar(KEY_OF, {"row_id": last_id}) is not None:
            raise AuditKeyError("the audit trail is keyed, and this process holds no audit key: set"
                                " REGATTA_AUDIT_KEY_FILE (an unkeyed record would break the chain)")
        # The database gives the id (PostgreSQL's sequence, which anything else inserting must not
        # collide with), and the hash covers it, so the hash is written once the row is in.
        row_id = connection.execute(ADD_ROW, {**fields, "prev_hash": last_hash, "hash": "",
                                              "key_id": keys.current_id}).scalar_one()
        chained = {**fields, "id": row_id}
        row_hash = audit_chain.record_hash(last_hash, {name: chained[name] for name in audit_chain.CHAINED_FIELDS},
                                           keys.current)
        connection.execute(SET_HASH, {"row_id": row_id, "row_hash": row_hash})
        connection.execute(MOVE_HEAD, {"new_last_id": row_id, "new_last_hash": row_hash})
