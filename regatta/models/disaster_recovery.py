"""Disaster recovery: DR pairs, workloads and backups as failover sees them, traffic records, and the
inputs, progress and results of DRFailover and DRFailback, plus the ClusterHold lock a failover
takes on its standby.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model
from regatta.models.fleet import ClusterRef, TargetsByRef
from regatta.models.operations import Reported
from regatta.models.timings import RecoveryTimings


class DrPair(Model):
    """A primary and its standby, as declared in the inventory, and which of them serves now."""

    primary: str
    standby: str
    serving: Literal["primary", "standby"] = "primary"
    last_operation: str | None = None
    updated_at: datetime | None = None


class RecordDrServing(Model):
    primary: str
    serving: Literal["primary", "standby"]
    operation_id: str


class WorkloadState(Model):
    """One Deployment as disaster recovery needs to see it."""

    replicas: int
    ready: int
    dr_replicas: int | None = Field(default=None, description="a standby's pre-deployed copy: replicas to run on failover")
    fenced_replicas: int | None = Field(default=None, description="replicas it ran with before Regatta fenced it")
    restored_by: str | None = Field(default=None, description="the Velero restore that created it")


class WorkloadInventory(Model):
    """Every Deployment outside the platform's namespaces ("namespace/name" → state), and the
    namespaces a Velero restore created."""

    deployments: dict[str, WorkloadState] = Field(default_factory=dict)
    restored_namespaces: list[str] = Field(default_factory=list)


class BackupInfo(Model):
    name: str
    cluster: str
    completed_at: datetime
    replicas: dict[str, int] = Field(default_factory=dict, description="what each Deployment ran with when it was taken")


class LatestBackup(TargetsByRef, Model):
    cluster: ClusterRef = Field(description="the cluster whose Velero reads the shared bucket")
    source: str = Field(description="the cluster whose backups are wanted")


class FenceWorkloads(TargetsByRef, Model):
    cluster: ClusterRef
    only: list[str] | None = Field(default=None, description="these namespace/name only; None: every non-system Deployment")
    reach_timeout_seconds: float = 60


class FenceReport(Model):
    reachable: bool
    fenced: dict[str, int] = Field(default_factory=dict, description="namespace/name → replicas it ran with")
    error: str = ""


class RestoreWorkloads(TargetsByRef, Model):
    cluster: ClusterRef
    backup: str
    restore_name: str
    namespace_mapping: dict[str, str] = Field(default_factory=dict)
    included_namespaces: list[str] | None = Field(default=None, description="None: every namespace in the backup")
    timeout_seconds: float
    poll_interval_seconds: float


class RestoreReport(Model):
    restore: str
    deployments: list[str]
    namespaces: list[str]


class SetReplicas(TargetsByRef, Model):
    cluster: ClusterRef
    replicas: dict[str, int]
    clear_fence: bool = Field(default=False, description="drop the fenced-replicas note as well")


class RemoveRestored(TargetsByRef, Model):
    """Delete what Velero restores created: whole namespaces, and Deployments restored into namespaces that existed."""

    cluster: ClusterRef
    namespaces: list[str] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)


class WaitWorkloadsReady(TargetsByRef, Model):
    cluster: ClusterRef
    deployments: list[str]
    timeout_seconds: float
    poll_interval_seconds: float


class TrafficRecord(Model):
    service: str
    weights: dict[str, int]


class SetTraffic(Model):
    service: str
    weights: dict[str, int]
    change_id: str = Field(description="the same id again changes nothing: a retried shift never shifts twice")


class DRRequest(RecoveryTimings):
    """What failover and failback both take: who asks and why, the gates, and every timeout."""

    cluster: str = Field(description="the primary: whose service moves away (failover) or home (failback)")
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    require_approval: bool = Field(default=False, description="wait for a second person before fencing even where the"
                                   " environment does not require it")
    override_capacity: str | None = Field(default=None, description="reason to go ahead although the side that takes"
                                          " over looks too small")


class DRFailoverInput(DRRequest):
    """What `regatta failover PRIMARY --to STANDBY` sends; from the Temporal UI:
    `{"cluster": "eks-prod-use1", "standby": "eks-dr-usw2", "ticket": "INC-1"}`."""

    standby: str
    drill: bool = Field(default=False, description="restore into drill namespaces and measure; no fencing, no traffic shift")


class DRFailbackInput(DRRequest):
    """Return service to the original primary: `{"cluster": "eks-prod-use1", "ticket": "CHG-9"}`."""


DrPhase = Literal["checking", "awaiting_approval", "backing_up", "fencing", "restoring", "verifying", "shifting_traffic",
                  "returning_standby", "recording", "cleaning_up", "succeeded", "aborted", "failed"]


class DRProgress(Reported):
    """The one state object of DRFailover and DRFailback, returned whole by the `progress` Query."""

    operation_id: str = ""
    operation: Literal["DRFailover", "DRFailback"] = "DRFailover"
    cluster: str
    source: str = Field(description="the cluster service moves away from")
    target: str = Field(description="the cluster service moves to")
    drill: bool = False
    phase: DrPhase = "checking"
    step: str = "starting"
    started_at: datetime | None = None
    approval_required: bool = False
    approved_by: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    backup: BackupInfo | None = None
    fencing: str = Field(default="pending", description="pending | fenced N deployments | skipped: why | not in a drill")
    fenced: dict[str, int] = Field(default_factory=dict)
    fenced_at: datetime | None = Field(default=None, description="when writes stopped on the side service left")
    restored: list[str] = Field(default_factory=list)
    scaled: dict[str, int] = Field(default_factory=dict)
    traffic: dict[str, dict[str, int]] = Field(default_factory=dict, description="service → weights after the shift")
    verified_at: datetime | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    message: str = ""


class DRResult(Model):
    operation_id: str
    operation: Literal["DRFailover", "DRFailback"]
    cluster: str
    source: str
    target: str
    outcome: Literal["succeeded", "aborted"]
    drill: bool
    rto_seconds: float | None
    rpo_seconds: float | None
    backup: str | None
    fencing: str
    restored: list[str]
    scaled: dict[str, int]
    traffic: dict[str, dict[str, int]]
    approved_by: str | None
    message: str


class ClusterHoldInput(Model):
    """Started by an operation that changes a second cluster (a failover's standby) under that
    cluster's operation id, so nothing else runs there until the operation releases it."""

    cluster: str
    held_by: str = Field(description="the operation id that holds it")
    operation: str
    ticket: str | None = None
    requested_by: str = "temporal-ui"


class ClusterHoldProgress(Reported):
    operation_id: str = ""
    cluster: str
    held_by: str
    operation: str
    phase: Literal["holding", "released"] = "holding"
    step: str = "holding"


class ClusterHoldResult(Model):
    cluster: str
    held_by: str
    outcome: Literal["released"] = "released"
