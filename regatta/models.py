"""The shapes Regatta passes around: clusters, node pools, nodes, operation inputs, results, progress.

Every workflow input, result, Update and Query payload is one of these pydantic models, so
the Temporal UI shows plain JSON and an operator can start or steer any workflow by typing
JSON into it. Imported by workflows, activities, the CLI and the API; imports nothing that
does I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderKind = Literal["eks", "gke", "aks", "kubeconfig"]
Strategy = Literal["surge", "blue_green"]


class Model(BaseModel):
    """Base for every payload: unknown keys are refused so a typo in the UI is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- the fleet


class NodePool(Model):
    name: str
    version: str
    node_count: int
    # The cloud's image for the pool's nodes: EKS's AMI release version (1.31.2-20261101), GKE's
    # full node version (1.31.5-gke.1200), AKS's node image version. None where there is none.
    node_image: str | None = None
    node_size: str = "m5.large"
    labels: dict[str, str] = Field(default_factory=dict)


class ClusterRef(Model):
    """How activities reach a cluster. Carries references, never credentials (DESIGN rule 1)."""

    name: str
    provider: ProviderKind
    region: str
    credential_ref: str = "default"


class MaintenanceHold(Model):
    """`regatta cluster hold`: keep every wave and schedule off a cluster until a time (a launch,
    an incident, a customer demo). Not to be confused with the ClusterHold workflow, the lock an
    operation takes on a second cluster."""

    until: datetime
    reason: str
    held_by: str
    since: datetime | None = None


class ClusterRecord(Model):
    """A cluster as the inventory knows it."""

    name: str
    provider: ProviderKind
    region: str
    environment: str
    labels: dict[str, str] = Field(default_factory=dict)
    control_plane_version: str
    node_pools: list[NodePool] = Field(default_factory=list)
    health: str = "unknown"
    credential_ref: str = "default"
    updated_at: datetime | None = None
    pods_capacity: int | None = Field(default=None, description="pods its Ready nodes take, at the last sweep")
    pods_free: int | None = Field(default=None, description="pods that still fit on Ready, schedulable nodes, at the last sweep")
    hold: MaintenanceHold | None = Field(default=None, description="a hold that keeps waves off it, when one is set")

    def held_at(self, at: datetime) -> MaintenanceHold | None:
        """The hold in force at `at` (a hold whose time has passed keeps nobody off)."""
        return self.hold if self.hold is not None and self.hold.until > at else None

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(
            name=self.name, provider=self.provider, region=self.region, credential_ref=self.credential_ref
        )


class NodeState(Model):
    name: str
    pool: str
    version: str
    ready: bool
    unschedulable: bool
    pods: int = 0
    allocatable_pods: int = 0  # status.allocatable.pods: how many pods the kubelet takes


class PdbState(Model):
    namespace: str
    name: str
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    expected_pods: int
    current_healthy: int
    disruptions_allowed: int


class ClusterState(Model):
    """What the cloud says about a cluster right now: its control plane and node pools."""

    name: str
    control_plane_version: str
    status: str
    node_pools: list[NodePool]


class ClusterInspection(Model):
    """What the cluster's own API says right now: nodes, budgets, and what is unhealthy."""

    api_ready: bool
    nodes: list[NodeState]
    pdbs: list[PdbState]
    problems: list[str] = Field(default_factory=list)


class CloudOperation(Model):
    """A long-running operation on a cloud control plane (an EKS update, a GKE operation, an ARM LRO)."""

    id: str
    cluster: str
    kind: Literal["control_plane_upgrade", "node_pool_upgrade", "node_pool_create", "node_pool_delete",
                  "cluster_create", "cluster_delete"]
    node_pool: str | None = None
    status: Literal["in_progress", "succeeded", "failed"] = "in_progress"
    errors: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- activity payloads


