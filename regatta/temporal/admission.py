"""The checks made before an operation starts, in one place that the CLI and the HTTP API both
call: the cluster is known, the version jump is legal, no maintenance hold keeps it, nothing
stands in the way of a decommission, the DR pair is the one named, the wave and the new cluster
fit the fleet's rules. (A second operation on a busy cluster is refused when it is started:
`operations.start` names the one holding it.)

These catch at once what the inventory already shows; each workflow checks again against the
live cluster, so a stale inventory can delay a refusal but never let a wrong change through.

Every refusal is a `StartRefused` whose `kind` tells a caller how to report it (the API's status
code; the CLI exits 2 for all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from regatta.inventory import DrPairError, Inventory, UnknownCluster
from regatta.models import (
    ClusterRecord,
    ClusterRollbackInput,
    ClusterUpgradeInput,
    DecommissionClusterInput,
    DRFailbackInput,
    DRFailoverInput,
    PatchWaveInput,
    ProvisionClusterInput,
    WavePlan,
)
from regatta.models.operations import WorkflowName
from regatta.models.placement import EvacuateClusterInput
from regatta.models.policy import BundleSpec, PolicyPlan
from regatta.rules import (
    bundle_targets,
    cloud_rules,
    decommissioning,
    operation_ids,
    outbound,
    own_hardware,
    placement,
    provisioning,
    refusals,
    rollback,
    versions,
    waves,
)
from regatta.rules.outbound import OutboundRules
from regatta.temporal.outcomes import OperationRefused

RefusalKind = Literal["unknown", "invalid", "conflict"]


class StartRefused(OperationRefused):
    """Refused before anything started. `kind`: `unknown` (no such cluster or pair), `invalid`
    (the request cannot be right), `conflict` (right, but not now: a hold, a blocker, nothing to do)."""

    def __init__(self, message: str, *, kind: RefusalKind, environments: frozenset[str] = frozenset()):
        super().__init__(message)
        self.kind: RefusalKind = kind
        # Where the refused operation would have acted, when that was known: the API lets a token
        # not allowed there hear 403 rather than learn why the change could not be made.
        self.environments = environments


@dataclass(frozen=True)
class Admission:
    """What a request that may start runs under."""

    workflow: str
    operation_id: str
    holder: ClusterRecord | None = None  # the cluster whose lock it takes; None for a wave
    environments: frozenset[str] = frozenset()
    plan: WavePlan | None = None  # a wave's plan, as `--plan-only` prints it
    policy_plan: PolicyPlan | None = None  # a policy rollout's plan: every cluster in or out, and why
    path: tuple[str, ...] = ()  # an upgrade's minors, in order (several: one ClusterUpgrade goes through each)
    bundle: BundleSpec | None = None  # the bundle as read (manifests inline, revision set): what the rollout is given


def admit(request: BaseModel, *, inventory: Inventory, now: datetime | None = None,
          outbound_rules: OutboundRules | None = None) -> Admission:
    """The operation `request` would start, or the StartRefused saying why it may not. `now` is
    the fleet's clock (maintenance holds and wave windows are read against it); `outbound_rules` are
    REGATTA_OUTBOUND_ALLOW and REGATTA_OUTBOUND_PRIVATE (the URLs the input names must be ones the
    worker may call; a bundle's git source is read under the same rules)."""
    now = now or datetime.now(UTC)
    rules = outbound_rules or OutboundRules()
    if getattr(request, "carried", None) is not None:  # what a run hands its next: it would skip the plan and its scope
        raise StartRefused("input.carried is what a wave or a rollout hands its own next run when its history fills;"
                           " a start leaves it out", kind="invalid")
    for where, url in outbound.outbound_urls(request):
        if (problem := rules.problem(url, what=where)) is not None:
            raise StartRefused(problem, kind="invalid")
    try:
        if isinstance(request, ClusterUpgradeInput):
            return _upgrade(request, inventory=inventory, now=now)
        if isinstance(request, ClusterRollbackInput):
            return _rollback(request, inventory=inventory, now=now)
        if isinstance(request, PatchWaveInput):
            return _wave(request, inventory=inventory, now=now)
        if isinstance(request, BundleSpec):
            return _policy(request, inventory=inventory, now=now, outbound=rules)
        if isinstance(request, ProvisionClusterInput):
            holder = provision_holder(inventory, request)
            return Admission(WorkflowName.PROVISION_CLUSTER, operation_ids.operation_id(request.name), holder,
                             frozenset({request.environment}))
        if isinstance(request, DecommissionClusterInput):
            return _decommission(request, inventory=inventory)
        if isinstance(request, DRFailoverInput | DRFailbackInput):
            return _disaster_recovery(request, inventory=inventory)
        if isinstance(request, EvacuateClusterInput):
            return _evacuate(request, inventory=inventory)
    except UnknownCluster as error:
        raise StartRefused(str(error), kind="unknown") from None
    except DrPairError as error:
        raise StartRefused(str(error), kind="unknown") from None
    except refusals.Refusal as error:  # a wave's plan, a new cluster's version (an upgrade's say their own kind)
        raise StartRefused(str(error), kind="invalid") from None
    raise TypeError(f"no operation starts from a {type(request).__name__}")


def environments_before_reading(request: BaseModel, *, inventory: Inventory, now: datetime | None = None) -> frozenset[str]:
    """Where `request` would act, from the inventory alone: no file read, no repository cloned, no URL
    called, so a caller's token is weighed before any of that work (DESIGN rule 11). A bundle's targets
    give every cluster they select (its placement may choose fewer: admission narrows it, and the caller
    is asked again for those). An unknown cluster is UnknownCluster; a cluster's name is all it reads."""
    now = now or datetime.now(UTC)
    if isinstance(request, ProvisionClusterInput):
        return frozenset({request.environment})
    if isinstance(request, PatchWaveInput):
        try:
            return _wave(request, inventory=inventory, now=now).environments
        except refusals.Refusal:  # why the plan fails is the fleet's business: only a token for all of it hears
            return frozenset(c.environment for c in inventory.list_clusters())
    if isinstance(request, BundleSpec):
        return frozenset(c.environment for c in inventory.list_clusters()
                         if bundle_targets.left_out_because(request, c) is None)
    if isinstance(request, DRFailoverInput | DRFailbackInput):
        record = inventory.get_cluster(request.cluster)
        try:
            standby = inventory.get_cluster(inventory.dr_pair(request.cluster).standby)
        except (DrPairError, UnknownCluster):
            return frozenset({record.environment})
        return frozenset({record.environment, standby.environment})
    if isinstance(request, EvacuateClusterInput):
        record = inventory.get_cluster(request.cluster)
        clusters = {c.name: c.environment for c in inventory.list_clusters()}
        placed = placement.placed_on(inventory.placements(), record.name)
        return frozenset({record.environment} | {clusters[s.cluster] for d in placed for s in d.chosen if s.cluster in clusters})
    cluster = getattr(request, "cluster", None)
    if isinstance(cluster, str):
        return frozenset({inventory.get_cluster(cluster).environment})
    raise TypeError(f"no operation starts from a {type(request).__name__}")


def environments_of_running(workflow: str, cluster: str, environment: str, *, inventory: Inventory) -> frozenset[str]:
    """Where a running operation on one cluster acts: its own environment, and for a failover or failback
    its standby's, for an evacuation every cluster its applications are placed on."""
    found = {environment}
    try:
        if workflow in (WorkflowName.DR_FAILOVER, WorkflowName.DR_FAILBACK):
            found.add(inventory.get_cluster(inventory.dr_pair(cluster).standby).environment)
        elif workflow == WorkflowName.EVACUATE_CLUSTER:
            clusters = {c.name: c.environment for c in inventory.list_clusters()}
            placed = placement.placed_on(inventory.placements(), cluster)
            found |= {clusters[s.cluster] for d in placed for s in d.chosen if s.cluster in clusters}
    except (DrPairError, UnknownCluster):
        found.add("(unknown: only a token for every environment may act on it)")
    return frozenset(found)


def provision_holder(inventory: Inventory, request: ProvisionClusterInput) -> ClusterRecord:
    """The record a new cluster's ProvisionCluster runs under, once the fleet rules allow it."""
    taken = any(r.name == request.name for r in inventory.list_clusters())
    problems = provisioning.fleet_rule_violations(
        name=request.name, provider=request.provider, region=request.region, version=request.version,
        pools=[(p.name, p.node_count) for p in request.node_pools], taken=taken)
    problems += provisioning.network_problems(provider=request.provider, network=request.network,
                                              pools=[(p.name, p.subnets, p.node_role) for p in request.node_pools])
    if problems:
        raise StartRefused("; ".join(problems), kind="invalid")
    return ClusterRecord(name=request.name, provider=request.provider, region=request.region,
                         environment=request.environment, control_plane_version=request.version)


def _refuse_a_hold(record: ClusterRecord, override_hold: str | None, *, now: datetime, where: frozenset[str]) -> None:
    """A cluster under a maintenance hold is left alone unless the start says why it must go ahead (a blank reason
    is none: the audit trail keeps it)."""
    if override_hold is not None and not override_hold.strip():
        raise StartRefused("override_hold needs a reason (--override-hold REASON): the audit trail keeps it",
                           kind="invalid", environments=where)
    hold = record.held_at(now)
    if hold is not None and not override_hold:
        raise StartRefused(
            f"{record.name} is held until {hold.until.astimezone(UTC):%Y-%m-%d %H:%M}Z by {hold.held_by}: {hold.reason}."
            f" Wait, release it (regatta cluster release {record.name}), or start with an override reason"
            " (--override-hold REASON; override_hold in the input)", kind="conflict", environments=where)


def _upgrade(request: ClusterUpgradeInput, *, inventory: Inventory, now: datetime) -> Admission:
    record = inventory.get_cluster(request.cluster)
    where = frozenset({record.environment})
    _refuse_a_hold(record, request.override_hold, now=now, where=where)
    node_image = request.node_images.get(record.provider)
    try:
        path = versions.plan_upgrade_path(provider=record.provider, control_plane=record.control_plane_version,
                                          node_pools=record.node_pools, target=request.target_version,
                                          node_image=node_image, launch_templates=bool(request.launch_template_versions))
    except versions.InvalidNodeImage as problem:
        raise StartRefused(f"node_images.{record.provider}: {problem}", kind="invalid", environments=where) from None
    except versions.AlreadyAtVersion as problem:
        raise StartRefused(str(problem), kind="conflict", environments=where) from None
    except refusals.Refusal as problem:
        raise StartRefused(str(problem), kind="invalid", environments=where) from None
    if record.provider in own_hardware.CONTROLLER_DRIVEN:  # what Cluster API or the SUC cannot do: said before a start
        refused = cloud_rules.own_hardware_refusals(provider=record.provider, target=request.target_version,
                                                    strategy=request.strategy, node_image=node_image,
                                                    launch_template_versions=request.launch_template_versions)
        if refused:
            raise StartRefused("; ".join(refused), kind="invalid", environments=where)
    return Admission(WorkflowName.CLUSTER_UPGRADE, operation_ids.operation_id(record.name), record, frozenset({record.environment}),
                     path=tuple(path))


def _rollback(request: ClusterRollbackInput, *, inventory: Inventory, now: datetime) -> Admission:
    """What the inventory can tell before the cloud is asked: a cloud with a way back, a cluster its workers reach,
    no hold. Whether the window is open is the cloud's record, read by the rollback's preflight."""
    record = inventory.get_cluster(request.cluster)
    where = frozenset({record.environment})
    if record.provider != "eks":
        raise StartRefused(f"{record.name} is a {record.provider.upper()} cluster: {rollback.way_back(record.provider)}",
                           kind="conflict", environments=where)
    if record.site is not None:
        raise StartRefused(f"{record.name} sits behind the site agent of {record.site}: Regatta does not roll such"
                           " clusters back yet; use the cloud's console", kind="conflict", environments=where)
    _refuse_a_hold(record, request.override_hold, now=now, where=where)
    return Admission(WorkflowName.CLUSTER_ROLLBACK, operation_ids.operation_id(record.name), record, where)


def _wave(request: PatchWaveInput, *, inventory: Inventory, now: datetime) -> Admission:
    clusters = {c.name: c for c in inventory.list_clusters()}
    plan = waves.plan_wave(request, list(clusters.values()), now=now)
    touched = frozenset(clusters[c.name].environment for stage in plan.stages for c in stage.clusters)
    return Admission(WorkflowName.PATCH_WAVE, operation_ids.wave_id(request.name), None, touched, plan)


def _policy(request: BundleSpec, *, inventory: Inventory, now: datetime, outbound: OutboundRules) -> Admission:
    """A bundle from git is read here, once: the rollout is given the commit that was checked."""
    from regatta.formats.bundle_file import BundleFileError, resolve

    try:  # inline manifests: only the revision is worked out; a git source is read, under the outbound rules
        bundle = resolve(request, base=None, outbound=outbound)[0]
    except BundleFileError as error:
        raise StartRefused(str(error), kind="invalid") from None
    clusters = {c.name: c for c in inventory.list_clusters()}
    previous = inventory.placement(bundle.name) if bundle.placement is not None else None
    plan = bundle_targets.plan_policy(bundle, list(clusters.values()), now=now, previous=previous)
    touched = frozenset(clusters[c.name].environment for stage in plan.stages for c in stage.clusters)
    return Admission(WorkflowName.POLICY_ROLLOUT, operation_ids.policy_id(bundle.name), None, touched, policy_plan=plan, bundle=bundle)


def _decommission(request: DecommissionClusterInput, *, inventory: Inventory) -> Admission:
    record = inventory.get_cluster(request.cluster)
    blockers = decommissioning.decommission_blockers(record.labels)
    where = frozenset({record.environment})
    if blockers:
        raise StartRefused(f"{record.name} cannot be decommissioned: " + "; ".join(blockers), kind="conflict",
                           environments=where)
    if request.force_empty and not (request.force_reason or "").strip():
        raise StartRefused("--force-empty (force_empty) needs --reason (force_reason) saying why the workloads may go",
                           kind="invalid",
                           environments=where)
    placed = placement.placed_on(inventory.placements(), record.name)
    if placed and not request.evacuate:
        raise StartRefused(f"{record.name} runs placed applications ({', '.join(d.app for d in placed)}): pass --evacuate"
                           " (evacuate) to move them to other clusters first, or run `regatta cluster evacuate"
                           f" {record.name}`", kind="conflict", environments=where)
    return Admission(WorkflowName.DECOMMISSION_CLUSTER, operation_ids.operation_id(record.name), record,
                     frozenset({record.environment}))


def _evacuate(request: EvacuateClusterInput, *, inventory: Inventory) -> Admission:
    """Something must be placed there; the evacuation acts on every cluster the moves give replicas to."""
    record = inventory.get_cluster(request.cluster)
    placed = placement.placed_on(inventory.placements(), record.name)
    if not placed:
        raise StartRefused(f"no placed application runs on {record.name}: nothing to evacuate (`regatta placement list`"
                           " shows where each runs)", kind="conflict", environments=frozenset({record.environment}))
    clusters = {c.name: c.environment for c in inventory.list_clusters()}
    touched = {record.environment} | {clusters[s.cluster] for d in placed for s in d.chosen if s.cluster in clusters}
    return Admission(WorkflowName.EVACUATE_CLUSTER, operation_ids.evacuate_id(record.name), record, frozenset(touched))


def _disaster_recovery(request: DRFailoverInput | DRFailbackInput, *, inventory: Inventory) -> Admission:
    pair = inventory.dr_pair(request.cluster)
    record = inventory.get_cluster(request.cluster)
    standby = inventory.get_cluster(pair.standby)
    where = frozenset({record.environment, standby.environment})
    if isinstance(request, DRFailoverInput):
        if pair.standby != request.standby:
            raise StartRefused(f"the standby of {request.cluster} is {pair.standby}, not {request.standby}",
                               kind="conflict", environments=where)
        if pair.serving == "standby" and not request.drill:
            raise StartRefused(f"{pair.standby} already serves {request.cluster}'s workloads; fail back first:"
                               f" regatta failback {request.cluster}", kind="conflict", environments=where)
        workflow = WorkflowName.DR_FAILOVER
    else:
        if pair.serving != "standby":
            raise StartRefused(f"{request.cluster} serves its own workloads already; there is nothing to fail back",
                               kind="conflict", environments=where)
        workflow = WorkflowName.DR_FAILBACK
    if request.override_capacity is not None and not request.override_capacity.strip():
        raise StartRefused("--override-capacity (override_capacity) needs a reason saying why the standby may be too small", kind="invalid",
                           environments=where)
    return Admission(workflow, operation_ids.operation_id(record.name), record, where)
