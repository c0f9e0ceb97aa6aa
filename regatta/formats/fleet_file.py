"""The fleet file: the clusters, node pools and workloads the simulator starts with.

Read by `regatta sim --fleet`, `regatta dev --fleet`, the tests and the benchmarks. The same
YAML is what an operator writes to describe a lab fleet, so its errors name the field to fix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from regatta.formats.yaml_lines import read_model
from regatta.models import ManagementRef, ProviderKind, fill_default_node_sizes
from regatta.rules.versions import minor_version

DEFAULT_FLEET = Path(__file__).with_name("default_fleet.yaml")
# What one simulated workload and one node pool may hold: the simulator places every pod itself, and a fleet file (or a
# twin of a cluster whose owners can write Deployments) must not make it place a million.
MAX_REPLICAS = 2000
MAX_POOL_NODES = 1000
MAX_NAMESPACES = 10_000  # a cluster's namespaces a fleet file holds
MAX_KINDS = 2_000  # and the custom resources it serves


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PdbSpec(Spec):
    min_available: int | str | None = None
    max_unavailable: int | str | None = None


class RequestsSpec(Spec):
    """What each of a workload's pods asks the scheduler for, summed over its containers, in Kubernetes quantities."""

    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="e.g. 250m or 0.5")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$", description="e.g. 512Mi")


class AllocatableSpec(RequestsSpec):
    """What the kubelet of each of a pool's nodes offers pods (status.allocatable), where the simulator's table for its
    machine type does not say or says otherwise."""

    pods: int | None = Field(default=None, ge=1, le=1000)


class WorkloadSpec(Spec):
    name: str
    namespace: str = "default"
    replicas: int = Field(ge=0, le=MAX_REPLICAS)
    pdb: PdbSpec | None = None
    # e.g. regatta.dev/dr-replicas: "4" on a standby's pre-deployed copy kept at 0 replicas
    annotations: dict[str, str] = Field(default_factory=dict)
    kind: Literal["Deployment", "StatefulSet", "Pod"] = Field(default="Deployment", description=(
        "Pod: `replicas` pods made directly (kubectl run), which no controller recreates; StatefulSet: pods named"
        " NAME-0 to NAME-(replicas-1), an evicted one made again under its own name"))
    empty_dir: bool = Field(default=False, description="its pods keep scratch data in an emptyDir volume")
    labels: dict[str, str] | None = Field(default=None, description="its pods' labels (what budgets select); None:"
                                          " app: NAME")
    requests: RequestsSpec | None = Field(default=None, description="what each pod requests (None: nothing)")
    ready_seconds: float | None = Field(default=None, ge=0, le=86400, description=(
        "how long one of its pods takes from being placed to Ready (its image pull, start and readiness probe);"
        " None: the simulator's default"))
    unready: int = Field(default=0, ge=0, description=(
        "of its pods, how many are not Ready and stay so (a crash loop, a failing probe): they count against its"
        " budgets as they do on a real cluster"))

    @model_validator(mode="after")
    def _unready_of_its_pods(self) -> WorkloadSpec:
        if self.unready > self.replicas:
            raise ValueError(f"workload {self.name}: unready {self.unready} is more than its {self.replicas} replicas")
        return self

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) if self.labels is not None else {"app": self.name}


class SelectorSpec(Spec):
    """A Kubernetes label selector as a PodDisruptionBudget carries it."""

    matchLabels: dict[str, str] = Field(default_factory=dict)
    matchExpressions: list[dict[str, Any]] = Field(default_factory=list)


class CustomResourceSpec(Spec):
    """A CustomResourceDefinition the cluster serves: what makes its kind one a bundle can be given (a twin keeps these,
    not the definitions' schemas)."""

    group: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    version: str = Field(pattern=r"^v[0-9]+((alpha|beta)[0-9]+)?$")
    kind: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,62}$")
    plural: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"


class BudgetSpec(PdbSpec):
    """A PodDisruptionBudget by its own name and selector: one that covers several workloads, or part of one."""

    name: str
    namespace: str = "default"
    selector: SelectorSpec


# How long each step takes in the simulator unless a fleet file's timings say otherwise (simulated seconds, before the
# time scale): the simulator reads them from here, and a twin's calibration scales them.
DEFAULT_STEP_SECONDS = {"control_plane_upgrade_seconds": 480.0, "node_boot_seconds": 90.0,
                        "node_terminate_seconds": 30.0, "pod_start_seconds": 5.0}


class TimingsSpec(Spec):
    """How long a cloud's steps take (simulated seconds, before the time scale), where they differ from the
    simulator's defaults: what `regatta fleet snapshot` calibrates from the operations Regatta recorded."""

    control_plane_upgrade_seconds: float | None = Field(default=None, gt=0, le=86400)
    node_boot_seconds: float | None = Field(default=None, gt=0, le=86400)
    node_terminate_seconds: float | None = Field(default=None, gt=0, le=86400)
    pod_start_seconds: float | None = Field(default=None, gt=0, le=86400)


