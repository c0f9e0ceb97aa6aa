"""Reading and writing the inventory: clusters, their versions and health, and the audit log.

`Inventory(url)` migrates the schema to the newest revision on first use, so a fresh
REGATTA_HOME or an empty PostgreSQL database just works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from regatta.models import ClusterRecord, NodePool, OperationRecord
from regatta.inventory.tables import AuditRow, ClusterRow

MIGRATIONS = Path(__file__).with_name("migrations")


class UnknownCluster(LookupError):
    def __init__(self, name: str, known: list[str]):
        hint = f"; known clusters include {', '.join(known[:8])}" if known else "; the inventory is empty"
        super().__init__(f"cluster {name!r} is not in the inventory{hint}. Run `regatta clusters list` to see them")
        self.name = name


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


class Inventory:
    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        self.engine = _engine(url)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ clusters

    @staticmethod
    def _record(row: ClusterRow) -> ClusterRecord:
        return ClusterRecord(
            name=row.name, provider=row.provider, region=row.region, environment=row.environment,
            labels=dict(row.labels or {}), control_plane_version=row.control_plane_version,
            node_pools=[NodePool.model_validate(p) for p in row.node_pools or []], health=row.health,
            credential_ref=row.credential_ref, updated_at=row.updated_at,
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
            row.updated_at = datetime.now(UTC)
            session.add(row)

    def get_cluster(self, name: str) -> ClusterRecord:
        with Session(self.engine) as session:
            row = session.get(ClusterRow, name)
            if row is None:
                known = list(session.scalars(select(ClusterRow.name).order_by(ClusterRow.name)))
                raise UnknownCluster(name, known)
            return self._record(row)

    def list_clusters(self, selector: dict[str, str] | None = None) -> list[ClusterRecord]:
        with Session(self.engine) as session:
            rows = session.scalars(select(ClusterRow).order_by(ClusterRow.name))
            records = [self._record(row) for row in rows]
        selector = selector or {}
        return [r for r in records if all(r.labels.get(k) == v for k, v in selector.items())]

    def record_versions(self, name: str, *, control_plane_version: str, node_pools: list[NodePool], health: str = "healthy") -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(ClusterRow, name)
            if row is None:
                raise UnknownCluster(name, [])
            row.control_plane_version = control_plane_version
            row.node_pools = [p.model_dump() for p in node_pools]
            row.health = health
            row.updated_at = datetime.now(UTC)

    def remove_cluster(self, name: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(ClusterRow, name)
            if row is not None:
                session.delete(row)

    # ------------------------------------------------------------------ audit

    def append_audit(self, record: OperationRecord) -> None:
        with Session(self.engine) as session, session.begin():
            if record.seq:
                seen = session.scalar(
                    select(AuditRow.id).where(AuditRow.operation_id == record.operation_id,
                                              AuditRow.run_id == record.run_id, AuditRow.seq == record.seq)
                )
                if seen is not None:
                    return  # a retried activity writing the same line again
            session.add(AuditRow(at=datetime.now(UTC), **record.model_dump()))

    def audit(self, *, cluster: str | None = None, operation_id: str | None = None) -> list[OperationRecord]:
        query = select(AuditRow).order_by(AuditRow.id)
        if cluster:
            query = query.where(AuditRow.cluster == cluster)
        if operation_id:
            query = query.where(AuditRow.operation_id == operation_id)
        with Session(self.engine) as session:
            return [
                OperationRecord(
                    operation_id=r.operation_id, operation=r.operation, cluster=r.cluster, requested_by=r.requested_by,
                    ticket=r.ticket, action=r.action, outcome=r.outcome, detail=r.detail, seq=r.seq, run_id=r.run_id,
                )
                for r in session.scalars(query)
            ]
