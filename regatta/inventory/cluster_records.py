"""The inventory's clusters: their records (versions, health, room, labels, where they are reached), their
maintenance holds, their readiness reports and their disaster-recovery pairs.

One of the stores `Inventory` is made of (regatta/inventory/store.py); each uses the one engine it opens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from regatta.inventory.audit_trail import AuditTrailStore
from regatta.inventory.errors import DrPairError, HoldError, UnknownCluster
from regatta.inventory.tables import (
    ClusterRow,
    DrPairRow,
    MaintenanceHoldRow,
    ReadinessRow,
    utc,
)
from regatta.models import (
    ClusterRecord,
    DrPair,
    MaintenanceHold,
    ManagementRef,
    NodePool,
    OperationRecord,
)
from regatta.models.readiness import ReadinessReport


class ClusterStore(AuditTrailStore):
    """A maintenance hold and its release are audit lines: this store writes them through the audit trail's."""

    engine: Engine

    # ------------------------------------------------------------------ clusters

    @staticmethod
    def _hold(row: MaintenanceHoldRow | None) -> MaintenanceHold | None:
        return None if row is None else ClusterStore._hold_of(row)

    @staticmethod
    def _hold_of(row: MaintenanceHoldRow) -> MaintenanceHold:
        return MaintenanceHold(until=utc(row.until), reason=row.reason, held_by=row.held_by,
                               since=utc(row.since), evacuate=bool(row.evacuate))

    @classmethod
    def _record(cls, row: ClusterRow, hold: MaintenanceHoldRow | None = None) -> ClusterRecord:
        return ClusterRecord(
            name=row.name, provider=row.provider, region=row.region, environment=row.environment,
            labels=dict(row.labels or {}), control_plane_version=row.control_plane_version,
            node_pools=[NodePool.model_validate(p) for p in row.node_pools or []], health=row.health,
            credential_ref=row.credential_ref, site=row.site, updated_at=row.updated_at, pods_capacity=row.pods_capacity,
            management=ManagementRef.model_validate(row.management) if row.management else None,
            pods_free=row.pods_free, hold=cls._hold(hold), cpu_allocatable_m=row.cpu_allocatable_m,
            cpu_requested_m=row.cpu_requested_m, memory_allocatable_mi=row.memory_allocatable_mi,
            memory_requested_mi=row.memory_requested_mi,
            unhealthy_since=utc(row.unhealthy_since) if row.unhealthy_since else None,
        )

    def upsert_cluster(self, record: ClusterRecord) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(ClusterRow, record.name) or ClusterRow(name=record.name)
            row.provider = record.provider
            row.region = record.region
            row.environment = record.environment
            row.labels = dict(record.labels)
            row.control_plane_version = record.control_plane_version
            row.node_pools = [p.model_dump() for p in record.node_pools]
            row.health = record.health
            row.credential_ref = record.credential_ref
            row.site = record.site
            row.management = record.management.model_dump() if record.management else None
            row.pods_capacity = record.pods_capacity
            row.pods_free = record.pods_free
            row.cpu_allocatable_m, row.cpu_requested_m = record.cpu_allocatable_m, record.cpu_requested_m
            row.memory_allocatable_mi, row.memory_requested_mi = record.memory_allocatable_mi, record.memory_requested_mi
            # The damping of re-placement counts from the first sweep that found it unhealthy.
            if record.health in ("healthy", "unknown"):
                row.unhealthy_since = None
            elif row.unhealthy_since is None:
                row.unhealthy_since = record.unhealthy_since or datetime.now(UTC)
            row.updated_at = datetime.now(UTC)
            session.add(row)

    def get_cluster(self, name: str) -> ClusterRecord:
        with Session(self.engine) as session:  # the cluster and its hold in one SELECT: every operation reads it
            found = session.execute(select(ClusterRow, MaintenanceHoldRow).outerjoin(
                MaintenanceHoldRow, MaintenanceHoldRow.cluster == ClusterRow.name).where(ClusterRow.name == name)).first()
            if found is None:
                known = list(session.scalars(select(ClusterRow.name).order_by(ClusterRow.name)))
                raise UnknownCluster(name, known)
            return self._record(found[0], found[1])

    def list_clusters(self, selector: dict[str, str] | None = None) -> list[ClusterRecord]:
        with Session(self.engine) as session:
            holds = {h.cluster: h for h in session.scalars(select(MaintenanceHoldRow))}
            rows = session.scalars(select(ClusterRow).order_by(ClusterRow.name))
            records = [self._record(row, holds.get(row.name)) for row in rows]
        selector = selector or {}
        return [r for r in records if all(r.labels.get(k) == v for k, v in selector.items())]

    def holds(self) -> dict[str, MaintenanceHold]:
        with Session(self.engine) as session:
            return {row.cluster: self._hold_of(row) for row in session.scalars(select(MaintenanceHoldRow))}

    def record_versions(self, name: str, *, control_plane_version: str, node_pools: list[NodePool], health: str = "healthy") -> None:
        """One UPDATE, not the ORM's read, snapshot and flush: every upgrade step of every cluster writes here."""
        with self.engine.begin() as connection:
            changed = connection.execute(update(ClusterRow).where(ClusterRow.name == name).values(
                control_plane_version=control_plane_version, node_pools=[p.model_dump() for p in node_pools],
                health=health, updated_at=datetime.now(UTC)))
        if changed.rowcount == 0:
            with Session(self.engine) as session:
                raise UnknownCluster(name, list(session.scalars(select(ClusterRow.name).order_by(ClusterRow.name))))

    def remove_cluster(self, name: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(ClusterRow, name)
            if row is not None:
                session.delete(row)
            for owned in (session.get(MaintenanceHoldRow, name), session.get(ReadinessRow, name)):
                if owned is not None:
                    session.delete(owned)

    def record_readiness(self, reports: Sequence[ReadinessReport], *, forget: Sequence[str] = ()) -> None:
        """Each cluster's last readiness read (for its next minor), replacing the one before; the clusters
        in `forget` keep none (they run the newest supported minor)."""
        with Session(self.engine) as session, session.begin():
            if forget:
                session.execute(delete(ReadinessRow).where(ReadinessRow.cluster.in_(list(forget))))
            for report in reports:
                row = session.get(ReadinessRow, report.cluster) or ReadinessRow(cluster=report.cluster)
                row.target_version, row.read_at = report.target_version, report.read_at or datetime.now(UTC)
                row.blocking = sum(finding.severity == "blocking" for finding in report.findings)
                row.report = report.model_dump(mode="json", exclude={"ready"})
                session.add(row)

    def readiness_reports(self, *, cluster: str | None = None) -> list[ReadinessReport]:
        with Session(self.engine) as session:
            query = select(ReadinessRow).order_by(ReadinessRow.cluster)
            if cluster is not None:
                query = query.where(ReadinessRow.cluster == cluster)
            return [ReadinessReport.model_validate(row.report) for row in session.scalars(query)]

    # ------------------------------------------------------------------ maintenance holds

    def hold_cluster(self, name: str, *, until: datetime, reason: str, held_by: str, now: datetime,
                     evacuate: bool = False) -> MaintenanceHold:
        """Keep waves and schedules off `name` until `until` (replacing any hold it has), and
        say so in the audit trail."""
        if until.tzinfo is None:
            raise HoldError("give --until with a time zone (2026-12-01T08:00:00Z) or as a duration (48h, 3d)")
        if until <= now:
            raise HoldError(f"--until {until.isoformat()} has already passed (the fleet's clock says"
                            f" {now.isoformat(timespec='seconds')}); give a time to come")
        if not reason.strip():
            raise HoldError("say why the cluster is held (--reason): whoever's wave waits on it reads it")
        self.get_cluster(name)
        until = until.replace(microsecond=0)  # "48h" from now reads better without the microseconds
        with Session(self.engine) as session, session.begin():
            row = session.get(MaintenanceHoldRow, name) or MaintenanceHoldRow(cluster=name)
            row.until, row.reason, row.held_by, row.since = until, reason.strip(), held_by, datetime.now(UTC)
            row.evacuate = evacuate
            session.add(row)
            session.flush()
            hold = self._hold_of(row)
        self.append_audit(OperationRecord(operation_id=f"hold-{name}", operation="MaintenanceHold", cluster=name,
                                          requested_by=held_by, action="hold", outcome="held",
                                          detail=f"until {until.isoformat()}: {reason.strip()}"
                                          + ("; placed workloads move off it" if evacuate else "")))
        return hold

    def release_hold(self, name: str, *, released_by: str) -> MaintenanceHold:
        with Session(self.engine) as session, session.begin():
            row = session.get(MaintenanceHoldRow, name)
            if row is None:
                self.get_cluster(name)  # an unknown cluster says so, with the names it knows
                raise HoldError(f"{name} is not held; nothing to release")
            hold = self._hold_of(row)
            session.delete(row)
        self.append_audit(OperationRecord(operation_id=f"hold-{name}", operation="MaintenanceHold", cluster=name,
                                          requested_by=released_by, action="release", outcome="released",
                                          detail=f"hold until {hold.until.isoformat()} ({hold.reason}) released"))
        return hold

    # ------------------------------------------------------------------ disaster-recovery pairs

    @staticmethod
    def _pair(row: DrPairRow) -> DrPair:
        at = utc(row.updated_at)
        return DrPair(primary=row.primary, standby=row.standby, serving=row.serving,
                      last_operation=row.last_operation, updated_at=at)

    def declare_dr_pair(self, primary: str, standby: str) -> DrPair:
        """Make `standby` the standby of `primary`, and label both with their DR role (the label
        is what `clusters list` shows and what refuses their decommissioning)."""
        if primary == standby:
            raise DrPairError(f"{primary} cannot be its own standby; name a cluster in another region or cloud")
        first, second = self.get_cluster(primary), self.get_cluster(standby)
        if first.region == second.region and first.provider == second.provider:
            raise DrPairError(f"{primary} and {standby} are both in {first.provider} {first.region}: a standby in the same"
                              " region fails with it; pick one in another region or cloud")
        with Session(self.engine) as session, session.begin():
            taken = session.scalars(select(DrPairRow).where(
                (DrPairRow.primary.in_([primary, standby]) | DrPairRow.standby.in_([primary, standby]))
                & ~((DrPairRow.primary == primary) & (DrPairRow.standby == standby)))).first()
            if taken is not None:
                raise DrPairError(f"{taken.primary} already has the standby {taken.standby}; a cluster is in one pair at a"
                                  " time (undeclare that pair first: regatta dr unpair)")
            row = session.get(DrPairRow, primary)
            if row is None:
                row = DrPairRow(primary=primary, standby=standby, serving="primary", updated_at=datetime.now(UTC))
                session.add(row)
            for name, role in ((primary, "primary"), (standby, "standby")):
                cluster = session.get(ClusterRow, name)
                assert cluster is not None  # both were looked up above
                cluster.labels = {**(cluster.labels or {}), "dr-role": role}
            session.flush()
            return self._pair(row)

    def undeclare_dr_pair(self, primary: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(DrPairRow, primary)
            if row is None:
                raise DrPairError(f"{primary} is not the primary of any DR pair")
            if row.serving != "primary":
                raise DrPairError(f"{row.standby} serves {primary}'s workloads now; fail back before undeclaring the pair")
            for name in (row.primary, row.standby):
                cluster = session.get(ClusterRow, name)
                if cluster is not None:
                    cluster.labels = {k: v for k, v in (cluster.labels or {}).items() if k != "dr-role"}
            session.delete(row)

    def dr_pair(self, primary: str) -> DrPair:
        with Session(self.engine) as session:
            row = session.get(DrPairRow, primary)
            if row is None:
                standby_of = session.scalars(select(DrPairRow).where(DrPairRow.standby == primary)).first()
                hint = (f"; it is the standby of {standby_of.primary}: fail over {standby_of.primary}, not {primary}"
                        if standby_of else "; declare one with `regatta dr pair PRIMARY STANDBY`")
                raise DrPairError(f"{primary} is not the primary of any DR pair{hint}")
            return self._pair(row)

    def dr_pairs(self) -> list[DrPair]:
        with Session(self.engine) as session:
            return [self._pair(row) for row in session.scalars(select(DrPairRow).order_by(DrPairRow.primary))]

    def record_dr_serving(self, primary: str, *, serving: str, operation_id: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(DrPairRow, primary)
            if row is None:
                raise DrPairError(f"{primary} is not the primary of any DR pair")
            row.serving = serving
            row.last_operation = operation_id
            row.updated_at = datetime.now(UTC)