class NodePoolSpec(Spec):
    name: str
    version: str | None = None  # defaults to the cluster's version
    node_image: str | None = None  # defaults to the cloud's newest image for the version
    nodes: int = Field(ge=0, le=MAX_POOL_NODES)
    node_size: str = Field(default="", description="the cloud's machine type; empty: the cloud's default"
                           " (DEFAULT_NODE_SIZES)")
    labels: dict[str, str] = Field(default_factory=dict)
    # Where the pool's nodes live and who they are: EKS subnets and node IAM role, an AKS subnet.
    # None: the account's first ones (see AccountsSpec).
    subnets: list[str] | None = None
    node_role: str | None = None
    taints: list[dict[str, str]] = Field(default_factory=list)
    allocatable: AllocatableSpec | None = Field(default=None, description="each node's allocatable CPU, memory and pods;"
                                                " None: the simulator's table for node_size")
    cloud: dict[str, Any] = Field(default_factory=dict, description=(
        "the pool's other settings in its cloud's own words, as its API takes them on creation: EKS CreateNodegroup"
        " members (amiType, capacityType, launchTemplate, diskSize, updateConfig, scalingConfig's minSize and maxSize),"
        " GKE NodePool fields (config.imageType, config.serviceAccount, autoscaling, locations, upgradeSettings),"
        " AKS agent pool properties (mode, osType, osSKU, availabilityZones, maxPods, upgradeSettings)"))


class InsightSpec(Spec):
    """An EKS insight the simulated cluster reports (ListInsights): about an upgrade (UPGRADE_READINESS) or a version
    rollback (ROLLBACK_READINESS) to `kubernetes_version`."""

    name: str
    category: Literal["UPGRADE_READINESS", "ROLLBACK_READINESS"] = "UPGRADE_READINESS"
    status: Literal["PASSING", "WARNING", "ERROR", "UNKNOWN"]
    kubernetes_version: str = Field(description="the minor version the insight is about, e.g. 1.31")
    description: str = ""
    reason: str = ""
    recommendation: str = ""
    resources: list[str] = Field(default_factory=list, description="kubernetesResourceUri of each object concerned")


class ClusterSpec(Spec):
    # What the clouds take as a cluster's name (EKS: letters, digits, - and _, up to 100), and dots: never a secrets
    # store's reference (`vault:...`, `arn:...`) or a path, which a Cluster API cluster's management context, a cluster
    # of the same file, would then be taken for.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", max_length=100)
    provider: ProviderKind = "eks"
    region: str
    labels: dict[str, str] = Field(default_factory=dict)
    version: str
    node_pools: list[NodePoolSpec]
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    pdbs: list[BudgetSpec] = Field(default_factory=list, description="budgets by selector, beside each workload's own")
    time_scale: float | None = None  # overrides the simulator's factor for this cluster
    # Policy engines the cluster runs from the start: their CRDs and admission controller (regatta/sim/policy_engines.py).
    policy_engines: list[Literal["kyverno", "gatekeeper"]] = Field(default_factory=list)
    namespaces: list[Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]] = Field(
        default_factory=list, max_length=MAX_NAMESPACES, description="namespaces it has beyond those its workloads and budgets"
        " are in (a bundle's objects go into namespaces that must exist)")
    custom_resources: list[CustomResourceSpec] = Field(default_factory=list, max_length=MAX_KINDS, description=(
        "the custom resources it serves beyond its policy engines' (their definitions, without their schemas)"))
    # The Velero schedule last backed the cluster up this many (wall-clock) seconds ago; None: never.
    last_backup_age_seconds: float | None = Field(default=None, ge=0)
    # The private network it sits in: only that site's agent (`regatta worker --site NAME`) holds its credentials.
    site: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
    cloud: dict[str, Any] = Field(default_factory=dict, description=(
        "the cluster's other settings in its cloud's own words: AKS managedCluster properties (aadProfile,"
        " disableLocalAccounts, identity), GKE Cluster fields (locations)"))
    insights: list[InsightSpec] = Field(default_factory=list, description="EKS: the upgrade insights it reports")
    manifests: list[dict[str, Any]] = Field(default_factory=list, max_length=50, description=(
        "objects the cluster holds from the start, each as `kubectl apply` wrote it: the apiVersion written is the one"
        " its field manager keeps, and a deprecated one counts as requested (a manifest not yet migrated)"))
    addons: dict[str, str] | None = Field(default=None, description=(
        "EKS managed add-ons and the version each runs; None: vpc-cni, coredns and kube-proxy at the default"
        " version for the cluster's minor"))
    management: ManagementRef | None = Field(default=None, description=(
        "capi only: the management cluster's kubeconfig context (in the simulator, that cluster's name in this file),"
        " and the namespace and name of the workload cluster's Cluster object there"))
    distribution: Literal["k3s", "rke2"] | None = Field(default=None, description=(
        "suc only: the Kubernetes distribution its system-upgrade-controller upgrades (k3s by default)"))
    control_plane_nodes: int = Field(default=3, ge=1, le=7, description=(
        "capi: the KubeadmControlPlane's replicas; suc: the server nodes (which run the control plane)"))

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        minor_version(value)
        return value

    @model_validator(mode="after")
    def _own_hardware(self) -> ClusterSpec:
        """Cluster API needs to know where it is managed from, and only a capi cluster is managed from there."""
        if self.provider == "capi" and self.management is None:
            raise ValueError(f"cluster {self.name}: a capi cluster names its management cluster: management: {{context:"
                             " MGMT, namespace: NS, cluster: NAME}")
        if self.provider != "capi" and self.management is not None:
            raise ValueError(f"cluster {self.name}: management is for capi clusters only, not {self.provider}")
        if self.provider != "suc" and self.distribution is not None:
            raise ValueError(f"cluster {self.name}: distribution is for suc clusters only (k3s or rke2), not {self.provider}")
        return self

    @model_validator(mode="after")
    def _node_sizes(self) -> ClusterSpec:
        fill_default_node_sizes(self.provider, self.node_pools)
        return self

    @model_validator(mode="after")
    def _pod_range(self) -> ClusterSpec:
        """A GKE cluster's Pod range (cloud.clusterIpv4Cidr) is an IPv4 block GKE could hand out: /9 to /24."""
        given = self.cloud.get("clusterIpv4Cidr")
        if given is None:
            return self
        try:
            block = ipaddress.IPv4Network(str(given), strict=False)
        except ValueError:
            raise ValueError(f"cluster {self.name}: cloud.clusterIpv4Cidr {given!r} is not an IPv4 block such as 10.4.0.0/14")\
                from None
        if not 9 <= block.prefixlen <= 24:
            raise ValueError(f"cluster {self.name}: cloud.clusterIpv4Cidr {given} must be a /9 to a /24")
        return self

    @property
    def environment(self) -> str:
        return self.labels.get("env", "unknown")


