"""PodDisruptionBudgets and drains: how many pods a budget lets go, whether it can ever let one go,
which nodes drain together, which pods a drain evicts, and the escalation ladder a blocked drain
follows (tell the owner, ask for an approval, delete).

Pure: called by ClusterUpgrade, the drain code in `regatta.kube` and the unit tests. The simulator
keeps its own arithmetic, so a bug here cannot pass on both sides.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence

from regatta.models import BlockedPod, DrainPolicy, NodeState, PdbState
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal
from regatta.rules.versions import parse_target_version


class UnsatisfiablePdb(Refusal):
    error_type = ErrorType.UNSATISFIABLE_PDB


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
        raise Refusal("max_unavailable must be at least 1")
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