class Activity(StrEnum):
    """Activity names: the one list both the workflows and the worker use."""

    GET_CLUSTER = "inventory.get_cluster"
    RECORD_CLUSTER_VERSIONS = "inventory.record_cluster_versions"
    RECORD_OPERATION = "inventory.record_operation"
    DESCRIBE_CLUSTER = "cloud.describe_cluster"
    START_CONTROL_PLANE_UPGRADE = "cloud.start_control_plane_upgrade"
    START_NODE_POOL_UPGRADE = "cloud.start_node_pool_upgrade"
    CREATE_NODE_POOL = "cloud.create_node_pool"
    DELETE_NODE_POOL = "cloud.delete_node_pool"
    WAIT_FOR_OPERATION = "cloud.wait_for_operation"
    CREATE_CLUSTER = "cloud.create_cluster"
    DELETE_CLUSTER = "cloud.delete_cluster"
    BOOTSTRAP_CLUSTER = "kube.bootstrap_cluster"
    CHECK_NAME_FREE = "inventory.check_name_free"
    REGISTER_CLUSTER = "inventory.register_cluster"
    DEREGISTER_CLUSTER = "inventory.deregister_cluster"
    DEREGISTER_OWN_REGISTRATION = "inventory.deregister_own_registration"
    LIST_WORKLOADS = "kube.list_workloads"
    FINAL_BACKUP = "kube.final_backup"
    REVOKE_CREDENTIALS = "kube.revoke_credentials"
    INSPECT_CLUSTER = "kube.inspect_cluster"
    CORDON_NODES = "kube.cordon_nodes"
    DRAIN_NODES = "kube.drain_nodes"
    HEALTH_GATE = "kube.health_gate"
    PLAN_WAVE = "inventory.plan_wave"
    LIST_CLUSTER_NAMES = "inventory.list_cluster_names"
    SWEEP_CLUSTERS = "kube.sweep_clusters"
    CHECK_PROMETHEUS = "signals.check_prometheus"
    DELETE_PODS = "kube.delete_pods"
    RECORD_EVENT = "kube.record_event"
    RUN_SMOKE_TEST = "kube.run_smoke_test"
    READ_FLEET_CLOCK = "fleet.read_clock"
    POST_CALLBACK = "notify.post_callback"
    # disaster recovery
    GET_DR_PAIR = "inventory.get_dr_pair"
    RECORD_DR_SERVING = "inventory.record_dr_serving"
    INSPECT_WORKLOADS = "kube.inspect_workloads"
    LATEST_BACKUP = "kube.latest_backup"
    TAKE_BACKUP = "kube.take_backup"
    FENCE_WORKLOADS = "kube.fence_workloads"
    UNFENCE_WORKLOADS = "kube.unfence_workloads"
    RESTORE_WORKLOADS = "kube.restore_workloads"
    SET_REPLICAS = "kube.set_replicas"
    REMOVE_RESTORED = "kube.remove_restored"
    WAIT_WORKLOADS_READY = "kube.wait_workloads_ready"
    LIST_TRAFFIC = "traffic.list_records"
    SET_TRAFFIC = "traffic.set_weights"


class StartControlPlaneUpgrade(Model):
    cluster: ClusterRef
    target_version: str
    request_token: str


class StartNodePoolUpgrade(Model):
    cluster: ClusterRef
    node_pool: str
    target_version: str
    request_token: str
    node_image: str | None = Field(default=None, description="the image to roll onto; None: the cloud's newest for the version")


class CreateNodePool(Model):
    cluster: ClusterRef
    node_pool: NodePool
    request_token: str


class DeleteNodePool(Model):
    cluster: ClusterRef
    node_pool: str
    request_token: str


class CreateCluster(Model):
    cluster: ClusterRef
    version: str
    labels: dict[str, str] = Field(default_factory=dict)
    request_token: str


class DeleteCluster(Model):
    cluster: ClusterRef
    request_token: str


class BootstrapCluster(Model):
    cluster: ClusterRef
    namespaces: list[str]
    admin_group: str


class VeleroBackup(Model):
    """Take a Velero backup of a cluster under this name (the same name again is a no-op)."""

    cluster: ClusterRef
    name: str
    timeout_seconds: float
    poll_interval_seconds: float


class WaitForOperation(Model):
    cluster: ClusterRef
    operation: CloudOperation
    poll_interval_seconds: float
    timeout_seconds: float


class CordonNodes(Model):
    cluster: ClusterRef
    nodes: list[str]
    unschedulable: bool = True


class DrainNodes(Model):
    cluster: ClusterRef
    nodes: list[str]
    timeout_seconds: float
    eviction_retry_seconds: float
    blocked_report_after_seconds: float | None = Field(default=None, description="when budgets have refused every"
                                                       " eviction left on a node this long, return a BlockedDrain so the"
                                                       " workflow can escalate; None: fail at timeout_seconds instead")


class BlockedPod(Model):
    name: str = Field(description="namespace/name")
    labels: dict[str, str] = Field(default_factory=dict)


