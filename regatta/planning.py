"""Pure decisions of fleet operations: is a version jump legal, does it break skew, can a
PodDisruptionBudget ever allow an eviction, which nodes drain together and in what order.

No I/O and no Temporal here (an import-linter contract checks it), so workflows can call
these deterministically and unit tests can call them directly. The simulator uses the same
PDB arithmetic, so what Regatta predicts and what the fake API server enforces cannot drift.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from regatta.models import BlockedPod, DrainPolicy, NodePool, NodeState, PdbState, WorkloadInventory, WorkloadState

# Kubernetes' version-skew policy (since 1.28): a kubelet may be up to three minor versions
# older than the API server and never newer.
MAX_KUBELET_SKEW = 3
SUPPORTED_MINORS = range(26, 36)  # 1.26 … 1.35: what the clouds we drive still offer


class PlanningError(ValueError):
    """A request that no retry can fix. `error_type` becomes the ApplicationError type."""

    error_type = "InvalidRequest"


class InvalidVersion(PlanningError):
    error_type = "InvalidVersion"


class IllegalVersionJump(PlanningError):
    error_type = "IllegalVersionJump"


class AlreadyAtVersion(PlanningError):
    error_type = "AlreadyAtVersion"


class InvalidNodeImage(PlanningError):
    error_type = "InvalidNodeImage"


class SkewViolation(PlanningError):
    error_type = "SkewViolation"


class UnsatisfiablePdb(PlanningError):
    error_type = "UnsatisfiablePdb"


def operation_id(cluster: str) -> str:
    """The workflow id of every mutating operation on a cluster. Temporal runs at most one
    workflow per id at a time, which is what keeps two operations off one cluster (DESIGN rule 5)."""
    return f"cluster-{cluster}"


def wave_id(name: str) -> str:
    """The workflow id of a PatchWave: one wave of a name runs at a time (a schedule's runs add a timestamp)."""
    return f"wave-{name}"


# --------------------------------------------------------------------------- versions

_TARGET = re.compile(r"^(\d+)\.(\d+)$")
_OBSERVED = re.compile(r"^v?(\d+)\.(\d+)(?:[.\-+].*)?$")


def parse_target_version(value: str) -> tuple[int, int]:
    """A target an operator typed: exactly `MAJOR.MINOR`, within the supported range."""
    match = _TARGET.match(value.strip())
    if not match:
        raise InvalidVersion(f"target version {value!r} is not of the form MAJOR.MINOR, for example 1.31")
    major, minor = int(match[1]), int(match[2])
    if major != 1 or minor not in SUPPORTED_MINORS:
        raise InvalidVersion(
            f"target version {value} is not supported; choose one of 1.{SUPPORTED_MINORS.start}"
            f" to 1.{SUPPORTED_MINORS.stop - 1}"
        )
    return major, minor


def minor_version(value: str) -> tuple[int, int]:
    """A version a cluster reports: `1.30`, `v1.30.4`, `v1.30.4-eks-a1b2c3`."""
    match = _OBSERVED.match(value.strip())
    if not match:
        raise InvalidVersion(f"cannot read a Kubernetes version from {value!r}")
    return int(match[1]), int(match[2])


def format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class UpgradeScope:
    """What an upgrade to a target has left to do on one cluster."""

    control_plane: bool
    node_pools: tuple[str, ...]


def plan_upgrade_scope(*, control_plane: str, node_pools: Sequence[NodePool], target: str,
                       node_image: str | None = None) -> UpgradeScope:
    """Refuse an illegal jump; otherwise say which parts still need the target version (and,
    when one is asked for, the target node image).

    Legal: the control plane is exactly one minor below the target, or already at it with
    node pools behind (finishing an upgrade that stopped half way, or a new node image).
    """
    wanted = parse_target_version(target)
    current = minor_version(control_plane)
    behind = tuple(pool.name for pool in node_pools
                   if minor_version(pool.version) < wanted or (node_image is not None and pool.node_image != node_image))
    ahead = [pool for pool in node_pools if minor_version(pool.version) > wanted]
    if wanted < current or ahead:
        raise IllegalVersionJump(
            f"{target} is older than what the cluster runs (control plane {control_plane}"
            + (f", node pool {ahead[0].name} at {ahead[0].version}" if ahead else "")
            + "); Kubernetes cannot be downgraded in place"
        )
    if wanted == current:
        if not behind:
            on = f" on node image {node_image}" if node_image is not None else ""
            raise AlreadyAtVersion(f"the control plane and every node pool already run {target}{on}; nothing to do")
        return UpgradeScope(control_plane=False, node_pools=behind)
    if wanted[1] != current[1] + 1:
        step = format_version((current[0], current[1] + 1))
        raise IllegalVersionJump(
            f"the control plane runs {format_version(current)} and may move one minor version at a time;"
            f" upgrade to {step} first, then to {target}"
        )
    lagging = [pool for pool in node_pools if wanted[1] - minor_version(pool.version)[1] > MAX_KUBELET_SKEW]
    if lagging:
        floor = format_version((wanted[0], wanted[1] - MAX_KUBELET_SKEW))
        names = ", ".join(f"{pool.name} ({pool.version})" for pool in lagging)
        raise SkewViolation(
            f"node pools {names} would be more than {MAX_KUBELET_SKEW} minor versions behind a {target}"
            f" control plane; upgrade them to at least {floor} with target {format_version(current)} first"
        )
    return UpgradeScope(control_plane=True, node_pools=behind)


def node_image_problem(provider: str, image: str, target: str) -> str | None:
    """Why `image` cannot be a node image for `target` on `provider`'s clusters, if it cannot."""
    if provider == "kubeconfig":
        return "clusters on your own hardware (kubeconfig) have no cloud node image to roll; leave kubeconfig out"
    if not image.strip():
        return f"give the {provider} node image, e.g. {NODE_IMAGE_EXAMPLES[provider]}"
    if provider in ("eks", "gke") and not image.startswith(f"{target}."):
        return (f"{image} is not a node image of Kubernetes {target} on {provider.upper()}; it starts with the version,"
                f" e.g. {NODE_IMAGE_EXAMPLES[provider]}")
    return None


NODE_IMAGE_EXAMPLES = {"eks": "1.31.2-20261101 (an AMI release version)", "gke": "1.31.5-gke.1200 (a node version)",
                       "aks": "AKSUbuntu-2204gen2containerd-202611.20.0 (a node image version)"}


def plan_upgrade(*, provider: str, control_plane: str, node_pools: Sequence[NodePool], target: str,
                 node_image: str | None = None) -> UpgradeScope:
    """What an upgrade to `target` (and `node_image`, if asked) has to do, or why it cannot: the
    one judgement the CLI, the API and the workflow's preflight all make."""
    if node_image is not None and (problem := node_image_problem(provider, node_image, target)) is not None:
        raise InvalidNodeImage(problem)
    return plan_upgrade_scope(control_plane=control_plane, node_pools=node_pools, target=target, node_image=node_image)


def skew_violations(*, control_plane: str, node_versions: dict[str, str]) -> list[str]:
    """Every node whose kubelet breaks the skew policy against this control plane."""
    cp = minor_version(control_plane)
    found = []
    for node, version in sorted(node_versions.items()):
        kubelet = minor_version(version)
        if kubelet > cp:
            found.append(f"node {node}: kubelet {version} is newer than control plane {control_plane}")
        elif cp[1] - kubelet[1] > MAX_KUBELET_SKEW:
            found.append(
                f"node {node}: kubelet {version} is more than {MAX_KUBELET_SKEW} minors behind control plane {control_plane}"
            )
    return found


# --------------------------------------------------------------------------- PodDisruptionBudgets


def _scaled(value: int | str, total: int) -> int:
    """IntOrString as Kubernetes scales it for PDBs: percentages of the expected pods, rounded up."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text)


def pdb_desired_healthy(*, min_available: int | str | None, max_unavailable: int | str | None, expected_pods: int) -> int:
    """How many pods the budget insists stay healthy (the PDB controller's desiredHealthy)."""
    if max_unavailable is not None:
        return max(0, expected_pods - _scaled(max_unavailable, expected_pods))
    if min_available is not None:
        return _scaled(min_available, expected_pods)
    return 0


def pdb_disruptions_allowed(
    *, min_available: int | str | None, max_unavailable: int | str | None, expected_pods: int, current_healthy: int
) -> int:
    desired = pdb_desired_healthy(min_available=min_available, max_unavailable=max_unavailable, expected_pods=expected_pods)
    return max(0, current_healthy - desired)


def pdb_never_allows_eviction(pdb: PdbState) -> str | None:
    """Why this budget can never let a drain through even with every pod healthy, or None."""
    if pdb.expected_pods == 0:
        return None
    desired = pdb_desired_healthy(
        min_available=pdb.min_available, max_unavailable=pdb.max_unavailable, expected_pods=pdb.expected_pods
    )
    if desired < pdb.expected_pods:
        return None
    rule = f"maxUnavailable={pdb.max_unavailable}" if pdb.max_unavailable is not None else f"minAvailable={pdb.min_available}"
    return (
        f"PodDisruptionBudget {pdb.namespace}/{pdb.name} ({rule}) needs all {pdb.expected_pods} of its pods"
        f" healthy, so no pod it covers can ever be evicted"
    )


def refuse_unsatisfiable_pdbs(pdbs: Iterable[PdbState]) -> None:
    reasons = [reason for pdb in pdbs if (reason := pdb_never_allows_eviction(pdb))]
    if reasons:
        raise UnsatisfiablePdb(
            "; ".join(reasons)
            + ". A drain would wait forever: scale the workload up or relax the budget, then start the upgrade again"
        )


# --------------------------------------------------------------------------- fleet rules for new clusters

ALLOWED_REGIONS = {
    "eks": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"),
    "gke": ("us-central1", "us-east1", "europe-west1", "europe-west4", "asia-southeast1"),
    "aks": ("eastus", "eastus2", "westus2", "westeurope", "northeurope", "australiaeast"),
}
MAX_NODE_POOLS = 10
NODES_PER_POOL = range(1, 101)
_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9-]{2,38}[a-z0-9]$")
_POOL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


class FleetRuleViolation(PlanningError):
    error_type = "FleetRuleViolation"


def fleet_rule_violations(
    *, name: str, provider: str, region: str, version: str, pools: Sequence[tuple[str, int]], taken: bool
) -> list[str]:
    """Every rule a new cluster breaks, each saying what to change. Empty when it may be built."""
    problems = []
    if not _CLUSTER_NAME.match(name):
        problems.append(f"name {name!r} must be 4-40 characters of lowercase letters, digits and '-', starting with a letter")
    if taken:
        problems.append(f"a cluster named {name} is already in the inventory; choose another name")
    if provider not in ALLOWED_REGIONS:
        problems.append(f"provider {provider!r} cannot create clusters; use one of {', '.join(ALLOWED_REGIONS)}")
    elif region not in ALLOWED_REGIONS[provider]:
        problems.append(f"region {region!r} is not allowed for {provider}; allowed: {', '.join(ALLOWED_REGIONS[provider])}")
    try:
        parse_target_version(version)
    except InvalidVersion as error:
        problems.append(str(error))
    if not pools:
        problems.append("at least one node pool is required")
    if len(pools) > MAX_NODE_POOLS:
        problems.append(f"at most {MAX_NODE_POOLS} node pools, not {len(pools)}")
    names = [pool for pool, _ in pools]
    for pool, count in pools:
        if not _POOL_NAME.match(pool):
            problems.append(f"node pool name {pool!r} must be lowercase letters, digits and '-', starting with a letter")
        if count not in NODES_PER_POOL:
            problems.append(f"node pool {pool} asks for {count} nodes; allowed {NODES_PER_POOL.start} to {NODES_PER_POOL.stop - 1}")
    if len(set(names)) != len(names):
        problems.append("node pool names must be unique")
    return problems


# --------------------------------------------------------------------------- decommissioning

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "platform", "monitoring", "velero"})


