"""The fleet as Regatta sees it: clusters, node pools, nodes, PodDisruptionBudgets, what the cloud and the
cluster's own API say right now, and the cloud's long-running operations.

Used by the inventory, the cloud and Kubernetes adapters, the rules and every workflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field, field_validator

from regatta.models.base import Model, ProviderKind

# The machine type a node pool gets in each cloud when none is named.
DEFAULT_NODE_SIZES: dict[str, str] = {"eks": "m5.large", "gke": "e2-standard-4", "aks": "Standard_D4s_v5",
                                      "kubeconfig": "m5.large", "capi": "m5.large", "suc": "m5.large"}


class Sized(Protocol):
    node_size: str


def fill_default_node_sizes(provider: str, pools: Iterable[Sized]) -> None:
    """Give each pool that names no machine type its cloud's default (a fleet file's, a provision file's)."""
    for pool in pools:
        if not pool.node_size:
            pool.node_size = DEFAULT_NODE_SIZES[provider]


class NodeTaint(Model):
    key: str
    value: str = ""
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = "NO_SCHEDULE"


class LaunchTemplate(Model):
    """An EKS node group's launch template, by name or id, at a version."""

    name: str | None = None
    id: str | None = None
    version: str | None = None


class ClusterNetwork(Model):
    """Where a new cluster lives and who it acts as, per cloud: what its cloud refuses to create one
    without. EKS: the VPC subnets and the cluster and node IAM roles; GKE: the VPC network and
    subnetwork; AKS: the VNet subnet of its agent pools."""

    subnets: list[str] = Field(default_factory=list, description="EKS subnet ids, or the AKS VNet subnet's resource id")
    cluster_role: str | None = Field(default=None, description="EKS: the cluster's IAM role ARN")
    node_role: str | None = Field(default=None, description="EKS: the node groups' IAM role ARN")
    network: str | None = Field(default=None, description="GKE: the VPC network")
    subnetwork: str | None = Field(default=None, description="GKE: its subnetwork")


class NodePool(Model):
    name: str
    version: str
    node_count: int
    # The cloud's image for the pool's nodes: EKS's AMI release version (1.31.2-20261101), GKE's
    # full node version (1.31.5-gke.1200), AKS's node image version. None where there is none.
    node_image: str | None = None
    node_size: str = "m5.large"
    labels: dict[str, str] = Field(default_factory=dict)
    # Where the pool's nodes live and who they are, as the cloud describes the pool: EKS subnets and
    # node IAM role, an AKS VNet subnet; their taints; an EKS launch template. A replacement pool
    # (blue/green) is created with the same.
    subnets: list[str] = Field(default_factory=list)
    node_role: str | None = None
    taints: list[NodeTaint] = Field(default_factory=list)
    launch_template: LaunchTemplate | None = None
    image_type: str | None = Field(default=None, description="the nodes' OS image family as the cloud names it: EKS"
                                   " amiType (CUSTOM: an AMI of the pool's own launch template), GKE imageType, AKS osSKU")
    mode: str | None = Field(default=None, description="AKS: the agent pool's mode, System or User (a cluster always"
                             " keeps a System pool)")
    auto_upgrade: bool | None = Field(default=None, description="GKE: whether the pool's node auto-upgrade is on (it may"
                                      " then trail its control plane by one minor version, not two)")
    surge: int | None = Field(default=None, description="how many nodes the cloud's own upgrade of the pool adds before it"
                              " removes any, by the pool's upgrade settings: GKE maxSurge in each of its zones (a blue-green"
                              " upgrade the whole pool; 0 with maxSurge 0), EKS maxUnavailable (0 under its MINIMAL strategy;"
                              " EKS launches up to two a zone when that is more). None where not read")


class VersionChange(Model):
    """The last change of a control plane's version as its cloud tells it (EKS: the newest successful
    VersionUpdate or VersionRollback): what a version rollback is judged against."""

    kind: Literal["upgrade", "rollback"]
    version: str = Field(description="the minor it moved the control plane to")
    started_at: datetime = Field(description="when the cloud began it (EKS createdAt); the cloud's rollback window"
                                 " runs from its end, a little later")


InsightCategory = Literal["UPGRADE_READINESS", "ROLLBACK_READINESS"]


class UpgradeInsight(Model):
    """What a cloud's own upgrade readiness check says about a cluster and a target version (EKS upgrade
    insights, category UPGRADE_READINESS)."""

    name: str
    status: Literal["PASSING", "WARNING", "ERROR", "UNKNOWN"]
    kubernetes_version: str
    description: str = ""
    reason: str = ""
    recommendation: str = ""
    resources: list[str] = Field(default_factory=list)

    def line(self) -> str:
        concerning = f" ({', '.join(self.resources[:5])}{', ...' if len(self.resources) > 5 else ''})" if self.resources else ""
        return (f"{self.status} {self.name} for {self.kubernetes_version}{concerning}: {self.reason or self.description}"
                + (f" — {self.recommendation}" if self.recommendation else ""))


class ManagedAddon(Model):
    """An add-on the cloud manages on a cluster (EKS: vpc-cni, coredns, kube-proxy) and the version its
    catalogue makes the default for a Kubernetes version."""

    name: str
    version: str
    default_version: str | None = Field(description="the catalogue's default for the version asked about; None: none offered")
    compatible: bool = Field(description="whether the running version is listed as compatible with that version")


class AddonChange(Model):
    """One managed add-on moved (or left alone) after a control plane upgrade."""

    name: str
    from_version: str
    to_version: str
    status: Literal["updated", "unchanged"]