class BlockedDrain(Model):
    """A node whose last pods the PodDisruptionBudgets will not let go."""

    node: str
    pods: list[BlockedPod]
    budgets: list[str] = Field(description="namespace/name of the budgets covering them, with their live numbers")
    budget_refs: list[str] = Field(default_factory=list, description="namespace/name of those budgets")


class DrainReport(Model):
    nodes: list[str]
    pods_evicted: int
    blocked: BlockedDrain | None = None


class DeletePods(Model):
    """Delete (not evict) pods: what an approved drain escalation does, never silently."""

    cluster: ClusterRef
    pods: list[str] = Field(description="namespace/name")


class RecordEvent(Model):
    """A Kubernetes Event, where the owners of a workload look (kubectl describe pdb, their alerts)."""

    cluster: ClusterRef
    namespace: str
    involved_kind: str
    involved_name: str
    reason: str
    message: str
    name: str = Field(description="the Event's name: the same name twice is one Event")


# --------------------------------------------------------------------------- drain escalation


class DrainPolicy(Model):
    """What a drain does while PodDisruptionBudgets refuse it: keep evicting and retrying; after
    `notify_owner_after_seconds`, tell the owner (an Event on the budget, the callback URL and
    `owner_webhook`, naming the budget and the pods); after `ask_approval_after_seconds`, when
    `delete_blocking_pods` allows it, ask for an `approve` Update; only once approved, delete the
    blocking pods. Without approval the drain gives up after the upgrade's drain_timeout_seconds.

    `node_pools` and `workload_labels` say where a policy applies (both empty: everywhere);
    the first policy that matches a blocked drain is the one it follows."""

    node_pools: list[str] = Field(default_factory=list, description="node pools it applies to; empty: every pool")
    workload_labels: dict[str, str] = Field(default_factory=dict, description="applies when a blocked pod has all of"
                                            " these labels; empty: any pod")
    notify_owner_after_seconds: float = Field(default=300, ge=0)
    ask_approval_after_seconds: float = Field(default=600, ge=0)
    delete_blocking_pods: bool = Field(default=False, description="after an approval, delete the pods the budgets hold")
    approval_timeout_seconds: float = Field(default=24 * 3600, gt=0, description="how long to wait for that approval"
                                            " before the upgrade stops")
    owner_webhook: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                      description="also POST the owner an HMAC-signed note here")


class DrainEscalation(Model):
    """Where a blocked drain stands on its policy's ladder (in the upgrade's progress)."""

    node: str
    pods: list[str]
    budgets: list[str]
    step: Literal["retrying", "owner_notified", "awaiting_approval", "deleting_pods"] = "retrying"
    blocked_since: datetime = Field(description="fleet clock")
    step_since: datetime
    policy: DrainPolicy
    approved_by: str | None = None


class HealthGate(Model):
    cluster: ClusterRef
    timeout_seconds: float
    poll_interval_seconds: float
    after: str = Field(description="what just finished, named in the failure message")
    failure_type: str = "HealthGateFailed"
    min_ready_nodes: int = 0


class HealthReport(Model):
    healthy: bool
    problems: list[str] = Field(default_factory=list)


class RecordClusterVersions(Model):
    cluster: str
    control_plane_version: str
    node_pools: list[NodePool]


class OperationRecord(Model):
    """One line of the audit trail (DESIGN rule 10): who asked, why, what changed, the outcome."""

    operation_id: str
    operation: str
    cluster: str
    requested_by: str
    ticket: str | None = None
    action: str
    outcome: Literal["started", "succeeded", "failed", "aborted", "refused", "paused", "resumed", "abort_requested",
                     "approved", "skipped", "held", "released", "escalated"]
    detail: str = ""
    # Position in the run's own trail; a retried write with the same (operation_id, run_id, seq)
    # is recorded once. 0 means "not from a workflow" and is never deduplicated.
    seq: int = 0
    run_id: str = ""
    at: datetime | None = Field(default=None, description="when it was written; set by the inventory, not by the writer")


class AuditVerification(Model):
    """What `regatta audit verify` finds: the trail whole, or the first record whose chain breaks."""

    ok: bool
    records: int = Field(description="records that hold, from the first")
    broken_at: int | None = Field(default=None, description="id of the first record that breaks the chain")
    reason: str | None = None


