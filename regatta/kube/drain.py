"""Cordon and drain, the way `kubectl drain --ignore-daemonsets` does it: first refuse a node that
holds pods a drain would lose for good (pods no controller recreates, emptyDir data) unless the
operator allowed it, before a single eviction; then evict (never delete) each pod through the
policy/v1 eviction subresource so the API server enforces every PodDisruptionBudget, retry what a
budget refuses, and give up after a timeout with a message that names the budget and the pods
holding the node.

The API server's answers are read as kubectl reads them: a 429 whose Status names a DisruptionBudget
cause is a budget; any other 429 is the API server's own throttling (it says when to come back, in
Retry-After) and blocks nothing; a 500 for a pod more than one budget selects will never pass and is
reported as blocked, with that reason; other 5xx are a busy server.

A drain resumes: `drained` lists nodes a previous attempt finished, and evicting from a node
that is already empty does nothing, so a retried activity never drains a node twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.models import PodOnNode
from regatta.rules import disruption

MULTIPLE_BUDGETS = "more than one PodDisruptionBudget"


class DrainBlocked(Exception):
    """Budgets have refused every eviction left on a node for a while: the workflow escalates."""

    def __init__(self, *, node: str, pods: list[k8s.V1Pod], budgets: list[str], budget_refs: list[str],
                 reason: str | None = None):
        super().__init__(reason or f"drain of node {node} blocked by {', '.join(budget_refs) or 'budgets'}")
        self.node, self.pods, self.budgets, self.budget_refs, self.reason = node, pods, budgets, budget_refs, reason


class DrainTimeout(Exception):
    def __init__(self, message: str, *, node: str, pods: list[str], budgets: list[str]):
        super().__init__(message)
        self.node = node
        self.pods = pods
        self.budgets = budgets


class DrainRefused(Exception):
    """The nodes hold pods kubectl drain would not evict without being told to: nothing was evicted."""


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


def _facts(pod: k8s.V1Pod) -> PodOnNode:
    controller = next((o.kind for o in pod.metadata.owner_references or [] if o.controller), None)
    return PodOnNode(name=f"{pod.metadata.namespace}/{pod.metadata.name}", controller_kind=controller,
                     mirror="kubernetes.io/config.mirror" in (pod.metadata.annotations or {}),
                     emptydir=any(v.empty_dir is not None for v in (pod.spec.volumes or []) if pod.spec),
                     phase=(pod.status.phase if pod.status else None) or "Running")


def _pods_on(core: k8s.CoreV1Api, node: str) -> list[k8s.V1Pod]:
    return core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items


def refuse_what_kubectl_would(api: k8s.ApiClient, nodes: Iterable[str], *, delete_unmanaged: bool,
                              delete_emptydir: bool) -> None:
    """Raise DrainRefused, naming the pods, when any of `nodes` holds a pod `kubectl drain` would refuse to
    evict without --force or --delete-emptydir-data (and the operator did not allow it)."""
    core = k8s.CoreV1Api(api)
    pods = [_facts(pod) for node in nodes for pod in _pods_on(core, node)]
    found = disruption.drain_refusals(pods, delete_unmanaged=delete_unmanaged, delete_emptydir=delete_emptydir)
    if found:
        raise DrainRefused("; ".join(found) + ". Nothing was evicted")


def _budget_cause(error: ApiException) -> bool:
    """Whether a 429 from the eviction subresource is a PodDisruptionBudget's (its Status names a
    DisruptionBudget cause) rather than the API server throttling the client."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return False
    causes = ((body.get("details") or {}).get("causes") or []) if isinstance(body, dict) else []
    return any(cause.get("reason") == "DisruptionBudget" for cause in causes)


def _retry_after(error: ApiException, default: float) -> float:
    try:
        return max(0.0, float((error.headers or {}).get("Retry-After", default)))
    except (TypeError, ValueError):
        return default


def _budgets_covering(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> list[tuple[str, str]]:
    """(namespace/name, its live numbers) of every budget that covers one of the pods, its whole selector read."""
    found = []
    policy = k8s.PolicyV1Api(api)
    for namespace in sorted({p.metadata.namespace for p in pods}):
        for budget in policy.list_namespaced_pod_disruption_budget(namespace).items:
            selector = api.sanitize_for_serialization(budget.spec.selector) if budget.spec.selector is not None else None
            if any(disruption.label_selector_matches(selector, p.metadata.labels or {})
                   for p in pods if p.metadata.namespace == namespace):
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
        pods = [p for p in _pods_on(core, node) if _evictable(p)]
        if not pods:
            return evicted
        waiting, refused, multiple, before, throttled = [], [], [], evicted, 0.0
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
                waiting.append(pod)
                if error.status == 429 and _budget_cause(error):
                    refused.append(pod)
                elif error.status == 429:  # the API server's own throttling: come back when it says
                    throttled = max(throttled, _retry_after(error, retry_seconds))
                elif error.status == 500 and MULTIPLE_BUDGETS in (error.body or ""):
                    refused.append(pod)
                    multiple.append(pod)
                elif error.status in (500, 503, 504):
                    continue  # a busy API server: ask again
                else:
                    raise
        on_progress(evicted)
        if not waiting:
            continue
        all_refused = evicted == before and len(refused) == len(waiting)
        blocked_since = (blocked_since or time.monotonic()) if all_refused else None
        reason = _multiple_budgets(api, multiple) if multiple else None
        if blocked_report_after is not None and blocked_since is not None and (
                multiple or time.monotonic() - blocked_since >= blocked_report_after):
            covering = _budgets_covering(api, refused)
            raise DrainBlocked(node=node, pods=refused, budgets=[f"{ref} {numbers}" for ref, numbers in covering],
                               budget_refs=[ref for ref, _ in covering], reason=reason)
        if time.monotonic() >= deadline:
            names = [f"{p.metadata.namespace}/{p.metadata.name}" for p in waiting]
            budgets = [f"{ref} {numbers}" for ref, numbers in _budgets_covering(api, waiting)]
            held_by = reason or (f"PodDisruptionBudget {', '.join(budgets)}" if budgets else "pods that would not leave")
            raise DrainTimeout(
                f"drain of node {node} timed out after {timeout_seconds:g}s: {held_by} kept pods"
                f" {', '.join(names)} on it. Restore the workload's health or relax the budget, then start the"
                f" upgrade again; raise drain_timeout_seconds if the workload is just slow to move",
                node=node, pods=names, budgets=budgets,
            )
        time.sleep(max(retry_seconds, throttled))


def _multiple_budgets(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> str:
    covering = [ref for ref, _ in _budgets_covering(api, pods)]
    names = ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in pods)
    return (f"pods {names} are selected by more than one PodDisruptionBudget ({', '.join(covering)}), which the eviction"
            " API refuses outright (500, not a budget's 429): no retry will move them. Make each pod's budget the only"
            " one that selects it")


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