class TrafficSpec(Spec):
    """A service's record at the traffic manager: the share of its requests each cluster gets."""

    service: str
    weights: dict[str, int]


class DrPairSpec(Spec):
    primary: str
    standby: str


class EksAccountSpec(Spec):
    """The simulated AWS account: what EKS will accept when a cluster or node group is created."""

    account_id: str = "111122223333"
    subnets: list[str] = Field(default_factory=lambda: ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002",
                                                        "subnet-0a1b2c3d4e5f60003"])
    subnet_addresses: dict[str, int] = Field(default_factory=dict, description=(
        "the usable addresses of a subnet the simulator counts (a /24 has 251: AWS keeps five of each subnet); each EKS"
        " node holds 1 + its max pods there, EC2 DescribeSubnets answers what is left, and a node that finds no room in"
        " its group's subnets is not launched. A subnet not named is not counted"))
    cluster_roles: list[str] = Field(default_factory=lambda: ["arn:aws:iam::111122223333:role/eks-cluster"])
    node_roles: list[str] = Field(default_factory=lambda: ["arn:aws:iam::111122223333:role/eks-node"])
    instance_types: list[str] = Field(default_factory=lambda: [
        "m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", "m6i.large", "m6i.xlarge", "c5.xlarge", "r5.xlarge",
        "t3.small", "t3.medium", "t3.large"])
    launch_templates: list[LaunchTemplateSpec] = Field(default_factory=list)
    enforce_upgrade_insights: bool = Field(default=False, description=(
        "UpdateClusterVersion refuses (InvalidStateException) while an ERROR upgrade insight stands, unless forced:"
        " what EKS shipped on 2025-03-27 and rolled back the next day (aws/containers-roadmap#2570), off by default"))

    @model_validator(mode="after")
    def _sized_subnets(self) -> EksAccountSpec:
        unknown = sorted(set(self.subnet_addresses) - set(self.subnets))
        if unknown:
            raise ValueError(f"accounts.eks.subnet_addresses names subnets the account does not have: {', '.join(unknown)}")
        negative = sorted(subnet for subnet, count in self.subnet_addresses.items() if count < 0)
        if negative:
            raise ValueError(f"accounts.eks.subnet_addresses: a subnet has 0 addresses or more, not less: {', '.join(negative)}")
        return self


class LaunchTemplateVersionSpec(Spec):
    """One version of an EC2 launch template, as far as EKS looks into it."""

    instance_type: str | None = None
    image_id: str | None = Field(default=None, description="a custom AMI (EKS then reports amiType CUSTOM)")
    kubernetes_version: str | None = Field(default=None, description="the kubelet the custom AMI carries")