# --------------------------------------------------------------------------- calendars and selectors

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ClusterSelector(Model):
    """Which clusters: every given field must match (an empty selector matches every cluster)."""

    labels: dict[str, str] = Field(default_factory=dict)
    environment: str | None = None
    provider: ProviderKind | None = None
    region: str | None = None
    clusters: list[str] | None = Field(default=None, description="an explicit group: these cluster names only")


class MaintenanceWindow(Model):
    """A recurring window in which the clusters it applies to may be touched."""

    name: str = ""
    applies_to: ClusterSelector = Field(default_factory=ClusterSelector)
    days: list[Weekday] = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
    duration_minutes: int = Field(ge=1, le=7 * 24 * 60)
    timezone: str = "UTC"


class Freeze(Model):
    """A period in which nothing in the fleet is touched (end of year, a product launch)."""

    name: str
    start: datetime
    end: datetime


# --------------------------------------------------------------------------- health checks beyond node readiness


class PrometheusCheck(Model):
    """A PromQL query whose value must stay below a threshold for a while (an error rate, a
    latency). `$cluster` in the URL or the query is replaced by the cluster's name."""

    url: str = Field(pattern=r"^https?://", description="Prometheus' base URL, e.g. http://prometheus.$cluster.internal:9090")
    query: str = Field(min_length=1, description="PromQL; the highest value of the series it returns is what counts")
    below: float = Field(description="every sample must be below this")
    for_seconds: float = Field(default=300, gt=0, le=24 * 3600, description="how long it must stay below")
    interval_seconds: float = Field(default=15, gt=0, le=3600, description="seconds between samples")
    no_data: Literal["fail", "pass"] = Field(default="fail", description="what a query returning no series means")


class SmokeTestCheck(Model):
    """A Job run in the cluster after each step; it must complete."""

    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    namespace: str = "default"
    timeout_seconds: float = Field(default=600, gt=0, le=6 * 3600)


class HealthCheck(Model):
    """One check of a health gate beyond node readiness: exactly one of `prometheus` or `smoke_test`."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40, description="named in every failure")
    prometheus: PrometheusCheck | None = None
    smoke_test: SmokeTestCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        if (self.prometheus is None) == (self.smoke_test is None):
            raise ValueError(f"health check {self.name!r}: give exactly one of prometheus or smoke_test")
        return self


class RunHealthCheck(Model):
    cluster: ClusterRef
    check: HealthCheck
    after: str = Field(description="what just finished, named in the failure message")
    request_token: str = Field(description="names the smoke test's Job, so a retried activity finds its own Job")


class HealthCheckResult(Model):
    name: str
    passed: bool
    value: float | None = Field(default=None, description="the highest sample (prometheus)")
    detail: str = ""


# --------------------------------------------------------------------------- ClusterUpgrade


class ClusterUpgradeInput(Model):
    """What starts a ClusterUpgrade. Only `cluster` and `target_version` are required, so the
    Temporal UI can start one with `{"cluster": "eks-prod-use1", "target_version": "1.31"}`."""

    cluster: str
    target_version: str
    strategy: Strategy = "surge"
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    node_images: dict[ProviderKind, str] = Field(
        default_factory=dict, description="roll node pools onto this node image, per cloud (e.g. {\"eks\":"
        " \"1.31.2-20261101\"}), at target_version; a pool already on it is left alone")
    override_hold: str | None = Field(default=None, max_length=500, description="go ahead although the cluster is under"
                                      " a maintenance hold, for this reason (audited); waves never set it")
    health_checks: list[HealthCheck] = Field(default_factory=list, description="checks beyond node readiness, run"
                                             " after the control plane and after each node pool; one that fails stops"
                                             " the upgrade, naming the check and its value")
    drain_policies: list[DrainPolicy] = Field(default_factory=list, description="what a drain blocked by"
                                              " PodDisruptionBudgets does, per node pool or workload label; the first"
                                              " that matches applies, else the defaults of DrainPolicy")
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list, description="work only inside these"
                                                         " (none: any time); when one closes mid-upgrade, the step in"
                                                         " flight finishes, the cluster is left consistent, and the"
                                                         " upgrade resumes at the next step when a window opens")
    freezes: list[Freeze] = Field(default_factory=list, description="periods in which no new step starts")
    # Every timeout an operator may need to tune is a named field with a default.
    max_unavailable: int = Field(default=1, ge=1, description="nodes drained at once in blue_green")
    drain_timeout_seconds: float = Field(default=900, gt=0, description="a drain the budgets block this long stops"
                                         " the upgrade, unless its policy is waiting for an approval")
    eviction_retry_seconds: float = Field(default=5, gt=0)
    drain_blocked_report_seconds: float = Field(default=60, gt=0, description="how long a drain activity retries a"
                                                " blocked eviction before the workflow looks at its escalation policy")
    poll_interval_seconds: float = Field(default=15, gt=0)
    cloud_operation_timeout_seconds: float = Field(default=3600, gt=0)
    health_gate_timeout_seconds: float = Field(default=600, gt=0)
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0)


PoolStatus = Literal["pending", "upgrading", "done", "aborted", "failed"]


class PoolProgress(Model):
    name: str
    from_version: str
    to_version: str
    strategy: Strategy
    nodes_total: int
    nodes_done: int = 0
    status: PoolStatus = "pending"
    replacement_pool: str | None = None
    from_node_image: str | None = None
    to_node_image: str | None = None


class ClusterUpgradeProgress(Model):
    """The one state object of a ClusterUpgrade, returned whole by the `progress` Query."""

    operation_id: str = ""
    cluster: str
    target_version: str
    target_node_image: str | None = None
    strategy: Strategy
    phase: Literal[
        "preflight", "control_plane", "node_pools", "awaiting_approval", "waiting_window", "recording", "succeeded",
        "aborted", "failed"
    ] = "preflight"
    window_opens: datetime | None = Field(default=None, description="while waiting_window: when the next window opens")
    step: str = "starting"
    control_plane: Literal["pending", "upgrading", "done", "skipped"] = "pending"
    pools: list[PoolProgress] = Field(default_factory=list)
    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    message: str = ""
    # Nodes this upgrade cordoned and has not yet finished draining: what an abort must hand back.
    cordoned_in_service: list[str] = Field(default_factory=list)
    drained_nodes: list[str] = Field(default_factory=list)
    health_checks: list[str] = Field(default_factory=list, description="checks beyond node readiness that passed, and"
                                     " what they saw")
    drain_escalation: DrainEscalation | None = Field(default=None, description="a drain blocked by budgets: which"
                                                     " step of its policy it is on, and since when")


class ClusterUpgradePauseInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


class ClusterUpgradeResumeInput(Model):
    requested_by: str = "temporal-ui"


class ClusterUpgradeApproveInput(Model):
    """Approve the step a blocked drain's policy waits for (deleting the pods the budgets hold)."""

    approver: str
    comment: str = ""


class ClusterUpgradeAbortInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


class ClusterUpgradeResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded", "aborted"]
    from_version: str
    target_version: str
    control_plane_version: str
    pools: list[PoolProgress]
    message: str


# --------------------------------------------------------------------------- ProvisionCluster


class NodePoolRequest(Model):
    name: str
    node_count: int
    node_size: str = "m5.large"
    labels: dict[str, str] = Field(default_factory=dict)


class ProvisionClusterInput(Model):
    """What `regatta provision --file cluster.yaml` sends, and what the Temporal UI accepts."""

    name: str
    provider: ProviderKind = "eks"
    region: str
    version: str
    environment: str
    labels: dict[str, str] = Field(default_factory=dict)
    node_pools: list[NodePoolRequest]
    credential_ref: str = "default"
    namespaces: list[str] = Field(default_factory=lambda: ["platform", "monitoring"])
    admin_group: str = "platform-sre"
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    poll_interval_seconds: float = Field(default=15, gt=0)
    cloud_operation_timeout_seconds: float = Field(default=3600, gt=0)
    ready_timeout_seconds: float = Field(default=900, gt=0)
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0)

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(name=self.name, provider=self.provider, region=self.region, credential_ref=self.credential_ref)


class ProvisionClusterProgress(Model):
    operation_id: str = ""
    cluster: str
    phase: Literal["validating", "creating", "bootstrapping", "registering", "compensating", "succeeded", "failed"] = "validating"
    step: str = "starting"
    # What exists because of this operation, in creation order: "cluster", "node_pool:<name>",
    # "inventory". A failure deletes these in reverse (the saga's compensations).
    created: list[str] = Field(default_factory=list)
    bootstrapped: list[str] = Field(default_factory=list)
    message: str = ""


class ProvisionClusterResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded"]
    created: list[str]
    bootstrapped: list[str]
    message: str


# --------------------------------------------------------------------------- DecommissionCluster


