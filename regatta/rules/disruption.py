"""PodDisruptionBudgets and drains: how many pods a budget lets go, whether it can ever let one go,
which nodes drain together, which pods a drain evicts, and the escalation ladder a blocked drain
follows (tell the owner, ask for an approval, delete).

Pure: called by ClusterUpgrade, the drain code in `regatta.kube` and the unit tests. The simulator
keeps its own arithmetic, so a bug here cannot pass on both sides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from regatta.models import BlockedPod, DrainPolicy, NodeState, PdbState, PodOnNode
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal


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


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector (as JSON: matchLabels, matchExpressions) selects these labels, as a
    PodDisruptionBudget's selects pods in policy/v1: a null selector selects nothing, an empty one everything in
    the namespace, and every requirement must hold (In, NotIn, Exists, DoesNotExist; NotIn and DoesNotExist
    hold for a label that is absent). An operator it does not know selects nothing."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator, values = requirement.get("key"), requirement.get("operator"), requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def drain_refusals(pods: Iterable[PodOnNode], *, delete_unmanaged: bool, delete_emptydir: bool) -> list[str]:
    """What `kubectl drain --ignore-daemonsets` refuses to evict without --force or --delete-emptydir-data, each
    reason with the pods it holds, before anything is evicted. Its filters in its order: DaemonSet pods and
    static pods' mirrors are passed over; a pod that already finished goes whatever it holds; then a pod with
    emptyDir data, then a pod no controller will recreate. Empty when the drain may go ahead."""
    local, unmanaged = [], []
    for pod in pods:
        if pod.controller_kind == "DaemonSet" or pod.mirror or pod.phase in ("Succeeded", "Failed"):
            continue
        if pod.emptydir and not delete_emptydir:
            local.append(pod.name)
        elif pod.controller_kind is None and not delete_unmanaged:
            unmanaged.append(pod.name)
    found = []
    if local:
        found.append("cannot delete Pods with local storage (their emptyDir data goes with them; start with"
                     f" drain_emptydir_data to evict them anyway, as kubectl drain --delete-emptydir-data): {', '.join(local)}")
    if unmanaged:
        found.append("cannot delete Pods that declare no controller (nothing recreates them; start with drain_unmanaged_pods"
                     f" to delete them anyway, as kubectl drain --force): {', '.join(unmanaged)}")
    return found


def is_evictable(*, owner_kinds: Sequence[str], annotations: dict[str, str], phase: str) -> bool:
    """What `kubectl drain --ignore-daemonsets` evicts: not DaemonSet pods, not static (mirror)
    pods, not pods that already finished."""
    if "DaemonSet" in owner_kinds:
        return False
    if "kubernetes.io/config.mirror" in annotations:
        return False
    return phase not in ("Succeeded", "Failed")
