"""Activity names and the requests and answers of the activities against clouds and clusters.

`Activity` is the one list of names both the workflows (which call them) and the worker (which
registers them) use; the models beside it are their arguments and results.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from regatta.models.base import Model
from regatta.models.fleet import (
    CloudOperation,
    ClusterInspection,
    ClusterNetwork,
    ClusterRef,
    ClusterState,
    ManagedAddon,
    NodePool,
    TargetsByRef,
    UpgradeInsight,
    VersionChange,
)
from regatta.models.health import HealthGate
from regatta.models.readiness import ApiUsage, NodePoolRoom


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
    # one step of an upgrade in one call where the cloud and the cluster's API are reached from one
    # place (every cluster but a managed one behind a site agent: regatta/rules/sites.py)
    READ_FOR_UPGRADE = "cloud.read_for_upgrade"
    READ_API_USAGE = "kube.read_api_usage"
    READ_FOR_ROLLBACK = "cloud.read_for_rollback"
    UPGRADE = "cloud.upgrade"
    UPDATE_ADDONS = "cloud.update_addons"
    # pause, resume or stop (an abort) the rollout a controller carries out on your own hardware (Cluster API, the
    # system-upgrade-controller), by what the controller offers
    HOLD_ROLLOUT = "cloud.hold_rollout"
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
    GRANT_ACCESS = "kube.grant_access"
    HAND_OUT_ACCESS = "kube.hand_out_access"
    REVOKE_ACCESS = "kube.revoke_access"
    RECORD_ACCESS_GRANT = "inventory.record_access_grant"
    INSPECT_CLUSTER = "kube.inspect_cluster"
    CORDON_NODES = "kube.cordon_nodes"
    DRAIN_NODES = "kube.drain_nodes"
    HEALTH_GATE = "kube.health_gate"
    PLAN_WAVE = "inventory.plan_wave"
    LIST_CLUSTER_NAMES = "inventory.list_cluster_names"
    LIST_CLUSTER_SITES = "inventory.list_cluster_sites"
    SWEEP_CLUSTERS = "kube.sweep_clusters"
    CHECK_PROMETHEUS = "signals.check_prometheus"
    DELETE_PODS = "kube.delete_pods"
    RECORD_EVENT = "kube.record_event"
    RUN_SMOKE_TEST = "kube.run_smoke_test"
    READ_FLEET_CLOCK = "fleet.read_clock"
    POST_CALLBACK = "notify.post_callback"
    CALL_HOOK = "notify.call_hook"
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
    READ_TRAFFIC = "traffic.read_record"
    # the policy plane
    PLAN_POLICY = "inventory.plan_policy"
    GIVE_BUNDLE = "kube.give_bundle"
    COUNT_VIOLATIONS = "kube.count_violations"
    LIST_DRIFT_TARGETS = "inventory.list_drift_targets"
    SWEEP_DRIFT = "kube.sweep_drift"
    # placement of applications
    PLAN_MOVE = "inventory.plan_move"
    RECORD_PLACEMENT = "inventory.record_placement"
    LIST_PLACED = "inventory.list_placed"
    FIND_DISPLACED = "inventory.find_displaced"
    WITHDRAW_BUNDLE = "kube.withdraw_bundle"
    # rehearsals (regatta/inventory/rehearsal_records.py)
    ATTACH_REHEARSAL = "inventory.attach_rehearsal"
    HOLD_AGAINST_REHEARSAL = "inventory.hold_against_rehearsal"


class StartControlPlaneUpgrade(TargetsByRef, Model):
    cluster: ClusterRef
    target_version: str
    request_token: str
    force: bool = Field(default=False, description="EKS: past ERROR upgrade insights (an operator accepted them, audited)")


class StartNodePoolUpgrade(TargetsByRef, Model):
    cluster: ClusterRef
    node_pool: str
    target_version: str
    request_token: str
    node_image: str | None = Field(default=None, description="the image to roll onto; None: the cloud's newest for the version")
    launch_template_version: str | None = Field(default=None, description="EKS: the version of the node group's own launch"
                                                " template to move to (a custom AMI's only way up)")


class HoldRollout(TargetsByRef, Model):
    """Pause (hold) or resume the rollout a controller carries out for one step of an upgrade; `stop` (an abort):
    hold it and let the step end once the controller has nothing in flight."""

    cluster: ClusterRef
    node_pool: str | None = Field(default=None, description="the pool whose rollout it is; None: the control plane's")
    hold: bool
    stop: bool = False


class RunUpgrade(TargetsByRef, Model):
    """Upgrade the control plane (no `node_pool`) or one node pool: start the cloud's operation,
    wait for it while heartbeating, then (with `gate`) wait for the cluster to be healthy, and
    describe what the cloud holds afterwards. One activity instead of three."""

    cluster: ClusterRef
    target_version: str
    request_token: str
    node_pool: str | None = None
    node_image: str | None = Field(default=None, description="the image to roll onto; None: the cloud's newest for the version")
    launch_template_version: str | None = Field(default=None, description="EKS: the version of the node group's own launch"
                                                " template to move to (a custom AMI's only way up)")
    force: bool = Field(default=False, description="EKS control plane: past ERROR upgrade insights (accepted, audited)")
    drain_timeout_seconds: float | None = Field(default=None, description="a node pool's surge: how long the cloud's own"
                                                " drain waits on a budget before it fails the upgrade (AKS)")
    poll_interval_seconds: float
    timeout_seconds: float = Field(description="how long the cloud's operation may take")
    gate: HealthGate | None = Field(default=None, description="the health gate that follows, run in the same call")
    describe_after: bool = Field(default=False, description="describe the cluster once done (the upgrade's last step)")


class UpgradeStepReport(Model):
    operation: CloudOperation
    state: ClusterState | None = Field(default=None, description="with describe_after: the control plane and node pools"
                                                                  " once the step (and its gate) finished")


class UpgradeReads(Model):
    """A preflight's reads in one call: what the cloud says and what the cluster's own API says."""

    state: ClusterState
    inspection: ClusterInspection
    insights: list[UpgradeInsight] = Field(default_factory=list, description="the cloud's own upgrade readiness checks"
                                           " (EKS upgrade insights), every version they concern")
    usage: ApiUsage | None = Field(default=None, description="asked with a target that moves the control plane: the API"
                                   " versions its clients and manifests use, against the removals ahead")
    addons: list[ManagedAddon] = Field(default_factory=list, description="asked with such a target, EKS: each managed"
                                       " add-on against its catalogue for the target")
    last_change: VersionChange | None = Field(default=None, description="read for a rollback: the control plane's last"
                                              " version change, as its cloud tells it (None where it tells none)")
    rooms: list[NodePoolRoom] = Field(default_factory=list, description="asked with such a target: each pool's room for"
                                      " the nodes its cloud's surge adds (EKS subnets, a GKE Pod range)")
    rooms_unread: str | None = Field(default=None, description="why the rooms could not be read (the cloud refused the"
                                     " read), where they could not")


class ReadForReadiness(TargetsByRef, Model):
    """What an upgrade's preflight reads, with what its readiness gate needs: the cluster and the target
    (cloud.read_for_upgrade); for kube.read_api_usage (the cloud read centrally, the cluster at its
    site), the control plane's version too."""

    cluster: ClusterRef
    target_version: str
    control_plane_version: str | None = None