class DecommissionClusterInput(Model):
    cluster: str
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    force_empty: bool = Field(default=False, description="delete even though non-system workloads still run")
    force_reason: str | None = None
    approval_timeout_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    poll_interval_seconds: float = Field(default=15, gt=0)
    cloud_operation_timeout_seconds: float = Field(default=3600, gt=0)
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0)


class DecommissionClusterApproveInput(Model):
    approver: str
    comment: str = ""


class DecommissionClusterAbortInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


class DecommissionClusterProgress(Model):
    operation_id: str = ""
    cluster: str
    phase: Literal["checking", "awaiting_approval", "cordoning", "backing_up", "deleting", "deregistering",
                   "succeeded", "aborted", "failed"] = "checking"
    step: str = "starting"
    workloads: list[str] = Field(default_factory=list)
    approved_by: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    cordoned: list[str] = Field(default_factory=list)
    backup: str | None = None
    deleted: list[str] = Field(default_factory=list)
    message: str = ""


class DecommissionClusterResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded", "aborted"]
    approved_by: str | None
    backup: str | None
    deleted: list[str]
    message: str


# --------------------------------------------------------------------------- disaster recovery


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


class LatestBackup(Model):
    cluster: ClusterRef = Field(description="the cluster whose Velero reads the shared bucket")
    source: str = Field(description="the cluster whose backups are wanted")


class FenceWorkloads(Model):
    cluster: ClusterRef
    only: list[str] | None = Field(default=None, description="these namespace/name only; None: every non-system Deployment")
    reach_timeout_seconds: float = 60


class FenceReport(Model):
    reachable: bool
    fenced: dict[str, int] = Field(default_factory=dict, description="namespace/name → replicas it ran with")
    error: str = ""


class RestoreWorkloads(Model):
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


class SetReplicas(Model):
    cluster: ClusterRef
    replicas: dict[str, int]
    clear_fence: bool = Field(default=False, description="drop the fenced-replicas note as well")


class RemoveRestored(Model):
    """Delete what Velero restores created: whole namespaces, and Deployments restored into namespaces that existed."""

    cluster: ClusterRef
    namespaces: list[str] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)


class WaitWorkloadsReady(Model):
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


class DRRequest(Model):
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
    fence_timeout_seconds: float = Field(default=120, gt=0, description="how long to try reaching a cluster to fence it")
    restore_timeout_seconds: float = Field(default=1800, gt=0)
    ready_timeout_seconds: float = Field(default=900, gt=0)
    approval_timeout_seconds: float = Field(default=4 * 3600, gt=0)
    poll_interval_seconds: float = Field(default=10, gt=0)
    activity_heartbeat_timeout_seconds: float = Field(default=60, gt=0)


class DRFailoverInput(DRRequest):
    """What `regatta failover PRIMARY --to STANDBY` sends; from the Temporal UI:
    `{"cluster": "eks-prod-use1", "standby": "eks-dr-usw2", "ticket": "INC-1"}`."""

    standby: str
    drill: bool = Field(default=False, description="restore into drill namespaces and measure; no fencing, no traffic shift")


class DRFailbackInput(DRRequest):
    """Return service to the original primary: `{"cluster": "eks-prod-use1", "ticket": "CHG-9"}`."""


class DRApproveInput(Model):
    approver: str
    comment: str = ""


class DRAbortInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


DrPhase = Literal["checking", "awaiting_approval", "backing_up", "fencing", "restoring", "verifying", "shifting_traffic",
                  "returning_standby", "recording", "cleaning_up", "succeeded", "aborted", "failed"]


class DRProgress(Model):
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


# --------------------------------------------------------------------------- ClusterHold


class ClusterHoldInput(Model):
    """Started by an operation that changes a second cluster (a failover's standby) under that
    cluster's operation id, so nothing else runs there until the operation releases it."""

    cluster: str
    held_by: str = Field(description="the operation id that holds it")
    operation: str
    ticket: str | None = None
    requested_by: str = "temporal-ui"


class ClusterHoldProgress(Model):
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


# --------------------------------------------------------------------------- PatchWave

class WaveStage(Model):
    name: str = Field(min_length=1, max_length=60)
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    concurrency: int = Field(default=1, ge=1, le=200, description="clusters upgraded at once in this stage")
    soak_seconds: float = Field(default=0, ge=0, description="wait after the stage before the next one starts")
    approval_required: bool = Field(default=False, description="wait for an approve Update before the stage starts")
    health_checks: list[HealthCheck] = Field(default_factory=list, description="added to the health gates of every"
                                             " cluster in this stage (Prometheus queries, smoke tests)")


