"""Cordon and drain, the way `kubectl drain --ignore-daemonsets` does it: evict (never delete)
each pod through the policy/v1 eviction subresource so the API server enforces every
PodDisruptionBudget, retry what a budget refuses, and give up after a timeout with a message
that names the budget and the pods holding the node.

A drain resumes: `drained` lists nodes a previous attempt finished, and evicting from a node
that is already empty does nothing, so a retried activity never drains a node twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.rules import disruption


class DrainBlocked(Exception):
    """Budgets have refused every eviction left on a node for a while: the workflow escalates."""

    def __init__(self, *, node: str, pods: list[k8s.V1Pod], budgets: list[str], budget_refs: list[str]):
        super().__init__(f"drain of node {node} blocked by {', '.join(budget_refs) or 'budgets'}")
        self.node, self.pods, self.budgets, self.budget_refs = node, pods, budgets, budget_refs


class DrainTimeout(Exception):
    def __init__(self, message: str, *, node: str, pods: list[str], budgets: list[str]):
        super().__init__(message)
        self.node = node
        self.pods = pods
        self.budgets = budgets


def cordon(api: k8s.ApiClient, nodes: Iterable[str], *, unschedulable: bool = True) -> list[str]:
    """Mark nodes (un)schedulable; nodes that no longer exist are skipped and not returned."""
    core = k8s.CoreV1Api(api)
    changed = []
    for name in nodes:
        try:
            core.patch_node(name, {"spec": {"unschedulable": unschedulable}})
            changed.append(name)
        except ApiException as error:
            if error.status != 404:
                raise
    return changed


def _evictable(pod: k8s.V1Pod) -> bool:
    return disruption.is_evictable(
        owner_kinds=[o.kind for o in pod.metadata.owner_references or []],
        annotations=pod.metadata.annotations or {},
        phase=(pod.status.phase if pod.status else None) or "Running",
    )


def _blocking_budgets(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> list[str]:
    """The budgets covering the pods a drain could not move, with their live numbers."""
    return [f"{ref} {numbers}" for ref, numbers in _budgets_covering(api, pods)]


def _budgets_covering(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> list[tuple[str, str]]:
    """(namespace/name, its live numbers) of every budget that covers one of the pods."""
    found = []
    policy = k8s.PolicyV1Api(api)
    for namespace in sorted({p.metadata.namespace for p in pods}):
        for budget in policy.list_namespaced_pod_disruption_budget(namespace).items:
            selector = (budget.spec.selector.match_labels or {}) if budget.spec.selector else {}
            if any(all((p.metadata.labels or {}).get(k) == v for k, v in selector.items()) for p in pods if p.metadata.namespace == namespace):
                status = budget.status
                found.append((f"{namespace}/{budget.metadata.name}",
                              f"(allows {status.disruptions_allowed} disruptions: needs {status.desired_healthy} healthy"
                              f" pods, has {status.current_healthy})"))
    return found


def drain_node(
    api: k8s.ApiClient,
    node: str,
    *,
    timeout_seconds: float,
    retry_seconds: float,
    on_progress: Callable[[int], None] = lambda evicted: None,
    blocked_report_after: float | None = None,
) -> int:
    """Evict every evictable pod from one (already cordoned) node; return how many were evicted.
    With `blocked_report_after`, raise DrainBlocked once budgets have refused every pod left for
    that long (instead of waiting for the timeout), so the caller can escalate."""
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout_seconds
    evicted = 0
    blocked_since: float | None = None
    while True:
        pods = [p for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items if _evictable(p)]
        if not pods:
            return evicted
        waiting, refused, before = [], [], evicted
        for pod in pods:
            if pod.metadata.deletion_timestamp:  # already leaving; wait for it like kubectl does
                waiting.append(pod)
                continue
            body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=pod.metadata.name, namespace=pod.metadata.namespace))
            try:
                core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body)
                evicted += 1
            except ApiException as error:
                if error.status == 404:
                    continue
                if error.status in (429, 500, 503):  # a budget says not yet, or the API server is busy
                    waiting.append(pod)
                    if error.status == 429:
                        refused.append(pod)
                    continue
                raise
        on_progress(evicted)
        if not waiting:
            continue
        all_refused = evicted == before and len(refused) == len(waiting)
        blocked_since = (blocked_since or time.monotonic()) if all_refused else None
        if blocked_report_after is not None and blocked_since is not None \
                and time.monotonic() - blocked_since >= blocked_report_after:
            covering = _budgets_covering(api, refused)
            raise DrainBlocked(node=node, pods=refused, budgets=[f"{ref} {numbers}" for ref, numbers in covering],
                               budget_refs=[ref for ref, _ in covering])
        if time.monotonic() >= deadline:
            names = [f"{p.metadata.namespace}/{p.metadata.name}" for p in waiting]
            budgets = _blocking_budgets(api, waiting)
            held_by = f"PodDisruptionBudget {', '.join(budgets)}" if budgets else "pods that would not leave"
            raise DrainTimeout(
                f"drain of node {node} timed out after {timeout_seconds:g}s: {held_by} kept pods"
                f" {', '.join(names)} on it. Restore the workload's health or relax the budget, then start the"
                f" upgrade again; raise drain_timeout_seconds if the workload is just slow to move",
                node=node, pods=names, budgets=budgets,
            )
        time.sleep(retry_seconds)


def delete_pods(api: k8s.ApiClient, pods: Iterable[str]) -> list[str]:
    """Delete pods ("namespace/name") without asking their budgets: only an approved escalation
    does this. Pods already gone are skipped; the ones deleted are returned."""
    core = k8s.CoreV1Api(api)
    deleted = []
    for ref in pods:
        namespace, _, name = ref.partition("/")
        try:
            core.delete_namespaced_pod(name, namespace)
            deleted.append(ref)
        except ApiException as error:
            if error.status != 404:
                raise
    return deleted


def record_event(api: k8s.ApiClient, *, namespace: str, name: str, kind: str, object_name: str, reason: str,
                 message: str) -> None:
    """A Warning Event on an object (a PodDisruptionBudget), where its owners look; the same
    name twice is one Event, so a retried activity does not say it twice."""
    now = datetime.now(UTC)
    api_version = "policy/v1" if kind == "PodDisruptionBudget" else "v1"
    event = k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
        involved_object=k8s.V1ObjectReference(kind=kind, name=object_name, namespace=namespace, api_version=api_version),
        reason=reason, message=message[:1024], type="Warning", first_timestamp=now, last_timestamp=now, count=1,
        source=k8s.V1EventSource(component="regatta"), reporting_component="regatta")
    try:
        k8s.CoreV1Api(api).create_namespaced_event(namespace, event)
    except ApiException as error:
        if error.status != 409:
            raise