class LaunchTemplateSpec(Spec):
    """An EC2 launch template of the simulated account, which node groups may name by id or name."""

    id: str = Field(pattern=r"^lt-[0-9a-f]{8,17}$")
    name: str
    versions: dict[str, LaunchTemplateVersionSpec]
    default_version: str = "1"


class GkeAccountSpec(Spec):
    """The simulated Google Cloud project: its VPC networks and their subnetworks, and machine types."""

    project_number: str = Field(default="123456789012", pattern=r"^[0-9]{6,20}$", description=(
        "the project's number: GKE's operation links name the project by it, whatever id the request used"))
    networks: dict[str, list[str]] = Field(default_factory=lambda: {"default": ["default"], "fleet": ["fleet-nodes"]})
    machine_types: list[str] = Field(default_factory=lambda: [
        "e2-medium", "e2-standard-2", "e2-standard-4", "e2-standard-8", "n2-standard-4", "n2-standard-8", "c2-standard-8"])


class AksAccountSpec(Spec):
    """The simulated Azure subscription: the VNet subnets agent pools may join, and VM sizes."""

    subnets: list[str] = Field(default_factory=lambda: [
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/fleet/providers/Microsoft.Network"
        "/virtualNetworks/fleet-vnet/subnets/aks-nodes"])
    vm_sizes: list[str] = Field(default_factory=lambda: [
        "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_E4s_v5", "Standard_B2ms"])


class AccountsSpec(Spec):
    """What each simulated cloud account has. The clouds check a create against it, as the real ones
    check against a real account, and refuse what it lacks in their own error shape."""

    eks: EksAccountSpec = Field(default_factory=EksAccountSpec)
    gke: GkeAccountSpec = Field(default_factory=GkeAccountSpec)
    aks: AksAccountSpec = Field(default_factory=AksAccountSpec)


class FleetSpec(Spec):
    accounts: AccountsSpec = Field(default_factory=AccountsSpec)
    clusters: list[ClusterSpec]

    @model_validator(mode="after")
    def _machine_types(self) -> FleetSpec:
        """A node size the cluster's own cloud does not offer (an AWS type on GKE) is named."""
        offered = {"eks": self.accounts.eks.instance_types, "gke": self.accounts.gke.machine_types,
                   "aks": self.accounts.aks.vm_sizes}
        for cluster in self.clusters:
            for pool in cluster.node_pools:
                if cluster.provider in offered and pool.node_size not in offered[cluster.provider]:
                    raise ValueError(f"cluster {cluster.name}, node pool {pool.name}: {cluster.provider} has no machine type"
                                     f" {pool.node_size!r}; the account offers {', '.join(offered[cluster.provider])}")
        return self
    traffic: list[TrafficSpec] = Field(default_factory=list)
    dr_pairs: list[DrPairSpec] = Field(default_factory=list)
    timings: dict[ProviderKind, TimingsSpec] = Field(default_factory=dict, description=(
        "per provider, how long its steps take where they differ from the simulator's defaults"))


class FleetFileError(ValueError):
    pass


def load_fleet(path: Path | str | None = None) -> FleetSpec:
    path = Path(path) if path else DEFAULT_FLEET
    if not path.exists():
        raise FleetFileError(f"fleet file {path} does not exist")
    # every problem as FILE:LINE: field: what is wrong, with YAML's usual traps named, as wave and bundle files
    fleet, _ = read_model(path, FleetSpec, what="fleet file", shape="a mapping with clusters: [...]", error=FleetFileError)
    names = [cluster.name for cluster in fleet.clusters]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FleetFileError(f"fleet file {path}: cluster names must be unique, repeated: {', '.join(duplicates)}")
    unknown = sorted({name for pair in fleet.dr_pairs for name in (pair.primary, pair.standby)} - set(names)
                     | {name for record in fleet.traffic for name in record.weights} - set(names)
                     | {c.management.context for c in fleet.clusters if c.management is not None} - set(names))
    if unknown:
        raise FleetFileError(f"fleet file {path}: dr_pairs, traffic and management name clusters the file does not describe:"
                             f" {', '.join(unknown)}")
    return fleet


def dump_fleet(fleet: FleetSpec, *, header: Sequence[str] = ()) -> str:
    """The fleet as a fleet file (what `load_fleet` reads back to the same fleet), each `header` line a comment above."""
    import yaml

    body = yaml.safe_dump(fleet.model_dump(mode="json", exclude_defaults=True), sort_keys=False, width=120)
    # each header line one comment line, whatever it quotes (an error's own newlines, a terminal's escapes)
    said = ["".join(ch if ch.isprintable() else " " for ch in line) for line in header]
    return "".join(f"# {line}\n" for line in said) + body