class PatchWaveInput(Model):
    """What `regatta wave start --file wave.yaml` sends; the same JSON starts it from the Temporal UI."""

    name: str = Field(min_length=1, max_length=80)
    target_version: str
    node_images: dict[ProviderKind, str] = Field(default_factory=dict, description="also roll node pools onto these"
                                                 " node images, per cloud; a cluster on them and the version is at target")
    strategy: Strategy = "surge"
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    stages: list[WaveStage] = Field(min_length=1)
    failure_budget: int | str = Field(default=0, description="failed clusters that halt the wave: a count, or a share like '10%'")
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list, description="none: any time")
    freezes: list[Freeze] = Field(default_factory=list)
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    # Tuning handed to every cluster's ClusterUpgrade (field name → value), e.g. {"drain_timeout_seconds": 1800}.
    upgrade_settings: dict[str, float] = Field(default_factory=dict)
    drain_policies: list[DrainPolicy] = Field(default_factory=list, description="handed to every cluster's upgrade:"
                                              " what a drain blocked by PodDisruptionBudgets does")
    estimated_upgrade_minutes: float = Field(default=45, gt=0, le=7 * 24 * 60, description="what the forecast expects"
                                             " one cluster's upgrade to take until the wave has timed its own")
    start_only_outside_freezes: bool = Field(default=False, description="end at once, saying so, when started during a"
                                             " freeze (what a schedule sets)")
    continue_as_new_after_events: int = Field(default=4000, ge=200, le=40000, description="history events after which"
                                              " the wave carries its state into a fresh run, so no history grows with"
                                              " the size of the fleet")
    carried: PatchWaveProgress | None = Field(default=None, description="set by the wave itself when it continues as"
                                              " new; leave it out")


WaveClusterStatus = Literal["pending", "waiting_window", "held", "upgrading", "succeeded", "failed", "skipped",
                           "at_target", "aborted"]


class WaveClusterState(Model):
    name: str
    status: WaveClusterStatus = "pending"
    earliest_start: datetime | None = Field(default=None, description="when its maintenance window next lets it start")
    windows: list[int] = Field(default_factory=list, description="indexes of the wave's maintenance windows that apply")
    detail: str = ""


class WaveStageState(Model):
    name: str
    concurrency: int
    soak_seconds: float
    approval_required: bool
    status: Literal["pending", "awaiting_approval", "running", "soaking", "done", "halted"] = "pending"
    approved_by: str | None = None
    soak_ends: datetime | None = Field(default=None, description="while soaking: when the next stage may start")
    clusters: list[WaveClusterState] = Field(default_factory=list)


class WavePlan(Model):
    """Which clusters go in which stage and when they can first start: what `--plan-only` prints
    and what the workflow runs."""

    wave: str
    target_version: str
    node_images: dict[str, str] = Field(default_factory=dict)
    planned_at: datetime
    failure_budget: int = Field(description="failed clusters the wave tolerates; one more halts it")
    stages: list[WaveStageState]
    unstaged: list[str] = Field(default_factory=list, description="selected by the wave but by no stage: not touched")
    unstaged_reasons: dict[str, str] = Field(default_factory=dict, description="why no stage takes each unstaged"
                                             " cluster: what each stage's selector needs that it lacks")


class PlanWave(Model):
    wave: PatchWaveInput
    now: datetime


class ClusterForecast(Model):
    """When the wave will first touch one cluster, and what decides it."""

    cluster: str
    stage: str | None = Field(description="None: the wave selects it but no stage takes it")
    status: str
    earliest_touch: datetime | None = Field(description="None: it will not be touched (done, skipped, in no stage, or"
                                            " no window opens within a year)")
    expected_done: datetime | None = None
    because: str


class WaveForecast(Model):
    """`regatta wave plan` and the PatchWave `forecast` Query: the answer to "when will my cluster
    be upgraded?", given stages, soak, concurrency, windows, freezes and holds."""

    wave: str
    forecast_at: datetime
    upgrade_minutes: float = Field(description="what one cluster's upgrade is expected to take (the wave's own mean"
                                   " once it has timed some, else estimated_upgrade_minutes)")
    assumes: list[str] = Field(default_factory=list, description="what the forecast takes for granted")
    clusters: list[ClusterForecast]


