"""`regatta fleet snapshot`: a twin of the real fleet, read through the same cloud adapters and cluster clients the
workers use, written as a fleet file the simulator loads (`regatta sim --fleet twin.yaml`) so an operation can be
rehearsed on it. For each cluster: its versions, node pools (machine type, labels, taints, count, what each node offers
pods), the workloads a drain meets (Deployments, StatefulSets, pods no controller makes again: replicas, pod labels,
requests, how long a pod takes to be Ready), every PodDisruptionBudget, its namespaces' names and the custom resources it
serves (a bundle's objects need both). Each cloud's step times are calibrated from
the upgrades the audit trail recorded. Nothing else is read: no Secret, no ConfigMap, no object's contents beyond those
fields. Clusters are read eight at a time; one that cannot be read is left out and named, not the end of the snapshot.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from regatta.clouds.kubeconfig import POOL_LABELS
from regatta.formats.fleet_file import (
    DEFAULT_STEP_SECONDS,
    MAX_KINDS,
    MAX_NAMESPACES,
    MAX_POOL_NODES,
    MAX_REPLICAS,
    AccountsSpec,
    AllocatableSpec,
    BudgetSpec,
    ClusterSpec,
    CustomResourceSpec,
    FleetSpec,
    NodePoolSpec,
    RequestsSpec,
    SelectorSpec,
    TimingsSpec,
    WorkloadSpec,
)
from regatta.kube import health
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRecord, NodePool
from regatta.models.operations import WorkflowName
from regatta.models.twin import Calibration, TwinLeftOut
from regatta.rules import twins, versions
from regatta.rules.own_hardware import CONTROLLER_DRIVEN, OWN_HARDWARE

# Only these are listed from each cluster's API server (the test of the snapshot holds it to them).
READ_PATHS = ("/api/v1/nodes", "/api/v1/pods", "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets",
              "/apis/policy/v1/poddisruptionbudgets", "/api/v1/namespaces",
              "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


@dataclass
class Twin:
    fleet: FleetSpec
    taken_at: datetime
    left_out: list[TwinLeftOut] = field(default_factory=list)
    calibrations: list[Calibration] = field(default_factory=list)


def _pool_spec(pool: NodePool, nodes: list, sizes: dict[str, str]) -> NodePoolSpec:
    """The pool as the fleet file writes it. Its machine type is the cloud's; on your own hardware, where the pool is a
    controller's (a MachineDeployment names its infrastructure template), the one its nodes' kubelets report."""
    mine = [n for n in nodes if n.pool == pool.name]
    allocatable = None
    if mine:  # what most of its nodes offer pods
        cpu, memory, pods = Counter((n.cpu_allocatable_m, n.memory_allocatable_mi, n.allocatable_pods) for n in mine
                                    ).most_common(1)[0][0]
        allocatable = AllocatableSpec(cpu=f"{cpu}m" if cpu else None, memory=f"{memory}Mi" if memory else None,
                                      pods=pods or None)
    return NodePoolSpec(
        name=pool.name, version=pool.version, node_image=pool.node_image, nodes=pool.node_count,
        node_size=sizes.get(pool.name, pool.node_size),
        labels=dict(pool.labels), subnets=list(pool.subnets) or None, node_role=pool.node_role,
        taints=[{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints], allocatable=allocatable)


def _namespaces_and_kinds(api, cluster: str, found: list, budgets: list, left_out: list[TwinLeftOut],
                          ) -> tuple[list[str], list[CustomResourceSpec]]:
    """Its namespaces' names (beyond those its workloads and budgets are in) and the custom resources it serves, as
    many as a fleet file holds; what could not be read or kept is said, not the end of the cluster's snapshot."""
    implied = {w.namespace for w in found} | {b.namespace for b in budgets} | {"default", "kube-system"}
    namespaces: list[str] = []
    kinds: list[CustomResourceSpec] = []
    try:
        namespaces = sorted({name for item in health.list_items(api, "/api/v1/namespaces")
                             if (name := (item.get("metadata") or {}).get("name")) and name not in implied})
        served = twins.custom_resources(
            health.list_items(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", served=False))
    except Exception as error:  # the client's ApiException (only regatta.kube imports the client): its status says
        if getattr(error, "status", None) not in (401, 403):
            raise
        left_out.append(TwinLeftOut(cluster=cluster, what="its namespaces and custom resources", why=(
            f"its API server refused to list them ({getattr(error, 'status', '')}): a bundle's rehearsal on the twin may refuse what"
            " the real cluster takes")))
        return [], []
    for kind in served:
        try:
            kinds.append(CustomResourceSpec(**kind))
        except ValidationError as error:
            left_out.append(TwinLeftOut(cluster=cluster, what=f"custom resource {kind['kind']}.{kind['group']}",
                                        why=f"not written as Kubernetes names: {error.errors()[0]['msg']}"))
    for what, kept, most in (("namespaces", namespaces, MAX_NAMESPACES), ("custom resources", kinds, MAX_KINDS)):
        if len(kept) > most:
            left_out.append(TwinLeftOut(cluster=cluster, what=f"{what} past the first {most}",
                                        why=f"it has {len(kept)}: a fleet file holds {most}"))
            del kept[most:]
    return namespaces, kinds


def read_cluster(connections: ClusterConnections, record: ClusterRecord) -> tuple[ClusterSpec, list[TwinLeftOut]]:
    """One cluster as the twin keeps it, read now."""
    ref = record.ref
    provider = connections.provider(ref)
    control_plane = provider.describe_control_plane(ref).version
    pools = provider.list_node_pools(ref)
    api = connections.api_client(ref)
    nodes = health.read_nodes(api, with_pods=False)
    raw_nodes = health.list_items(api, "/api/v1/nodes")
    found, left_out = twins.workloads(
        deployments=health.list_items(api, "/apis/apps/v1/deployments"),
        stateful_sets=health.list_items(api, "/apis/apps/v1/statefulsets", served=False),
        pods=health.list_items(api, "/api/v1/pods"), cluster=record.name)
    budgets = twins.budgets(health.list_items(api, "/apis/policy/v1/poddisruptionbudgets"), found)
    capped = [w for w in found if w.replicas > MAX_REPLICAS]
    found = [w.model_copy(update={"replicas": min(w.replicas, MAX_REPLICAS), "unready": min(w.unready, MAX_REPLICAS)})
             for w in found]
    pools = [p.model_copy(update={"node_count": min(p.node_count, MAX_POOL_NODES)}) for p in pools]
    sizes: dict[str, str] = {}
    for node in raw_nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        pool_label = next((labels[key] for key in POOL_LABELS if key in labels), None)
        if pool_label and INSTANCE_TYPE in labels:
            sizes.setdefault(pool_label, labels[INSTANCE_TYPE])
    extra: dict = {}
    if record.provider in CONTROLLER_DRIVEN:
        servers = sum(1 for n in raw_nodes if CONTROL_PLANE_ROLE in ((n.get("metadata") or {}).get("labels") or {}))
        extra["control_plane_nodes"] = min(max(servers, 1), 7)
    if record.provider == "suc":
        kubelets = [((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "") for n in raw_nodes]
        extra["distribution"] = "rke2" if any("rke2" in k for k in kubelets) else "k3s"
    if record.provider == "capi":
        extra["management"] = record.management
    extra["namespaces"], extra["custom_resources"] = _namespaces_and_kinds(api, record.name, found, budgets, left_out)
    spec = ClusterSpec(
        name=record.name, provider=record.provider, region=record.region, labels=dict(record.labels),
        version=versions.format_version(versions.minor_version(control_plane)),
        node_pools=[_pool_spec(pool, nodes, sizes if record.provider in OWN_HARDWARE else {}) for pool in pools],
        workloads=[WorkloadSpec(
            name=w.name, namespace=w.namespace, kind=w.kind, replicas=w.replicas, labels=w.labels,
            requests=RequestsSpec(cpu=f"{w.cpu_m}m" if w.cpu_m else None,
                                  memory=f"{w.memory_mi}Mi" if w.memory_mi else None) if w.cpu_m or w.memory_mi else None,
            ready_seconds=w.ready_seconds, unready=w.unready) for w in found],
        pdbs=[BudgetSpec(name=b.name, namespace=b.namespace, min_available=b.min_available,
                         max_unavailable=b.max_unavailable,
                         selector=SelectorSpec(matchLabels=(b.selector or {}).get("matchLabels") or {},
                                               matchExpressions=(b.selector or {}).get("matchExpressions") or []))
              for b in budgets if b.selector is not None],
        **extra)
    left_out += [TwinLeftOut(cluster=record.name, what=f"PodDisruptionBudget {b.namespace}/{b.name}",
                             why="it has no selector, so it selects no pod") for b in budgets if b.selector is None]
    left_out += [TwinLeftOut(cluster=record.name, what=f"{w.kind} {w.namespace}/{w.name}'s replicas past {MAX_REPLICAS}",
                             why=f"it runs {w.replicas}: the simulator holds {MAX_REPLICAS} of one workload") for w in capped]
    return spec, left_out


def _accounts(clusters: list[ClusterSpec]) -> AccountsSpec:
    """The simulated accounts the twin's pools fit in: the defaults and every machine type, subnet and node role the
    real pools use (the simulator refuses a pool whose cloud offers no such type)."""
    accounts = AccountsSpec()

    def seen(provider: str, pick) -> list[str]:
        return sorted({value for c in clusters if c.provider == provider for p in c.node_pools for value in pick(p) if value})

    accounts.eks.instance_types = sorted(set(accounts.eks.instance_types) | set(seen("eks", lambda p: [p.node_size])))
    accounts.eks.subnets = list(dict.fromkeys(accounts.eks.subnets + seen("eks", lambda p: p.subnets or [])))
    accounts.eks.node_roles = list(dict.fromkeys(accounts.eks.node_roles + seen("eks", lambda p: [p.node_role])))
    accounts.gke.machine_types = sorted(set(accounts.gke.machine_types) | set(seen("gke", lambda p: [p.node_size])))
    accounts.aks.vm_sizes = sorted(set(accounts.aks.vm_sizes) | set(seen("aks", lambda p: [p.node_size])))
    accounts.aks.subnets = list(dict.fromkeys(accounts.aks.subnets + seen("aks", lambda p: p.subnets or [])))
    return accounts


def calibrations(inventory, records: list[ClusterRecord]) -> list[Calibration]:
    """Each cloud's step times, from the ClusterUpgrades the trail recorded from start to success."""
    clusters = {r.name: (r.provider, sum(p.node_count for p in r.node_pools)) for r in inventory.list_clusters()}
    trail = [(f"{line.operation_id}/{line.run_id}", line.cluster, line.outcome, line.at)
             for line in inventory.audit(kind=WorkflowName.CLUSTER_UPGRADE) if line.action == "upgrade"]
    return twins.calibrate(twins.upgrade_samples(trail, clusters), defaults=DEFAULT_STEP_SECONDS,
                           providers={r.provider for r in records})


def snapshot(connections: ClusterConnections, inventory, records: list[ClusterRecord]) -> Twin:
    """The twin of `records`: each read now (a Cluster API cluster's management cluster with it, which the simulator
    needs to run it), the clouds' step times calibrated, and what was left out named."""
    by_name = {r.name: r for r in inventory.list_clusters()}
    wanted = {r.name: r for r in records}
    left_out: list[TwinLeftOut] = []
    for record in records:
        if record.provider == "capi" and record.management is not None and record.management.context not in wanted:
            management = by_name.get(record.management.context)
            if management is not None:
                wanted[management.name] = management

    def read(record: ClusterRecord) -> tuple[ClusterSpec | None, list[TwinLeftOut]]:
        if record.site != connections.site:
            return None, [TwinLeftOut(cluster=record.name, what="the whole cluster",
                                      why=f"at site {record.site}: only its agent reaches its API (snapshot it there with"
                                          f" REGATTA_SITE={record.site})")]
        try:
            return read_cluster(connections, record)
        except Exception as error:  # noqa: BLE001 - one unreadable cluster must not stop the fleet's snapshot
            return None, [TwinLeftOut(cluster=record.name, what="the whole cluster",
                                      why=f"it could not be read: {str(error)[:200]}")]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(read, list(wanted.values())))
    clusters = [spec for spec, _ in results if spec is not None]
    for _, missing in results:
        left_out += missing
    names = {c.name for c in clusters}
    for spec in list(clusters):  # a capi cluster whose management cluster is not in the twin cannot be run there
        if spec.management is not None and spec.management.context not in names:
            clusters.remove(spec)
            left_out.append(TwinLeftOut(cluster=spec.name, what="the whole cluster", why=(
                f"its management cluster {spec.management.context} is not in the twin (it is not in the inventory,"
                " or could not be read)")))
    calibrated = calibrations(inventory, [r for r in wanted.values() if r.name in names])
    timings = {c.provider: TimingsSpec(control_plane_upgrade_seconds=c.control_plane_upgrade_seconds,
                                       node_boot_seconds=c.node_boot_seconds,
                                       node_terminate_seconds=c.node_terminate_seconds)
               for c in calibrated if c.samples}
    fleet = FleetSpec(accounts=_accounts(clusters), clusters=sorted(clusters, key=lambda c: c.name),
                      timings=timings)
    return Twin(fleet=fleet, taken_at=datetime.now(UTC), left_out=left_out, calibrations=calibrated)