class CreateNodePool(TargetsByRef, Model):
    cluster: ClusterRef
    node_pool: NodePool
    request_token: str
    like: str | None = Field(default=None, description="the pool the new one is made like (a blue/green replacement):"
                             " every setting the cloud describes it with is copied, but for name, version and image")
    launch_template_version: str | None = Field(default=None, description="EKS, with `like`: the version of its launch"
                                                " template the new node group uses (a custom AMI for the target)")


class UpdateAddons(TargetsByRef, Model):
    """Move a cluster's cloud-managed add-ons to the default version of their cloud's catalogue for the
    control plane's new version, one after another, waiting for each."""

    cluster: ClusterRef
    target_version: str
    request_token: str
    poll_interval_seconds: float
    timeout_seconds: float = Field(description="how long each add-on's update may take")


class DeleteNodePool(TargetsByRef, Model):
    cluster: ClusterRef
    node_pool: str
    request_token: str


class CreateCluster(TargetsByRef, Model):
    cluster: ClusterRef
    version: str
    labels: dict[str, str] = Field(default_factory=dict)
    request_token: str
    network: ClusterNetwork = Field(default_factory=ClusterNetwork)
    first_pool: NodePool | None = Field(default=None, description="the pool the cluster is born with where its cloud"
                                        " wants one in the create request (a GKE node pool, an AKS System pool)")


class DeleteCluster(TargetsByRef, Model):
    cluster: ClusterRef
    request_token: str


class BootstrapCluster(TargetsByRef, Model):
    """Give a new cluster the baseline bundle (regatta/rules/baseline.py) before it is handed over."""

    cluster: ClusterRef
    namespaces: list[str]
    admin_group: str
    # What the baseline's substitutions and the compliance record read (the cluster is not in
    # the inventory yet: it is registered after its bootstrap).
    environment: str = "unknown"
    labels: dict[str, str] = Field(default_factory=dict)
    version: str = "1.0"


class VeleroBackup(TargetsByRef, Model):
    """Take a Velero backup of a cluster under this name (the same name again is a no-op)."""

    cluster: ClusterRef
    name: str
    timeout_seconds: float
    poll_interval_seconds: float


class WaitForOperation(TargetsByRef, Model):
    cluster: ClusterRef
    operation: CloudOperation
    poll_interval_seconds: float
    timeout_seconds: float


class CordonNodes(TargetsByRef, Model):
    cluster: ClusterRef
    nodes: list[str]
    unschedulable: bool = True


class DrainNodes(TargetsByRef, Model):
    cluster: ClusterRef
    nodes: list[str]
    timeout_seconds: float
    eviction_retry_seconds: float
    blocked_report_after_seconds: float | None = Field(default=None, description="when budgets have refused every"
                                                       " eviction left on a node this long, return a BlockedDrain so the"
                                                       " workflow can escalate; None: fail at timeout_seconds instead")
    check_nodes: list[str] = Field(default_factory=list, description="nodes checked before the first eviction for pods"
                                   " kubectl drain would refuse to lose (the whole pool on its first batch); empty: `nodes`")
    delete_unmanaged_pods: bool = Field(default=False, description="delete pods no controller will recreate (kubectl"
                                        " drain --force); without it a node holding one is refused before any eviction")
    delete_emptydir_data: bool = Field(default=False, description="evict pods with emptyDir volumes, their data lost"
                                       " (kubectl drain --delete-emptydir-data); without it such a node is refused")


class DeletePods(TargetsByRef, Model):
    """Delete (not evict) pods: what an approved drain escalation does, never silently."""

    cluster: ClusterRef
    pods: list[str] = Field(description="namespace/name")


class RecordEvent(TargetsByRef, Model):
    """A Kubernetes Event, where the owners of a workload look (kubectl describe pdb, their alerts)."""

    cluster: ClusterRef
    namespace: str
    involved_kind: str
    involved_name: str
    reason: str
    message: str
    name: str = Field(description="the Event's name: the same name twice is one Event")


class RecordClusterVersions(Model):
    cluster: str
    control_plane_version: str
    node_pools: list[NodePool]