class CallbackNote(Model):
    """What an operation's callback URL is POSTed when its phase changes (signed by the activity,
    whose secret never enters history)."""

    url: str
    operation_id: str
    workflow_type: str
    cluster: str
    ticket: str | None = None
    phase: str
    step: str
    sequence: int = Field(description="1, 2, 3... per run: a receiver can tell a missing note from a late one")
    at: datetime


class FleetTime(Model):
    """A reading of the fleet's calendar clock (regatta/fleet_clock.py)."""

    now: datetime
    recheck_seconds: float | None = Field(default=None, description="None: the wall clock, which Temporal's timers"
                                          " follow; else a clock that may jump (the simulator's), to be read again"
                                          " this often while anything waits on it")


class PatchWaveProgress(Model):
    """The one state object of a PatchWave, returned whole by the `progress` Query."""

    operation_id: str = ""
    wave: str
    target_version: str
    node_images: dict[str, str] = Field(default_factory=dict)
    phase: Literal["planning", "awaiting_approval", "running", "soaking", "succeeded", "halted", "aborted", "not_started",
                   "failed"] = "planning"
    step: str = "starting"
    stage: str | None = Field(default=None, description="the stage in progress")
    stages: list[WaveStageState] = Field(default_factory=list)
    unstaged: list[str] = Field(default_factory=list)
    unstaged_reasons: dict[str, str] = Field(default_factory=dict)
    joined_later: list[str] = Field(default_factory=list, description="clusters the selector takes now that were not"
                                    " in the fleet when the wave planned: not in this wave (set when it ends)")
    failure_budget: int = 0
    failed: int = 0
    started: dict[str, datetime] = Field(default_factory=dict, description="upgrades in flight → when they started"
                                         " (the fleet's clock)")
    finished_upgrades: int = Field(default=0, description="upgrades this wave saw end, for the forecast's estimate")
    finished_upgrade_seconds: float = 0
    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    halted_reason: str | None = None
    message: str = ""


class PatchWaveApproveInput(Model):
    approver: str
    stage: str | None = Field(default=None, description="the stage approved; checked against the one waiting")
    comment: str = ""


class PatchWavePauseInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


class PatchWaveResumeInput(Model):
    requested_by: str = "temporal-ui"


class PatchWaveAbortInput(Model):
    reason: str = ""
    requested_by: str = "temporal-ui"


class PatchWaveSkipInput(Model):
    cluster: str
    reason: str = ""
    requested_by: str = "temporal-ui"


class PatchWaveRetryInput(Model):
    cluster: str
    requested_by: str = "temporal-ui"


class PatchWaveResult(Model):
    operation_id: str
    wave: str
    target_version: str
    outcome: Literal["succeeded", "halted", "aborted", "not_started"]
    counts: dict[str, int] = Field(description="clusters by final status")
    failed: dict[str, str] = Field(default_factory=dict, description="cluster → why its upgrade stopped")
    joined_later: list[str] = Field(default_factory=list, description="selected now, but not in the fleet when the"
                                    " wave planned: not in this wave")
    message: str


PatchWaveInput.model_rebuild()


# --------------------------------------------------------------------------- FleetSweep


class FleetSweepInput(Model):
    """What a scheduled FleetSweep runs with; `{}` sweeps the whole fleet."""

    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    batch_size: int = Field(default=100, ge=1, le=1000, description="clusters read by one activity")


class FleetSweepProgress(Model):
    operation_id: str = ""
    phase: Literal["listing", "sweeping", "succeeded"] = "listing"
    step: str = "starting"
    total: int = 0
    swept: int = 0
    health: dict[str, int] = Field(default_factory=dict, description="healthy / degraded / unreachable → clusters")


class FleetSweepResult(Model):
    operation_id: str
    total: int
    health: dict[str, int]
    message: str


# --------------------------------------------------------------------------- the HTTP API


class ApiToken(Model):
    """An API token as the inventory keeps it (its hash; never the token)."""

    name: str
    role: Literal["viewer", "operator", "approver", "admin"]
    environments: list[str] = Field(description="environments it may act on; '*' for every one")
    created_at: datetime
    revoked_at: datetime | None = None


class ApiTicket(Model):
    """A change ticket the API started an operation for."""

    ticket: str
    kind: str
    operation_id: str
    request_digest: str
    token: str
    created_at: datetime
