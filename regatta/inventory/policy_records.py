"""The policy plane's records: each bundle's revisions, compliance and its history per cluster, drifts and their
suppressions, and where each placed application runs.

One of the stores `Inventory` is made of (regatta/inventory/store.py); each uses the one engine it opens."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from regatta.inventory.audit_files import AuditKeys
from regatta.inventory.tables import (
    BundleRevisionRow,
    ComplianceHistoryRow,
    ComplianceRow,
    DriftRow,
    DriftSuppressionRow,
    PlacementRow,
    utc,
)
from regatta.models.placement import PlacementDecision
from regatta.models.policy import BundleSpec, ComplianceRecord, Drift, DriftSuppression


class PolicyStore:
    engine: Engine
    audit_keys: AuditKeys

    # ------------------------------------------------------------------ the policy plane

    def save_bundle_revision(self, spec: BundleSpec, *, at: datetime) -> None:
        """Keep a bundle's content at its revision, and when a rollout last planned it (a rollback
        makes an earlier revision the newest again; the content of a revision never changes)."""
        assert spec.revision, "a bundle is saved at its revision"
        with Session(self.engine) as session, session.begin():
            row = session.get(BundleRevisionRow, (spec.name, spec.revision))
            if row is None:
                session.add(BundleRevisionRow(bundle=spec.name, revision=spec.revision, planned_at=at,
                                              spec=spec.model_dump(mode="json")))
            else:
                row.planned_at = at

    def bundle_revisions(self, bundle: str) -> list[BundleSpec]:
        """The bundle's revisions, the one planned last first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(BundleRevisionRow).where(BundleRevisionRow.bundle == bundle)
                                   .order_by(BundleRevisionRow.planned_at.desc())).all()
            return [BundleSpec.model_validate(row.spec) for row in rows]

    def bundle_names(self) -> list[str]:
        """Every bundle a rollout has planned, by name."""
        with Session(self.engine) as session:
            return list(session.scalars(select(BundleRevisionRow.bundle).distinct().order_by(BundleRevisionRow.bundle)))

    def bundle_revision(self, bundle: str, revision: str) -> BundleSpec:
        with Session(self.engine) as session:
            row = session.get(BundleRevisionRow, (bundle, revision))
            if row is None:
                raise LookupError(f"bundle {bundle} has no revision {revision} in the inventory")
            return BundleSpec.model_validate(row.spec)

    def record_compliance(self, record: ComplianceRecord) -> tuple[bool, ComplianceRecord | None]:
        """Set where a cluster stands with a bundle; a change of state, revision, mode or violation
        count is appended to its history. Whether something changed, and the record as it was
        (read in the same transaction)."""
        at = record.evaluated_at or datetime.now(UTC)
        fields = {"state": record.state, "revision": record.revision, "mode": record.mode,
                  "violations": record.violations, "detail": record.detail}
        with Session(self.engine) as session, session.begin():
            row = session.get(ComplianceRow, (record.cluster, record.bundle))
            before = self._compliance(row) if row is not None else None
            changed = row is None or any(getattr(row, k) != v for k, v in fields.items() if k != "detail")
            if row is None:
                session.add(ComplianceRow(cluster=record.cluster, bundle=record.bundle, evaluated_at=at, **fields))
            else:
                for k, v in fields.items():
                    setattr(row, k, v)
                row.evaluated_at = at
            if changed:
                session.add(ComplianceHistoryRow(cluster=record.cluster, bundle=record.bundle, evaluated_at=at, **fields))
        return changed, before

    @staticmethod
    def _compliance(row: ComplianceRow | ComplianceHistoryRow) -> ComplianceRecord:
        return ComplianceRecord(cluster=row.cluster, bundle=row.bundle, state=row.state, revision=row.revision,
                                mode=row.mode, violations=row.violations, detail=row.detail,
                                evaluated_at=utc(row.evaluated_at))

    def compliance(self, *, bundle: str | None = None, cluster: str | None = None) -> list[ComplianceRecord]:
        with Session(self.engine) as session:
            query = select(ComplianceRow).order_by(ComplianceRow.bundle, ComplianceRow.cluster)
            if bundle is not None:
                query = query.where(ComplianceRow.bundle == bundle)
            if cluster is not None:
                query = query.where(ComplianceRow.cluster == cluster)
            return [self._compliance(row) for row in session.scalars(query)]

    def compliance_history(self, *, cluster: str, bundle: str) -> list[ComplianceRecord]:
        """Every change, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ComplianceHistoryRow).where(
                ComplianceHistoryRow.cluster == cluster, ComplianceHistoryRow.bundle == bundle)
                .order_by(ComplianceHistoryRow.id))
            return [self._compliance(row) for row in rows]

    def replace_drifts(self, *, cluster: str, bundle: str, drifts: list[Drift], at: datetime) -> list[Drift]:
        """Set what the latest sweep of a cluster × bundle found; return the drifts that are new
        (not found by the sweep before: what the audit trail is told about)."""
        def identity(drift: Drift) -> tuple:
            return (drift.key.words(), drift.kind, tuple(f.path for f in drift.fields), drift.remediated)

        with Session(self.engine) as session, session.begin():
            rows = session.scalars(select(DriftRow).where(DriftRow.cluster == cluster, DriftRow.bundle == bundle)).all()
            before = {identity(Drift.model_validate(row.drift)) for row in rows}
            for row in rows:
                session.delete(row)
            for drift in drifts:
                session.add(DriftRow(cluster=cluster, bundle=bundle, drift=drift.model_dump(mode="json"), found_at=at))
        return [d for d in drifts if identity(d) not in before]

    def drifts(self, *, cluster: str | None = None, bundle: str | None = None) -> list[tuple[Drift, datetime]]:
        with Session(self.engine) as session:
            query = select(DriftRow).order_by(DriftRow.cluster, DriftRow.bundle, DriftRow.id)
            if cluster is not None:
                query = query.where(DriftRow.cluster == cluster)
            if bundle is not None:
                query = query.where(DriftRow.bundle == bundle)
            found = []
            for row in session.scalars(query):
                at = utc(row.found_at)
                assert at is not None
                found.append((Drift.model_validate(row.drift), at))
            return found

    def suppress_drift(self, suppression: DriftSuppression) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(DriftSuppressionRow(cluster=suppression.cluster, bundle=suppression.bundle, until=suppression.until,
                                            suppression=suppression.model_dump(mode="json")))

    def drift_suppressions(self, *, at: datetime) -> list[DriftSuppression]:
        """The suppressions still in force at `at`."""
        with Session(self.engine) as session:
            rows = session.scalars(select(DriftSuppressionRow).where(DriftSuppressionRow.until > at)
                                   .order_by(DriftSuppressionRow.id))
            return [DriftSuppression.model_validate(row.suppression) for row in rows]

    # ------------------------------------------------------------------ placement of applications

    def forget_bundle_on(self, *, cluster: str, bundle: str) -> None:
        """A bundle taken off a cluster: its compliance record and drifts there go (the history stays)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ComplianceRow, (cluster, bundle))
            if row is not None:
                session.delete(row)
            for drift_row in session.scalars(select(DriftRow).where(DriftRow.cluster == cluster, DriftRow.bundle == bundle)):
                session.delete(drift_row)

    def save_placement(self, decision: PlacementDecision) -> None:
        """Where an application runs now (a rollout's plan, a move's result), replacing what was."""
        with Session(self.engine) as session, session.begin():
            row = session.get(PlacementRow, decision.app) or PlacementRow(app=decision.app)
            row.revision, row.decision = decision.revision, decision.model_dump(mode="json")
            row.decided_at, row.operation_id = decision.decided_at, decision.operation_id
            session.add(row)

    def placement(self, app: str) -> PlacementDecision | None:
        with Session(self.engine) as session:
            row = session.get(PlacementRow, app)
            return None if row is None else PlacementDecision.model_validate(row.decision)

    def placements(self) -> list[PlacementDecision]:
        with Session(self.engine) as session:
            return [PlacementDecision.model_validate(row.decision)
                    for row in session.scalars(select(PlacementRow).order_by(PlacementRow.app))]
