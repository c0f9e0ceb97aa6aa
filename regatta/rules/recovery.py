"""Disaster recovery's decisions: does a failover need a second person, can the standby take the
workloads (version, room), how traffic weights move, what to scale, and the RTO and RPO achieved.

Pure: called by DRFailover, DRFailback and the DR code in `regatta.kube`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from regatta.models import NodeState, WorkloadInventory, WorkloadState
from regatta.models.errors import ErrorType
from regatta.rules.decommissioning import SYSTEM_NAMESPACES, is_system_workload
from regatta.rules.refusals import Refusal
from regatta.rules.versions import minor_version

# Annotations on Deployments that carry disaster-recovery state in the cluster itself, so a
# retried step reads what an earlier attempt did instead of guessing.
DR_REPLICAS = "regatta.dev/dr-replicas"  # a standby's pre-deployed copy: run this many on failover


FENCED_REPLICAS = "regatta.dev/fenced-replicas"  # Regatta scaled this to zero to fence it; it ran this many


# Where fencing a primary or a failback needs a second person's approval first, whatever the request says.
APPROVAL_REQUIRED_ENVIRONMENTS = frozenset({"prod", "production"})


# A standby more than one minor version away from the primary may not serve the primary's
# manifests (removed or not yet served API versions), so it does not take over.
MAX_DR_VERSION_DISTANCE = 1


class StandbyNotReady(Refusal):
    error_type = ErrorType.STANDBY_NOT_READY


def dr_needs_approval(environment: str, *, requested: bool, drill: bool = False) -> bool:
    """Fencing is where a failover stops being harmless: prod always asks a second person; other
    environments when the request asks. A drill fences nothing and shifts nothing, so never."""
    return not drill and (requested or environment in APPROVAL_REQUIRED_ENVIRONMENTS)


def version_incompatibility(*, source: str, target: str) -> str | None:
    distance = abs(minor_version(source)[1] - minor_version(target)[1])
    if minor_version(source)[0] != minor_version(target)[0] or distance > MAX_DR_VERSION_DISTANCE:
        return (f"it runs Kubernetes {target} and the workloads come from {source}: more than"
                f" {MAX_DR_VERSION_DISTANCE} minor version apart; upgrade it first")
    return None


def free_pod_slots(nodes: Sequence[NodeState]) -> int:
    """Pods that still fit on Ready, schedulable nodes."""
    return sum(max(0, n.allocatable_pods - n.pods) for n in nodes if n.ready and not n.unschedulable)


def pods_to_place(*, wanted: dict[str, int], present: dict[str, WorkloadState], drill: bool) -> int:
    """New pods the target must find room for: what the source ran, less what already runs
    there under the same name (a drill restores beside them, so it places everything)."""
    needed = 0
    for key, replicas in wanted.items():
        if is_system_workload(key):
            continue
        running = 0 if drill or key not in present else present[key].replicas
        needed += max(0, replicas - running)
    return needed


def capacity_shortfall(*, needed: int, free: int, pods_per_node: int) -> str | None:
    if needed <= free:
        return None
    missing = needed - free
    nodes = math.ceil(missing / pods_per_node) if pods_per_node else missing
    return (f"it has room for {free} more pods but the workloads need {needed}: short by {missing} pods"
            f" (about {nodes} more node{'s' if nodes != 1 else ''} of {pods_per_node} pods)")


def target_problems(*, name: str, health: Sequence[str], source_version: str, target_version: str,
                    shortfall: str | None, override_capacity: str | None) -> list[str]:
    """Why `name` cannot take the workloads over; empty when it can. A capacity shortfall is
    forgiven only with a reason (the override), because restoring into too little room leaves
    pods Pending and the service down on both sides."""
    problems = [f"{name} is not healthy: {'; '.join(health[:5])}" + (f" (+{len(health) - 5} more)" if len(health) > 5 else "")
                ] if health else []
    if (version := version_incompatibility(source=source_version, target=target_version)) is not None:
        problems.append(f"{name} is not on a compatible version: {version}")
    if shortfall and not (override_capacity or "").strip():
        problems.append(f"{name} is too small: {shortfall}. Add nodes, or override with a reason"
                        " (CLI: --override-capacity REASON)")
    return problems


def shifted_weights(weights: dict[str, int], *, source: str, target: str) -> dict[str, int] | None:
    """The weights with the source's share moved to the target, or None when the source gets
    nothing already (so a second shift, or a retried one, changes nothing)."""
    if weights.get(source, 0) <= 0:
        return None
    shifted = dict(weights)
    shifted[target] = shifted.get(target, 0) + shifted[source]
    shifted[source] = 0
    return shifted


def scale_up_plan(*, wanted: dict[str, int], present: dict[str, WorkloadState]) -> dict[str, int]:
    """Pre-deployed copies on the standby to scale up, and to how many: what the primary ran
    when the backup was taken, or the copy's own dr-replicas note when the backup does not say."""
    plan = {}
    for key, state in present.items():
        if state.dr_replicas is None or is_system_workload(key):
            continue
        replicas = wanted.get(key, state.dr_replicas)
        if state.replicas < replicas:
            plan[key] = replicas
    return plan


def drill_namespaces(namespaces: Iterable[str]) -> dict[str, str]:
    """Where a drill restores each namespace: beside the real ones, never over them."""
    return {ns: f"dr-drill-{ns}"[:63] for ns in sorted(set(namespaces)) if ns not in SYSTEM_NAMESPACES}


def warm_standby_plan(present: WorkloadInventory) -> tuple[dict[str, int], list[str], list[str]]:
    """How a standby goes back to waiting after failback: pre-deployed copies to zero (their
    fence note dropped), and what the failover's restore created removed: the namespaces it
    created whole, and Deployments it restored into namespaces that were there before."""
    to_zero = {key: 0 for key, state in present.deployments.items() if state.dr_replicas is not None}
    namespaces = sorted(present.restored_namespaces)
    deployments = sorted(key for key, state in present.deployments.items()
                         if state.restored_by and state.dr_replicas is None and key.split("/", 1)[0] not in namespaces)
    return to_zero, namespaces, deployments


def recovery_objectives(*, started: datetime, verified: datetime, backup_completed: datetime | None,
                        writes_stopped: datetime | None = None) -> tuple[float, float | None]:
    """RTO: from the start of the operation until the workloads were verified on the target.
    RPO: how much was written after the restored backup was taken, up to the moment writes
    stopped (the fence) or, unfenced, the moment the operation started."""
    rto = max(0.0, (verified - started).total_seconds())
    if backup_completed is None:
        return rto, None
    return rto, max(0.0, ((writes_stopped or started) - backup_completed).total_seconds())