class ManagementRef(Model):
    """Where Cluster API manages a workload cluster from (provider `capi`): the management cluster's kubeconfig
    context (or a secrets store's secret holding its kubeconfig), and the namespace and name of the workload
    cluster's `Cluster` object there."""

    context: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/#+=-]*$",
                         description="the management cluster's kubeconfig context (letters, digits and . _ : @ / # + = -,"
                         " as contexts and ARNs are written), or a secrets-store reference to its kubeconfig")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    cluster: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$", description="the Cluster object's name")

    @field_validator("context")
    @classmethod
    def _no_dot_segments(cls, context: str) -> str:
        if ".." in context or "//" in context:
            raise ValueError("a context has no '..' or '//' in it")
        return context


@dataclass(frozen=True)
class Target:
    """Where the cluster or clusters a request acts on are reached: by the agent of `site` (the only worker holding
    their credentials), or by any worker (None); `provider` when the request carries the cluster's reference (a
    cluster on your own hardware has its cloud calls answered at its site too)."""

    site: str | None
    provider: str | None = None


class Targeted:
    """A request that acts on clusters, and says where they are reached (`target()`): what routing to a site's
    agent reads (workflows/pieces/calls.py), whatever the request's shape. Every activity that runs at a site takes
    one (tests/unit/test_site_routing.py)."""

    def target(self) -> Target:
        raise NotImplementedError


class TargetsByRef(Targeted):
    """A request naming its cluster by reference (`cluster: ClusterRef`): the reference says where it is reached."""

    if TYPE_CHECKING:
        cluster: ClusterRef

    def target(self) -> Target:
        return self.cluster.target()


class TargetsAtSite(Targeted):
    """A request naming its clusters by name (one, or a batch that shares one site), with the `site` they sit in."""

    if TYPE_CHECKING:
        site: str | None

    def target(self) -> Target:
        return Target(self.site)


class ClusterRef(Targeted, Model):
    """How activities reach a cluster. Carries references, never credentials (DESIGN rule 1)."""

    name: str
    provider: ProviderKind
    region: str
    credential_ref: str = "default"
    site: str | None = Field(default=None, description="the private network it sits in: its API is reached only by"
                             " that site's agent (`regatta worker --site NAME`); None: by any worker")
    management: ManagementRef | None = Field(default=None, description="capi: where Cluster API manages it from")

    def target(self) -> Target:
        return Target(self.site, self.provider)


class MaintenanceHold(Model):
    """`regatta cluster hold`: keep every wave and schedule off a cluster until a time (a launch,
    an incident, a customer demo). Not to be confused with the ClusterHold workflow, the lock an
    operation takes on a second cluster."""

    until: datetime
    reason: str
    held_by: str
    since: datetime | None = None
    evacuate: bool = Field(default=False, description="placed workloads move off the cluster while the hold lasts"
                           " (before a blue/green replacement of the cluster, say)")


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
    site: str | None = Field(default=None, description="the private network it sits in, whose agent alone reaches its API")
    management: ManagementRef | None = Field(default=None, description="capi: where Cluster API manages it from")
    updated_at: datetime | None = None
    pods_capacity: int | None = Field(default=None, description="pods its Ready nodes take, at the last sweep")
    pods_free: int | None = Field(default=None, description="pods that still fit on Ready, schedulable nodes, at the last sweep")
    hold: MaintenanceHold | None = Field(default=None, description="a hold that keeps waves off it, when one is set")
    cpu_allocatable_m: int | None = Field(default=None, description="CPU its Ready nodes offer pods (millicores), at the last sweep")
    cpu_requested_m: int | None = Field(default=None, description="CPU the pods on them request (millicores)")
    memory_allocatable_mi: int | None = Field(default=None, description="memory its Ready nodes offer pods (MiB)")
    memory_requested_mi: int | None = Field(default=None, description="memory the pods on them request (MiB)")
    unhealthy_since: datetime | None = Field(default=None, description="when the sweeps first found it not healthy, in"
                                             " the run of sweeps that still do; None while healthy")

    @property
    def cpu_free_m(self) -> int | None:
        if self.cpu_allocatable_m is None or self.cpu_requested_m is None:
            return None
        return max(0, self.cpu_allocatable_m - self.cpu_requested_m)

    @property
    def memory_free_mi(self) -> int | None:
        if self.memory_allocatable_mi is None or self.memory_requested_mi is None:
            return None
        return max(0, self.memory_allocatable_mi - self.memory_requested_mi)

    def held_at(self, at: datetime) -> MaintenanceHold | None:
        """The hold in force at `at` (a hold whose time has passed keeps nobody off)."""
        return self.hold if self.hold is not None and self.hold.until > at else None

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(
            name=self.name, provider=self.provider, region=self.region, credential_ref=self.credential_ref, site=self.site,
            management=self.management,
        )


class NodeState(Model):
    name: str
    pool: str
    version: str
    ready: bool
    unschedulable: bool
    pods: int = 0
    allocatable_pods: int = 0  # status.allocatable.pods: how many pods the kubelet takes
    cpu_allocatable_m: int = 0  # status.allocatable.cpu, millicores
    memory_allocatable_mi: int = 0  # status.allocatable.memory, MiB
    cpu_requested_m: int = 0  # what the pods bound to it request
    memory_requested_mi: int = 0


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
                  "cluster_create", "cluster_delete", "addon_update"]
    node_pool: str | None = None
    addon: str | None = None
    # stopped: a controller's rollout an abort held where it stood (Cluster API, the system-upgrade-controller)
    status: Literal["in_progress", "succeeded", "failed", "stopped"] = "in_progress"
    errors: list[str] = Field(default_factory=list)