def non_system_workloads(deployments: Sequence[tuple[str, int, int]]) -> list[str]:
    """Deployments with replicas outside the namespaces the platform itself runs."""
    return [f"{name} ({desired} replicas)" for name, desired, _ in deployments
            if desired > 0 and name.split("/", 1)[0] not in SYSTEM_NAMESPACES]


def decommission_blockers(labels: dict[str, str]) -> list[str]:
    """Roles that forbid deleting a cluster, as the inventory labels them until traffic and DR
    records of their own exist: `traffic=serving`, and `dr-role=<primary|standby>`."""
    blockers = []
    if labels.get("traffic") == "serving":
        blockers.append("it serves traffic (label traffic=serving); shift its traffic away and relabel it first")
    if labels.get("dr-role"):
        blockers.append(f"it holds the DR role {labels['dr-role']!r}; hand the role to another cluster first")
    return blockers


# --------------------------------------------------------------------------- node pools and drains


_REPLACEMENT_SUFFIX = re.compile(r"-v\d+-\d+(-i[0-9a-f]{6})?$")


def replacement_pool_name(pool: str, target: str, node_image: str | None = None) -> str:
    """The blue/green pool that replaces `pool`: `general` → `general-v1-31`, `general-v1-30` →
    `general-v1-31`; onto a node image, a short digest of it tells the new pool from the old one
    at the same version: `general-v1-31` → `general-v1-31-i4f2a9c`."""
    major, minor = parse_target_version(target)
    name = f"{_REPLACEMENT_SUFFIX.sub('', pool)}-v{major}-{minor}"
    if node_image is not None:
        name += f"-i{hashlib.sha256(node_image.encode()).hexdigest()[:6]}"
    return name


