"""Upgrade readiness read from the clusters themselves: for each cluster and a target version, its
control plane and node pools and the cloud's insights and managed add-ons from the cloud, its
budgets and the API versions its clients and manifests use from its API server, judged by
`regatta.rules.readiness`. Called by `regatta upgrade readiness` and `--plan-only` for any target, and by the fleet sweep for each
cluster's next minor (stored for the fleet view, `GET /v1/readiness` and the metrics), on the same terms as the sweep
(regatta/inventory/sweep.py): clusters read eight at a time, a site's clusters left to its agent,
one unreadable cluster a finding of its own rather than the end of the read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from regatta.clouds.base import read_surge_room
from regatta.formats.fleet_data import api_removals
from regatta.kube import api_usage, health
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRecord, NodePool
from regatta.models.readiness import ReadinessFinding, ReadinessReport
from regatta.rules import readiness, versions


def check_one(connections: ClusterConnections, record: ClusterRecord, target: str, *,
              control_plane: str | None = None, pools: list[NodePool] | None = None) -> ReadinessReport:
    """One cluster's readiness for `target`, read now (given the control plane's version and the node
    pools, as a sweep has just read them, the cloud is not asked for them again). A cluster that cannot be
    read is reported, blocking; one already at or past the target has nothing to check and says so."""
    ref = record.ref
    table = api_removals()
    now = datetime.now(UTC)

    def alone(finding: ReadinessFinding, version: str) -> ReadinessReport:
        return ReadinessReport(cluster=record.name, current_version=version, target_version=target, path=[],
                               findings=[finding], read_at=now)

    try:
        provider = connections.provider(ref)
        if control_plane is None:
            control_plane = provider.describe_control_plane(ref).version
        if versions.minor_version(control_plane) >= versions.parse_target_version(target):
            return alone(ReadinessFinding(id="version", check="version", severity="info",
                                          summary=f"the control plane already runs {control_plane}",
                                          what_to_do="nothing: an upgrade to a version it runs or passed has no step"),
                         control_plane)
        if pools is None:
            pools = provider.list_node_pools(ref)
        path = versions.upgrade_path(control_plane, target)
        insights = [i for i in provider.upgrade_insights(ref) if i.kubernetes_version in path]
        addons = provider.managed_addons(ref, version=target) if versions.moves_addons_after_control_plane(ref.provider) else []
        api = connections.api_client(ref)
        pdbs = health.read_pdbs(api)
        usage = api_usage.api_usage(api, table, control_plane=control_plane, target=target)
        rooms, rooms_unread = read_surge_room(provider, ref, pools, lambda: health.read_nodes(api, with_pods=False))
    except Exception as error:  # noqa: BLE001 - one unreadable cluster must not stop the fleet's read
        return alone(ReadinessFinding(id="unreadable", check="unreadable", severity="blocking",
                                      summary=f"the cluster could not be read: {str(error)[:200]}",
                                      what_to_do="check its credentials and reachability (regatta clusters sync),"
                                                 " then read again", can_accept=False),
                     control_plane or record.control_plane_version)
    report = readiness.readiness_report(cluster=record.name, control_plane=control_plane, target=target,
                                        table=usage.table, node_pools=pools, requested=usage.requested,
                                        applied=usage.applied, addons=addons, pdbs=pdbs, rooms=rooms, insights=insights,
                                        usage_unread=usage.unread, rooms_unread=rooms_unread)
    return report.model_copy(update={"read_at": now})


def check_fleet(connections: ClusterConnections, records: list[ClusterRecord], target: str) -> list[ReadinessReport]:
    """Every cluster's readiness for `target`, in the order given. A cluster at a site whose API only its
    agent reaches is not read from here, and says so (its upgrade's preflight reads it there). A target
    that is no version at all is refused once, before any cluster is asked."""
    versions.parse_target_version(target)

    def check(record: ClusterRecord) -> ReadinessReport:
        if record.site == connections.site:
            return check_one(connections, record, target)
        return ReadinessReport(
            cluster=record.name, current_version=record.control_plane_version, target_version=target, path=[],
            findings=[ReadinessFinding(
                id="unreadable", check="unreadable", severity="warning",
                summary=f"at site {record.site}: only its agent reaches its API, so it was not read from here",
                what_to_do="nothing before: its upgrade's preflight reads it at the site and refuses what blocks")])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(check, records))
