"""The inventory's tables, as SQLAlchemy 2 declarative models. The migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from regatta.rules.audit_chain import CHAINED_FIELDS


class Base(DeclarativeBase):
    pass


class ClusterRow(Base):
    __tablename__ = "clusters"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(50))
    environment: Mapped[str] = mapped_column(String(50), index=True)
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    control_plane_version: Mapped[str] = mapped_column(String(20))
    node_pools: Mapped[list] = mapped_column(JSON, default=list)
    health: Mapped[str] = mapped_column(String(200), default="unknown")
    credential_ref: Mapped[str] = mapped_column(String(200), default="default")
    site: Mapped[str | None] = mapped_column(String(40), nullable=True, default=None)
    # capi: where Cluster API manages it from (ManagementRef as JSON); null for every other provider
    management: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pods_capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pods_free: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_allocatable_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_requested_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_allocatable_mi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_requested_mi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # When the sweeps first found it not healthy, in the run of sweeps that still do (the damping of re-placement).
    unhealthy_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MaintenanceHoldRow(Base):
    """`regatta cluster hold`: waves and schedules leave the cluster alone until `until`."""

    __tablename__ = "maintenance_holds"

    cluster: Mapped[str] = mapped_column(String(100), primary_key=True)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    held_by: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evacuate: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    operation_id: Mapped[str] = mapped_column(String(200), index=True)
    operation: Mapped[str] = mapped_column(String(50))
    cluster: Mapped[str] = mapped_column(String(100), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    ticket: Mapped[str | None] = mapped_column(String(100), nullable=True)
    action: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text, default="")
    seq: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str] = mapped_column(String(64), default="")
    # The hash chain (regatta/rules/audit_chain.py): the record before this one's hash, and this one's.
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The audit key the hash is an HMAC under (its id); None: a plain SHA-256, written without a key.
    key_id: Mapped[str | None] = mapped_column(String(12), nullable=True)

    def chained_fields(self) -> dict:
        return {name: getattr(self, name) for name in CHAINED_FIELDS}


class AuditChainHead(Base):
    """One row: the last record of the audit chain, so removing records at the end shows too."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class DrPairRow(Base):
    __tablename__ = "dr_pairs"

    primary: Mapped[str] = mapped_column(String(100), primary_key=True)
    standby: Mapped[str] = mapped_column(String(100), unique=True)
    serving: Mapped[str] = mapped_column(String(20), default="primary")
    last_operation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is kept; the token itself is shown once, when created."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    environments: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiTicketRow(Base):
    """A change ticket the API started an operation for: the same ticket again gets the same operation."""

    __tablename__ = "api_tickets"

    ticket: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    operation_id: Mapped[str] = mapped_column(String(200))
    request_digest: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """An inbound webhook already acted on (by its signature), kept for the timestamp window."""

    __tablename__ = "webhook_deliveries"

    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BundleRevisionRow(Base):
    """A bundle's content at one revision, as a rollout planned it (last at `planned_at`): what
    rollback re-applies and what a drift sweep compares the clusters against."""

    __tablename__ = "bundle_revisions"

    bundle: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    planned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ComplianceFields:
    """What a compliance record says, now and in each line of its history."""

    state: Mapped[str] = mapped_column(String(20))
    revision: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(20), nullable=True)
    violations: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ComplianceRow(ComplianceFields, Base):
    """Where one cluster stands with one bundle, now."""

    __tablename__ = "compliance"

    cluster: Mapped[str] = mapped_column(String(100), primary_key=True)
    bundle: Mapped[str] = mapped_column(String(100), primary_key=True)


class ComplianceHistoryRow(ComplianceFields, Base):
    """Every change of a cluster × bundle's compliance, never truncated."""

    __tablename__ = "compliance_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster: Mapped[str] = mapped_column(String(100), index=True)
    bundle: Mapped[str] = mapped_column(String(100), index=True)


class DriftRow(Base):
    """A drift the last sweep of a cluster × bundle found (the sweep replaces them: what is listed is live)."""

    __tablename__ = "drifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster: Mapped[str] = mapped_column(String(100), index=True)
    bundle: Mapped[str] = mapped_column(String(100), index=True)
    drift: Mapped[dict] = mapped_column(JSON)
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DriftSuppressionRow(Base):
    __tablename__ = "drift_suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster: Mapped[str] = mapped_column(String(100), index=True)
    bundle: Mapped[str] = mapped_column(String(100))
    suppression: Mapped[dict] = mapped_column(JSON)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlacementRow(Base):
    """Where an application runs now: the placement last decided (by a rollout or a move), whole."""

    __tablename__ = "placements"

    app: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[str] = mapped_column(String(64))
    decision: Mapped[dict] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operation_id: Mapped[str] = mapped_column(String(200))


class WebSessionRow(Base):
    """A fleet-view sign-in: the session cookie's SHA-256, whose token it stands for, its CSRF secret."""

    __tablename__ = "web_sessions"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_name: Mapped[str] = mapped_column(String(100), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A person signed in through the identity provider: what the sign-in gave them (token_name is their name).
    signed_in_with: Mapped[str | None] = mapped_column(String(300), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    environments: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    group_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class CloudRequestSlotRow(Base):
    """The last slot taken on one cloud account's shared request schedule (regatta/rules/rate_limits.py):
    every worker's next request to that account goes one interval after it."""

    __tablename__ = "cloud_request_slots"

    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_slot: Mapped[float] = mapped_column(nullable=False)


class ReadinessRow(Base):
    """A cluster's last readiness read for its next minor version (the fleet sweep's): what the fleet view,
    `GET /v1/readiness` and the metrics show without reaching the cluster."""

    __tablename__ = "readiness_reports"

    cluster: Mapped[str] = mapped_column(String(100), primary_key=True)
    target_version: Mapped[str] = mapped_column(String(20))
    blocking: Mapped[int] = mapped_column(Integer)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict] = mapped_column(JSON)


class AccessGrantRow(Base):
    """A person's time-bound access to a cluster (workflows/access_grant.py writes it at each change): what
    `regatta access list` and the fleet view show, past grants included."""

    __tablename__ = "access_grants"

    grant_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(100), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    person: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    ticket: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phase: Mapped[str] = mapped_column(String(30))
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    handed_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class RehearsalRow(Base):
    """A wave or an upgrade rehearsed on a twin (regatta/rehearsal.py), and how it held against the real run once that
    ran (`accuracy`): what `regatta rehearsal list|show`, `GET /v1/rehearsals` and the fleet view show."""

    __tablename__ = "rehearsals"

    rehearsal_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    rehearsed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    clusters: Mapped[list[str]] = mapped_column(JSON)
    report: Mapped[Any] = mapped_column(JSON)
    accuracy: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    # the real wave it was attached to when that started (PatchWave asks for its rehearsal), and when
    operation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def utc(at: datetime | None) -> datetime | None:
    """A time read back from a column: SQLite hands timezone-aware columns back naive; they were written in UTC."""
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
