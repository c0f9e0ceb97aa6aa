"""Reading and writing the inventory: clusters, their versions and health, and the audit log.

`Inventory(url)` migrates the schema to the newest revision the first time a process opens that
database, so a fresh REGATTA_HOME or an empty PostgreSQL database just works, and opening it again
costs one read of its revision at most.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, create_engine, delete, event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from regatta.inventory import audit_append
from regatta.inventory.audit_files import AuditKeys
from regatta.inventory.errors import DrPairError, HoldError, TokenError, UnknownCluster
from regatta.inventory.tables import (
    AccessGrantRow,
    ApiTicketRow,
    ApiTokenRow,
    AuditChainHead,
    AuditRow,
    BundleRevisionRow,
    ClusterRow,
    ComplianceHistoryRow,
    ComplianceRow,
    DriftRow,
    DriftSuppressionRow,
    DrPairRow,
    MaintenanceHoldRow,
    PlacementRow,
    ReadinessRow,
    WebhookDeliveryRow,
    WebSessionRow,
)
from regatta.models import (
    AccessGrantRecord,
    ApiTicket,
    ApiToken,
    AuditVerification,
    ClusterRecord,
    DrPair,
    MaintenanceHold,
    ManagementRef,
    NodePool,
    OperationRecord,
)
from regatta.models.placement import PlacementDecision
from regatta.models.policy import BundleSpec, ComplianceRecord, Drift, DriftSuppression
from regatta.models.readiness import ReadinessReport
from regatta.rules import audit_chain

MIGRATIONS = Path(__file__).with_name("migrations")


@functools.cache
def _head_revision() -> str | None:
    """The newest migration: the one no other revises. Read from the files' own `revision` and
    `down_revision` lines, so a process whose database is current never imports alembic (half a
    second of every CLI command's start)."""
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        found = re.search(r'^revision = "([^"]+)"', source, re.M)
        down = re.search(r'^down_revision = "([^"]+)"', source, re.M)
        if found:
            revisions.add(found[1])
        if down:
            revised.add(down[1])
    heads = revisions - revised
    assert len(heads) <= 1, f"the migrations have more than one head: {sorted(heads)}"
    return next(iter(heads), None)


def _utc(at: datetime | None) -> datetime | None:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the CLI read while the worker writes; busy_timeout waits instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


# Databases this process has seen at the newest revision: a CLI call, an API request or an
# activity opening the inventory again does not look at the migrations again.
_MIGRATED: set[str] = set()
MIGRATION_LOCK_KEY = 0x52454741  # "REGA": the advisory lock that serializes migrations on PostgreSQL
_MIGRATED_LOCK = threading.Lock()


_TOKEN = ApiTokenRow.__table__.c
_TOKEN_BY_HASH = select(_TOKEN.name, _TOKEN.role, _TOKEN.environments, _TOKEN.created_at, _TOKEN.revoked_at).where(
    _TOKEN.token_hash == bindparam("token_hash"))


class Inventory:
    def __init__(self, url: str, *, migrate: bool = True, audit_keys: AuditKeys | None = None):
        self.url = url
        self.engine = _engine(url)
        self.audit_keys = audit_keys or AuditKeys()  # the audit trail's HMAC keys (regatta/inventory/audit_files.py)
        if migrate:
            self.migrate_once()

    def migrate_once(self) -> None:
        """Bring the schema to the newest revision unless this process already saw it there; a
        database at the head already is only read (one SELECT of alembic_version)."""
        with _MIGRATED_LOCK:
            if self.url in _MIGRATED:
                return
            if self.revision() != _head_revision():
                self.migrate()
            _MIGRATED.add(self.url)

    def revision(self) -> str | None:
        """The schema's migration (alembic's own table), or None before the first one."""
        with self.engine.connect() as connection:
            try:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except DBAPIError:
                return None

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several replicas starting at once (the API and every worker) migrate one at a time:
                # the first takes the lock and migrates, the rest find the schema current.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ clusters

    @staticmethod
    def _hold(row: MaintenanceHoldRow | None) -> MaintenanceHold | None:
        return None if row is None else Inventory._hold_of(row)

    @staticmethod
    def _hold_of(row: MaintenanceHoldRow) -> MaintenanceHold:
        return MaintenanceHold(until=_utc(row.until), reason=row.reason, held_by=row.held_by,
                               since=_utc(row.since), evacuate=bool(row.evacuate))

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
            unhealthy_since=_utc(row.unhealthy_since) if row.unhealthy_since else None,
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
        at = _utc(row.updated_at)
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
                    at=_utc(r.at),
                )
                for r in session.scalars(query)
            ]

    # ------------------------------------------------------------------ API tokens and tickets

    @staticmethod
    def _token(row: ApiTokenRow) -> ApiToken:
        return ApiToken(name=row.name, role=row.role, environments=list(row.environments), created_at=row.created_at,
                        revoked_at=row.revoked_at)

    def add_token(self, *, name: str, token_hash: str, role: str, environments: list[str]) -> ApiToken:
        with Session(self.engine) as session, session.begin():
            if session.get(ApiTokenRow, name) is not None:
                free = next(f"{name}-{n}" for n in range(2, 10_000) if session.get(ApiTokenRow, f"{name}-{n}") is None)
                raise TokenError(f"a token named {name} exists already (names are never reused, even once revoked);"
                                 f" choose another name, e.g. --name {free}")
            row = ApiTokenRow(name=name, token_hash=token_hash, role=role, environments=environments,
                              created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            return self._token(row)

    def revoke_token(self, name: str) -> ApiToken:
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiTokenRow, name)
            if row is None:
                known = ", ".join(session.scalars(select(ApiTokenRow.name).order_by(ApiTokenRow.name)).all()) or "none"
                raise TokenError(f"no token named {name} (tokens: {known})")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return self._token(row)

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """Every API request asks this: one Core SELECT, no ORM session (a fifth of the API's CPU under load)."""
        with self.engine.connect() as connection:
            row = connection.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
        if row is None:
            return None
        return ApiToken(name=row.name, role=row.role, environments=list(row.environments), created_at=row.created_at,
                        revoked_at=row.revoked_at)

    def list_tokens(self) -> list[ApiToken]:
        with Session(self.engine) as session:
            return [self._token(row) for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))]

    def claim_ticket(self, claim: ApiTicket) -> ApiTicket | None:
        """Claim a change ticket for an operation; the claim already held, if one is (the same
        ticket sent twice, even at the same moment, starts one operation)."""
        try:
            with Session(self.engine) as session, session.begin():
                session.add(ApiTicketRow(**claim.model_dump()))
            return None
        except IntegrityError:
            return self.ticket(claim.ticket)

    def release_ticket(self, ticket: str) -> None:
        """Give a ticket back when its operation could not be started, so a retry can start it."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiTicketRow, ticket)
            if row is not None:
                session.delete(row)

    def ticket(self, ticket: str) -> ApiTicket | None:
        with Session(self.engine) as session:
            row = session.get(ApiTicketRow, ticket)
            return None if row is None else ApiTicket(ticket=row.ticket, kind=row.kind, operation_id=row.operation_id,
                                                      request_digest=row.request_digest, token=row.token,
                                                      created_at=row.created_at)

    def first_delivery(self, signature: str, *, keep_seconds: float) -> bool:
        """Remember an inbound webhook's signature; False when it was seen before (a replay).
        Signatures older than the timestamp window are forgotten: their requests are refused anyway."""
        now = datetime.now(UTC)
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.received_at < now - timedelta(seconds=2 * keep_seconds)))
                session.add(WebhookDeliveryRow(signature=signature, received_at=now))
            return True
        except IntegrityError:
            return False

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
                                evaluated_at=_utc(row.evaluated_at))

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
                at = _utc(row.found_at)
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

    # ------------------------------------------------------------------ fleet-view sessions

    def start_web_session(self, *, session_hash: str, token: ApiToken, csrf: str, now: datetime, lifetime: timedelta) -> None:
        """A session for an API token (read again on every page: revoking it ends the session), or for a person
        signed in through the identity provider (what their sign-in gave them kept with it, for its lifetime)."""
        person = token.signed_in_with is not None
        with Session(self.engine) as session, session.begin():
            session.add(WebSessionRow(session_hash=session_hash, token_name=token.name, csrf=csrf, created_at=now,
                                      expires_at=now + lifetime, signed_in_with=token.signed_in_with,
                                      role=token.role if person else None,
                                      environments=list(token.environments) if person else None,
                                      group_name=token.group if person else None,
                                      groups=list(token.groups or []) if person else None))

    def web_session(self, session_hash: str, *, now: datetime) -> tuple[ApiToken, str] | None:
        """The live token and CSRF secret a session stands for; None once it expired or its token was revoked."""
        with Session(self.engine) as session:
            row = session.get(WebSessionRow, session_hash)
            expires = _utc(row.expires_at) if row is not None else None
            if row is None or expires is None or expires <= now:
                return None
            if row.signed_in_with is not None:
                return ApiToken(name=row.token_name, role=row.role, environments=list(row.environments or []),
                                created_at=_utc(row.created_at), signed_in_with=row.signed_in_with,
                                group=row.group_name, groups=list(row.groups or []),
                                expires_at=_utc(row.expires_at)), row.csrf
            token = session.get(ApiTokenRow, row.token_name)
            if token is None or token.revoked_at is not None:
                return None
            return self._token(token), row.csrf

    # ------------------------------------------------------------------ access grants

    def record_access_grant(self, grant: AccessGrantRecord) -> None:
        """The grant as it stands now (written at every change of its phase)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(AccessGrantRow, grant.grant_id)
            values = grant.model_dump()
            if row is None:
                session.add(AccessGrantRow(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def access_grants(self, *, cluster: str | None = None, person: str | None = None,
                      grant_id: str | None = None) -> list[AccessGrantRecord]:
        """Grants, newest first, narrowed to a cluster, a person or one grant."""
        query = select(AccessGrantRow).order_by(AccessGrantRow.requested_at.desc())
        if cluster:
            query = query.where(AccessGrantRow.cluster == cluster)
        if person:
            query = query.where(AccessGrantRow.person == person)
        if grant_id:
            query = query.where(AccessGrantRow.grant_id == grant_id)
        with Session(self.engine) as session:
            return [AccessGrantRecord(**{column: (_utc(value) if isinstance(value, datetime) else value)
                                         for column, value in ((c.key, getattr(row, c.key))
                                                               for c in AccessGrantRow.__table__.columns)})
                    for row in session.scalars(query)]

    def end_sessions_of(self, name: str) -> int:
        """Every fleet-view session under `name` (a token's, or a person's signed in through the identity provider)
        ended: how many there were."""
        with Session(self.engine) as session, session.begin():
            rows = session.scalars(select(WebSessionRow).where(WebSessionRow.token_name == name)).all()
            for row in rows:
                session.delete(row)
            return len(rows)

    def end_web_session(self, session_hash: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(WebSessionRow, session_hash)
            if row is not None:
                session.delete(row)
