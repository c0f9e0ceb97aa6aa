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

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta import planning


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
    return planning.is_evictable(
        owner_kinds=[o.kind for o in pod.metadata.owner_references or []],
        annotations=pod.metadata.annotations or {},
        phase=(pod.status.phase if pod.status else None) or "Running",
    )


def _blocking_budgets(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> list[str]:
    """The budgets covering the pods a drain could not move, with their live numbers."""
    found = []
    policy = k8s.PolicyV1Api(api)
    for namespace in sorted({p.metadata.namespace for p in pods}):
        for budget in policy.list_namespaced_pod_disruption_budget(namespace).items:
            selector = (budget.spec.selector.match_labels or {}) if budget.spec.selector else {}
            if any(all((p.metadata.labels or {}).get(k) == v for k, v in selector.items()) for p in pods if p.metadata.namespace == namespace):
                status = budget.status
                found.append(
                    f"{namespace}/{budget.metadata.name} (allows {status.disruptions_allowed} disruptions:"
                    f" needs {status.desired_healthy} healthy pods, has {status.current_healthy})"
                )
    return found


def drain_node(
    api: k8s.ApiClient,
    node: str,
    *,
    timeout_seconds: float,
    retry_seconds: float,
    on_progress: Callable[[int], None] = lambda evicted: None,
) -> int:
    """Evict every evictable pod from one (already cordoned) node; return how many were evicted."""
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout_seconds
    evicted = 0
    while True:
        pods = [p for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items if _evictable(p)]
        if not pods:
            return evicted
        waiting = []
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
                    continue
                raise
        on_progress(evicted)
        if not waiting:
            continue
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