def plan_drain_batches(nodes: Sequence[NodeState], *, max_unavailable: int) -> list[list[str]]:
    """Batches of at most `max_unavailable` nodes, emptiest first: evicting from the quietest
    nodes while the replacement capacity warms up moves the fewest pods through the budgets."""
    if max_unavailable < 1:
        raise PlanningError("max_unavailable must be at least 1")
    ordered = sorted(nodes, key=lambda node: (node.pods, node.name))
    return [[node.name for node in ordered[i : i + max_unavailable]] for i in range(0, len(ordered), max_unavailable)]


def drain_policy(policies: Sequence[DrainPolicy], *, node_pool: str, pods: Sequence[BlockedPod]) -> DrainPolicy:
    """The policy a blocked drain follows: the first whose node pools include the node's pool
    (or name none) and whose workload labels are all on one of the blocked pods (or name none);
    the defaults when none matches."""
    for policy in policies:
        if policy.node_pools and node_pool not in policy.node_pools:
            continue
        if policy.workload_labels and not any(
                all(pod.labels.get(key) == value for key, value in policy.workload_labels.items()) for pod in pods):
            continue
        return policy
    return DrainPolicy()


def next_escalation_step(policy: DrainPolicy, *, step: str, blocked_for: float, approved: bool) -> str | None:
    """The step a blocked drain moves to next, one at a time (the owner is always told before an
    approval is asked for), or None while it stays where it is. Asking for an approval happens
    only when the policy may delete the blocking pods; deleting only once approved."""
    if step == "retrying" and blocked_for >= policy.notify_owner_after_seconds:
        return "owner_notified"
    if step == "owner_notified" and policy.delete_blocking_pods and blocked_for >= policy.ask_approval_after_seconds:
        return "awaiting_approval"
    if step == "awaiting_approval" and approved:
        return "deleting_pods"
    return None


