"""Upgrade readiness: what a target version would break on one cluster, before anything moves.

The path a control plane takes to the target (one minor at a time), the API removals it crosses
against what clients request and what manifests were last applied with, add-ons with no version
for the target, budgets that can never let a drain through, node pools with no room for a surge
node, the cloud's own insights, and node pools the path would leave too far behind. Each finding
says how bad it is, what it concerns and what to do; a blocking one stops an upgrade unless an
operator accepts it by its id.

Pure: the readiness report of the CLI, the API, the fleet view and an upgrade's preflight all come
from `readiness_report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from regatta.models import ManagedAddon, NodePool, NodeState, PdbState, UpgradeInsight
from regatta.models.errors import ErrorType
from regatta.models.readiness import (
    ApiRemoval,
    ApiRemovalTable,
    AppliedObject,
    NodePoolRoom,
    ReadinessFinding,
    ReadinessReport,
    RequestedDeprecatedApi,
    Severity,
)
from regatta.rules.disruption import pdb_never_allows_eviction
from regatta.rules.refusals import Refusal
from regatta.rules.versions import (
    MAX_KUBELET_SKEW,
    SUPPORTED_MINORS,
    format_version,
    minor_version,
    upgrade_path,
)

SEVERITY_ORDER = {"blocking": 0, "warning": 1, "info": 2}


class NotReady(Refusal):
    """An upgrade refused for blocking findings nobody accepted."""

    error_type = ErrorType.NOT_READY_FOR_UPGRADE


def next_minor(control_plane: str) -> str | None:
    """The minor version after the control plane's, the next upgrade's target; None past the newest supported."""
    current = minor_version(control_plane)
    following = (current[0], current[1] + 1)
    return format_version(following) if following[1] in SUPPORTED_MINORS else None


def removals_crossed(table: ApiRemovalTable, path: Sequence[str]) -> list[ApiRemoval]:
    """The removals of every release on the path."""
    steps = set(path)
    return [removal for removal in table.removals if removal.removed_in in steps]


def _advice(removal: ApiRemoval) -> str:
    if removal.use_instead is None:
        move = f"{removal.kind} in {removal.group_version} has no successor"
    else:
        since = f" (served since {removal.available_since})" if removal.available_since else ""
        move = f"move manifests and clients to {removal.use_instead}{since}"
    return move + (f"; {removal.note}" if removal.note else "")


def removed_api_findings(
    *, table: ApiRemovalTable, path: Sequence[str], requested: Iterable[RequestedDeprecatedApi],
    applied: Iterable[AppliedObject],
) -> list[ReadinessFinding]:
    """One blocking finding per removed kind still in use on the path: requested by a client since the
    API server started, or last applied with by an object's manifest. A deprecated API the API server
    says goes on the path but the shipped table does not know is reported too (the server's word)."""
    crossed = removals_crossed(table, path)
    requested, applied = list(requested), list(applied)
    findings = []
    for removal in crossed:
        asked = sorted({f"{r.resource}{'/' + r.subresource if r.subresource else ''}" for r in requested
                        if r.group_version == removal.group_version and r.resource == removal.resource})
        objects = sorted(o.reference for o in applied if o.group_version == removal.group_version and o.kind == removal.kind)
        if not asked and not objects:
            continue
        uses = []
        if asked:
            uses.append(f"clients still request {removal.group_version} {', '.join(asked)}")
        if objects:
            uses.append(f"{len(objects)} object{'s' if len(objects) != 1 else ''} last applied with it")
        findings.append(ReadinessFinding(
            id=f"removed_api:{removal.group_version}/{removal.kind}", check="removed_api", severity="blocking",
            summary=f"{removal.group_version} {removal.kind} is not served from {removal.removed_in}: {'; '.join(uses)}",
            objects=objects, what_to_do=_advice(removal), version=removal.removed_in))
    known = {(removal.group_version, removal.resource) for removal in table.removals}
    steps = set(path)
    for series in requested:
        if (series.group_version, series.resource) in known or series.removed_release not in steps:
            continue
        findings.append(ReadinessFinding(
            id=f"removed_api:{series.group_version}/{series.resource}", check="removed_api", severity="blocking",
            summary=f"clients still request {series.group_version} {series.resource}, which the API server says is"
                    f" removed in {series.removed_release}",
            what_to_do=f"find the clients (the API server's audit log names them) and move them to a served version"
                       f" of {series.resource}", version=series.removed_release))
    later = {(removal.group_version, removal.resource) for removal in table.removals
             if path and minor_version(removal.removed_in) > minor_version(path[-1])}
    for group_version, resource in sorted({(r.group_version, r.resource) for r in requested} & later):
        removal = next(r for r in table.removals if (r.group_version, r.resource) == (group_version, resource))
        findings.append(ReadinessFinding(
            id=f"deprecated_api:{group_version}/{removal.kind}", check="deprecated_api", severity="warning",
            summary=f"clients still request {group_version} {resource}, served by the target but removed in {removal.removed_in}",
            what_to_do=_advice(removal)))
    return findings


def unread_usage_findings(unread: str | None) -> list[ReadinessFinding]:
    """The cluster's API would not say which versions its clients and manifests use: a warning, since
    nothing was found, but nothing was ruled out either."""
    if unread is None:
        return []
    return [ReadinessFinding(
        id="unreadable:api_usage", check="unreadable", severity="warning",
        summary=f"which API versions clients and manifests use could not be read ({unread})",
        what_to_do="let Regatta's credentials GET /metrics and list the kinds the path's removals concern"
                   " (docs/upgrades.md), then read again")]


def unread_room_findings(unread: str | None) -> list[ReadinessFinding]:
    """The cloud would not say how much room the pools' networks have (EC2 DescribeSubnets refused, say, for want
    of ec2:DescribeSubnets): a warning, as with unread API usage; the upgrade is not stopped by what was not read."""
    if unread is None:
        return []
    return [ReadinessFinding(
        id="unreadable:surge_room", check="unreadable", severity="warning",
        summary=f"the node pools' room for their surge nodes could not be read ({unread})",
        what_to_do="let Regatta's credentials read the pools' networks (EKS: ec2:DescribeSubnets) and read again"
                   " (`regatta upgrade readiness`; a cluster behind a site agent is read there only in part)")]


def addon_findings(addons: Iterable[ManagedAddon], target: str) -> list[ReadinessFinding]:
    """The cloud's managed add-ons against its catalogue for the target (EKS DescribeAddonVersions): one
    with no version offered for the target blocks; one whose running version is not compatible is
    moved by the upgrade to the target's default after the control plane, which is said because a
    rollback of the control plane does not move it back."""
    findings = []
    for addon in addons:
        if addon.compatible:
            continue
        if addon.default_version is None:
            findings.append(ReadinessFinding(
                id=f"addon:{addon.name}", check="addon", severity="blocking", objects=[addon.name],
                summary=f"add-on {addon.name} {addon.version} has no version the cloud offers for {target}",
                what_to_do=f"remove {addon.name}, or wait until the cloud offers it for {target}"))
        else:
            findings.append(ReadinessFinding(
                id=f"addon:{addon.name}", check="addon", severity="info", objects=[addon.name],
                summary=f"add-on {addon.name} {addon.version} is not offered for {target}; the upgrade moves it to"
                        f" {addon.default_version} after the control plane",
                what_to_do="nothing before; a rollback of the control plane leaves the add-on where it is"))
    return findings


def budget_findings(pdbs: Iterable[PdbState]) -> list[ReadinessFinding]:
    """A budget that can never allow an eviction stops every drain of a node its pods run on (an upgrade
    refuses it as UnsatisfiablePdb: not a finding to accept)."""
    return [ReadinessFinding(id=f"budget:{pdb.namespace}/{pdb.name}", check="budget", severity="blocking",
                             objects=[f"PodDisruptionBudget {pdb.namespace}/{pdb.name}"], summary=reason,
                             what_to_do="scale the workload above the budget or relax minAvailable/maxUnavailable",
                             can_accept=False)
            for pdb in pdbs if (reason := pdb_never_allows_eviction(pdb))]


def surge_room_findings(pools: Iterable[NodePoolRoom]) -> list[ReadinessFinding]:
    """A surge upgrade adds nodes to a pool before it removes any: a pool with a place (an EKS zone's subnets, a
    GKE Pod range) whose free addresses hold fewer than the new nodes it must take fails there (EKS
    InsufficientFreeAddresses, GKE IP_SPACE_EXHAUSTED)."""
    findings = []
    for pool in pools:
        short = [(place, pool.room(place)) for place in pool.places if pool.room(place) < place.surge_nodes]
        if not short:
            continue
        each = f"; a node takes {pool.addresses_per_node} addresses" if pool.addresses_per_node else ""
        where = "; ".join(
            f"{place.name} holds {room} of its {place.surge_nodes} new node{'s' if place.surge_nodes != 1 else ''} ("
            + ", ".join(f"{free} free" if source == place.name else f"{source}: {free} free"
                        for source, free in place.free_addresses.items()) + ")"
            for place, room in short)
        findings.append(ReadinessFinding(
            id=f"surge_room:{pool.name}", check="surge_room", severity="blocking", objects=[f"node pool {pool.name}"],
            summary=f"node pool {pool.name} has no room for the nodes its upgrade adds at once: {where}{each}",
            what_to_do="free addresses there or give the pool more (EKS: subnets with room in each zone; GKE: an additional"
                       " Pod range), or lower the pool's surge (GKE maxSurge, EKS maxUnavailable or its MINIMAL strategy)"))
    return findings


def blue_green_rooms(pools: Iterable[NodePoolRoom]) -> list[NodePoolRoom]:
    """The room a blue/green replacement needs: as many new nodes as the pool has, spread over its places, while the
    old pool keeps its addresses until it is drained."""
    return [pool.model_copy(update={"places": [
        place.model_copy(update={"surge_nodes": -(-pool.node_count // len(pool.places))}) for place in pool.places]})
        for pool in pools if pool.places]


def with_node_addresses(rooms: list[NodePoolRoom], nodes: list[NodeState]) -> list[NodePoolRoom]:
    """An EKS node's addresses in its subnet: its own and one per pod it may run (the VPC CNI gives each pod a
    VPC address), as its kubelet says (status.allocatable.pods); for a pool none of whose nodes was read, the most
    any node of the cluster takes (one only when no node was read at all)."""
    most: dict[str, int] = {}
    for node in nodes:
        most[node.pool] = max(most.get(node.pool, 0), node.allocatable_pods)
    anywhere = max(most.values(), default=0)
    return [room if room.addresses_per_node is not None
            else room.model_copy(update={"addresses_per_node": 1 + most.get(room.name, anywhere)}) for room in rooms]


def insight_findings(insights: Iterable[UpgradeInsight]) -> list[ReadinessFinding]:
    """The cloud's own upgrade readiness checks (EKS upgrade insights): ERROR blocks, as EKS itself refuses
    the upgrade without force; WARNING warns; UNKNOWN is said. An upgrade judges them by its cloud rules
    (UpgradeInsightsError, passed only with accept_insights), so they are not accepted by id."""
    severity: dict[str, Severity] = {"ERROR": "blocking", "WARNING": "warning", "UNKNOWN": "info"}
    return [ReadinessFinding(id=f"cloud_insight:{insight.name}", check="cloud_insight", severity=severity[insight.status],
                             summary=f"{insight.name}: {insight.reason or insight.description}", objects=list(insight.resources),
                             what_to_do=(insight.recommendation or "see the cloud's insight")
                             + "; an upgrade goes ahead past ERROR insights only with accept_insights and a reason",
                             version=insight.kubernetes_version, can_accept=False)
            for insight in insights if insight.status != "PASSING"]


def skew_findings(node_pools: Iterable[NodePool], path: Sequence[str]) -> list[ReadinessFinding]:
    """A node pool more than the skew policy allows behind the path's first step: its control plane
    cannot move until the pool catches up (each later step moves the pools with it)."""
    if not path:
        return []
    first = minor_version(path[0])
    findings = []
    for pool in node_pools:
        behind = first[1] - minor_version(pool.version)[1]
        if behind > MAX_KUBELET_SKEW:
            floor = format_version((first[0], first[1] - MAX_KUBELET_SKEW))
            findings.append(ReadinessFinding(
                id=f"skew:{pool.name}", check="skew", severity="blocking", objects=[f"node pool {pool.name}"],
                summary=f"node pool {pool.name} runs {pool.version}, {behind} minors behind {path[0]}; kubelets may be at"
                        f" most {MAX_KUBELET_SKEW} behind the control plane",
                what_to_do=f"upgrade node pool {pool.name} to at least {floor} first", version=path[0],
                can_accept=False))
    return findings


def readiness_report(
    *, cluster: str, control_plane: str, target: str, table: ApiRemovalTable, node_pools: Sequence[NodePool] = (),
    requested: Iterable[RequestedDeprecatedApi] = (), applied: Iterable[AppliedObject] = (),
    addons: Iterable[ManagedAddon] = (), pdbs: Iterable[PdbState] = (), rooms: Iterable[NodePoolRoom] = (),
    insights: Iterable[UpgradeInsight] = (), usage_unread: str | None = None, rooms_unread: str | None = None,
) -> ReadinessReport:
    """Everything found for one cluster and target, blocking first."""
    path = upgrade_path(control_plane, target)
    findings = (removed_api_findings(table=table, path=path, requested=requested, applied=applied)
                + addon_findings(addons, target) + budget_findings(pdbs)
                + surge_room_findings(rooms) + insight_findings(insights)
                + skew_findings(node_pools, path) + unread_usage_findings(usage_unread)
                + unread_room_findings(rooms_unread))
    findings.sort(key=lambda finding: (SEVERITY_ORDER[finding.severity], finding.check, finding.id))
    return ReadinessReport(cluster=cluster, current_version=control_plane, target_version=target, path=path,
                           findings=findings)


def room_report(*, cluster: str, control_plane: str, target: str, rooms: Iterable[NodePoolRoom],
                rooms_unread: str | None = None) -> ReadinessReport:
    """The readiness of an upgrade that moves only node pools: no API goes away, so their room alone."""
    findings = surge_room_findings(rooms) + unread_room_findings(rooms_unread)
    return ReadinessReport(cluster=cluster, current_version=control_plane, target_version=target, path=[], findings=findings)


def standing(report: ReadinessReport, accepted: Mapping[str, str]) -> list[str]:
    """What an upgrade's progress lists of its readiness: each warning and blocking finding (an accepted one with
    its reason), then each accepted id the cluster did not have (a typo in an id otherwise passes unseen)."""
    blocking = {finding.id for finding in report.findings if finding.severity == "blocking"}
    return [finding.line() + (f" — accepted: {accepted[finding.id]}" if finding.id in accepted and finding.can_accept
                               and finding.severity == "blocking" else "")
            for finding in report.findings if finding.severity != "info"] + [
        f"accepted but not found here: [{finding_id}]" for finding_id in sorted(set(accepted) - blocking)]


def refuse_unless_ready(report: ReadinessReport, accepted: Iterable[str] = ()) -> list[ReadinessFinding]:
    """The blocking findings an operator accepted (for the audit trail), or a refusal naming the rest:
    every one not accepted, and any the cloud itself would refuse whether accepted or not."""
    accepted = set(accepted)
    blocking = [finding for finding in report.findings if finding.severity == "blocking"]
    left = [finding for finding in blocking if finding.id not in accepted or not finding.can_accept]
    if left:
        acceptable = any(finding.can_accept for finding in left)
        raise NotReady(
            f"{report.cluster} is not ready for {report.target_version}: "
            + "; ".join(f"[{finding.id}] {finding.summary} — {finding.what_to_do}"
                        + ("" if finding.can_accept else " (not one to accept: fix it)") for finding in left)
            + (". Fix them, or accept each by its id with a reason (accept_findings; regatta upgrade start --accept"
               " ID=REASON)" if acceptable else ". Fix them first"))
    return [finding for finding in blocking if finding.id in accepted]
