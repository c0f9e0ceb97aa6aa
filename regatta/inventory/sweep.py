"""Refreshing the inventory from the clusters themselves: control plane and node pool
versions from the cloud, health from each cluster's API. Used by `regatta clusters sync`,
`regatta dev` at start, and the scheduled FleetSweep workflow's activity."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory import Inventory
from regatta.inventory.readiness_check import check_one
from regatta.kube import health
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRecord, NodePool
from regatta.models.readiness import ReadinessReport
from regatta.rules import recovery, versions
from regatta.rules.health import health_problems
from regatta.rules.readiness import next_minor


def records_from_fleet(fleet: FleetSpec, *, credential_ref: str = "default") -> list[ClusterRecord]:
    """Inventory records for the clusters a fleet file describes (the embedded default's registry)."""
    return [
        ClusterRecord(
            name=c.name, provider=c.provider, region=c.region, environment=c.environment, labels=c.labels,
            control_plane_version=versions.format_version(versions.minor_version(c.version)),
            node_pools=[NodePool(name=p.name, version=p.version or c.version, node_count=p.nodes, node_size=p.node_size,
                                 labels=p.labels, node_image=p.node_image) for p in c.node_pools],
            credential_ref=credential_ref, site=c.site, management=c.management,
        )
        for c in fleet.clusters
    ]


def register_fleet(inventory: Inventory, fleet: FleetSpec) -> list[ClusterRecord]:
    """Register the fleet file's clusters, then declare its DR pairs (which label both sides)."""
    records = records_from_fleet(fleet)
    for record in records:
        inventory.upsert_cluster(record)
    for pair in fleet.dr_pairs:
        inventory.declare_dr_pair(pair.primary, pair.standby)
    return records


def sweep_one(connections: ClusterConnections, record: ClusterRecord, *,
              readiness: bool = False) -> tuple[ClusterRecord, ReadinessReport | None]:
    """The cluster as it is now and, with `readiness`, its readiness for its next minor version."""
    ref = record.ref
    try:
        provider = connections.provider(ref)
        control_plane = provider.describe_control_plane(ref)
        pools = provider.list_node_pools(ref)
        state = health.read_health(connections.api_client(ref))
        problems = health_problems(nodes=state.nodes, deployments=state.deployments, api_ready=state.api_ready)
        status = "healthy" if not problems else f"degraded: {problems[0]}" + (f" (+{len(problems) - 1})" if len(problems) > 1 else "")
        ready = [n for n in state.nodes if n.ready]
        following = next_minor(control_plane.version) if readiness else None
        report = None if following is None else check_one(connections, record, following,
                                                           control_plane=control_plane.version, pools=pools)
        return record.model_copy(update={
            "control_plane_version": control_plane.version, "node_pools": pools, "health": status,
            "pods_capacity": sum(n.allocatable_pods for n in ready), "pods_free": recovery.free_pod_slots(state.nodes),
            "cpu_allocatable_m": sum(n.cpu_allocatable_m for n in ready),
            "cpu_requested_m": sum(n.cpu_requested_m for n in ready),
            "memory_allocatable_mi": sum(n.memory_allocatable_mi for n in ready),
            "memory_requested_mi": sum(n.memory_requested_mi for n in ready)}), report
    except Exception as error:  # noqa: BLE001 - one unreachable cluster must not stop the sweep
        return record.model_copy(update={"health": f"unreachable: {str(error)[:120]}"}), None


def sweep(connections: ClusterConnections, inventory: Inventory, names: list[str] | None = None, *,
          readiness: bool = True) -> list[ClusterRecord]:
    """Sweep these clusters (every one) into the inventory and, with `readiness`, store each one's
    readiness for its next minor version (an unreachable cluster keeps the last it had, with its time)."""
    wanted = None if names is None else set(names)
    # A site's clusters are swept by its agent alone; everyone else's by the central workers.
    records = [r for r in inventory.list_clusters() if (wanted is None or r.name in wanted) and r.site == connections.site]
    with ThreadPoolExecutor(max_workers=8) as pool:
        swept = list(pool.map(lambda r: sweep_one(connections, r, readiness=readiness), records))
    for record, _ in swept:
        inventory.upsert_cluster(record)
    if readiness:  # a cluster read past its last minor keeps no report of a version it has passed
        inventory.record_readiness([report for _, report in swept if report is not None],
                                   forget=[record.name for record, report in swept
                                           if report is None and not record.health.startswith("unreachable")])
    return [record for record, _ in swept]
