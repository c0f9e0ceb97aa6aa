"""The inventory's audit trail: lines appended under a keyed hash chain, read back by cluster, operation or kind,
verified and checkpointed (DESIGN rule 10).

One of the stores `Inventory` is made of (regatta/inventory/store.py); each uses the one engine it opens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regatta.inventory import audit_append
from regatta.inventory.audit_files import AuditKeys
from regatta.inventory.tables import (
    AuditChainHead,
    AuditRow,
    utc,
)
from regatta.models import (
    AuditVerification,
    OperationRecord,
)
from regatta.rules import audit_chain


class AuditTrailStore:
    engine: Engine
    audit_keys: AuditKeys

    # ------------------------------------------------------------------ audit

    def append_audit(self, record: OperationRecord) -> None:
        """Append one record to the chain. A workflow's line (seq > 0) written again by a retried
        activity is refused by the unique index on (operation_id, run_id, seq) and kept once."""
        try:
            audit_append.append(self.engine, self.audit_keys, record)
        except IntegrityError:
            if record.seq and self._written(record):
                return  # a retried activity writing the same line again
            raise

    def _written(self, record: OperationRecord) -> bool:
        with Session(self.engine) as session:
            return session.scalar(select(AuditRow.id).where(
                AuditRow.operation_id == record.operation_id, AuditRow.run_id == record.run_id,
                AuditRow.seq == record.seq)) is not None

    def audit_checkpoint(self) -> audit_chain.Checkpoint | None:
        """The trail's head now, signed with the current audit key (None without a key, or an empty trail)."""
        if self.audit_keys.current is None:
            return None
        with Session(self.engine) as session:
            head = session.get(AuditChainHead, 1)
            if head is None or not head.last_id:
                return None
            first_keyed = session.scalar(select(AuditRow.id).where(AuditRow.key_id.is_not(None)).order_by(AuditRow.id).limit(1))
            return audit_chain.checkpoint(at=datetime.now(UTC), last_id=head.last_id, last_hash=head.last_hash,
                                          first_keyed_id=first_keyed, key=self.audit_keys.current)

    def verify_audit(self, checkpoints: Sequence[audit_chain.Checkpoint] = ()) -> AuditVerification:
        """Walk the whole trail and say where its chain first breaks, if it does: every keyed hash checked
        under its key, and every checkpoint (read from outside the database) matched."""
        with Session(self.engine) as session:
            head = session.get(AuditChainHead, 1)
            rows = ((r.id, r.prev_hash, r.hash, r.key_id, r.chained_fields())
                    for r in session.scalars(select(AuditRow).order_by(AuditRow.id)).yield_per(1000))
            if head is None:
                return AuditVerification(ok=False, records=0, reason="the chain's head record is gone: the trail was"
                                         " tampered with (restore audit_chain_head from a backup)")
            count, broken = audit_chain.first_break(rows, head=(head.last_id, head.last_hash) if head.last_id else None,
                                                    keys=self.audit_keys.by_id, checkpoints=checkpoints)
            keyed = session.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.key_id.is_not(None))) or 0
        facts = {"keyed": keyed, "checkpoints": len(checkpoints)}
        if broken is None:
            return AuditVerification(ok=True, records=count, **facts)
        return AuditVerification(ok=False, records=count, broken_at=broken.record_id, reason=broken.reason, **facts)

    def audit(self, *, cluster: str | None = None, operation_id: str | None = None,
              kind: str | None = None) -> list[OperationRecord]:
        """The trail in order, narrowed to a cluster, an operation, or a kind of record (the `operation` it names:
        a workflow type, `api`, or `access` for sign-ins and refusals)."""
        query = select(AuditRow).order_by(AuditRow.id)
        if cluster:
            query = query.where(AuditRow.cluster == cluster)
        if kind:
            query = query.where(AuditRow.operation == kind)
        if operation_id:
            query = query.where(AuditRow.operation_id == operation_id)
        with Session(self.engine) as session:
            return [
                OperationRecord(
                    operation_id=r.operation_id, operation=r.operation, cluster=r.cluster, requested_by=r.requested_by,
                    ticket=r.ticket, action=r.action, outcome=r.outcome, detail=r.detail, seq=r.seq, run_id=r.run_id,
                    at=utc(r.at),
                )
                for r in session.scalars(query)
            ]