def next_escalation_in(policy: DrainPolicy, *, step: str, blocked_for: float) -> float | None:
    """Seconds until the policy's next step is due (None when no later step comes by time)."""
    due = {"retrying": policy.notify_owner_after_seconds,
           "owner_notified": policy.ask_approval_after_seconds if policy.delete_blocking_pods else None}.get(step)
    return None if due is None else max(due - blocked_for, 0)


def drain_blocked_event_name(run_id: str, node: str, budget: str) -> str:
    """The Event telling a budget's owners that it blocks a drain: one per run, node and budget,
    so a retried activity finds the Event it made instead of making a second."""
    return "regatta-drain-blocked-" + hashlib.sha256(f"{run_id}/{node}/{budget}".encode()).hexdigest()[:16]


def is_evictable(*, owner_kinds: Sequence[str], annotations: dict[str, str], phase: str) -> bool:
    """What `kubectl drain --ignore-daemonsets` evicts: not DaemonSet pods, not static (mirror)
    pods, not pods that already finished."""
    if "DaemonSet" in owner_kinds:
        return False
    if "kubernetes.io/config.mirror" in annotations:
        return False
    return phase not in ("Succeeded", "Failed")


def health_problems(
    *, nodes: Sequence[NodeState], deployments: Sequence[tuple[str, int, int]], api_ready: bool
) -> list[str]:
    """What stops a health gate: the API not ready, a node not Ready, a deployment short of replicas.

    Cordoned nodes are not a problem: a blue/green upgrade cordons the old pool on purpose.
    `deployments` holds (namespace/name, desired, ready).
    """
    problems = []
    if not api_ready:
        problems.append("the API server does not answer /readyz")
    problems += [f"node {node.name} is not Ready" for node in nodes if not node.ready]
    problems += [
        f"deployment {name} has {ready}/{desired} replicas ready" for name, desired, ready in deployments if ready < desired
    ]
    return problems


# --------------------------------------------------------------------------- disaster recovery

# Annotations on Deployments that carry disaster-recovery state in the cluster itself, so a
# retried step reads what an earlier attempt did instead of guessing.
DR_REPLICAS = "regatta.dev/dr-replicas"  # a standby's pre-deployed copy: run this many on failover
FENCED_REPLICAS = "regatta.dev/fenced-replicas"  # Regatta scaled this to zero to fence it; it ran this many
# Where fencing a primary or a failback needs a second person's approval first, whatever the request says.
APPROVAL_REQUIRED_ENVIRONMENTS = frozenset({"prod", "production"})
# A standby more than one minor version away from the primary may not serve the primary's
# manifests (removed or not yet served API versions), so it does not take over.
MAX_DR_VERSION_DISTANCE = 1


class StandbyNotReady(PlanningError):
    error_type = "StandbyNotReady"


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


def is_system_workload(key: str) -> bool:
    return key.split("/", 1)[0] in SYSTEM_NAMESPACES


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
