"""Reading a cluster's state from its API: nodes (pool, kubelet version, Ready, cordoned,
pod count, allocatable CPU and memory and what the pods on them request), PodDisruptionBudgets
with their live status, and deployment readiness."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity
from urllib3.exceptions import HTTPError

from regatta.clouds.base import CloudError
from regatta.clouds.kubeconfig import POOL_LABELS
from regatta.models import NodeState, PdbState
from regatta.rules import readiness


@dataclass(frozen=True)
class ClusterHealth:
    api_ready: bool
    nodes: list[NodeState]
    pdbs: list[PdbState]
    deployments: list[tuple[str, int, int]]  # (namespace/name, desired, ready)


def api_ready(api: k8s.ApiClient) -> bool:
    """/readyz answers 200 when the API server is ready and 500 when it is not. A 429 only
    says we asked too often, so it is raised for the caller's retry, not read as "not ready"."""
    try:
        api.call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=10)
        return True
    except ApiException as error:
        if error.status == 429:
            raise
        return False
    except HTTPError:
        return False


def _millicores(text: str | None) -> int:
    return math.ceil(parse_quantity(text or "0") * 1000)


def _mebibytes(text: str | None) -> int:
    return math.ceil(parse_quantity(text or "0") / 2**20)


def answering_client(connect: Callable[[], k8s.ApiClient], *, timeout_seconds: float, poll_interval_seconds: float,
                     on_poll: Callable[[str], None]) -> tuple[k8s.ApiClient | None, str]:
    """A client for a cluster whose API server answers ready, trying until the timeout: reaching it
    may fail at the cloud (its endpoint cannot be read) or at the API server. (None, why) when it
    never answered: a lost cluster, or one whose region is cut off. A refusal is raised at once."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            api = connect()
            if api_ready(api):
                return api, ""
            why = "its API server does not answer ready"
        except CloudError as error:
            if not error.retryable:
                raise
            why = str(error)
        if time.monotonic() >= deadline:
            return None, why
        on_poll(f"waiting for the cluster to answer: {why}")
        time.sleep(poll_interval_seconds)


def read_nodes(api: k8s.ApiClient) -> list[NodeState]:
    core = k8s.CoreV1Api(api)
    pods_per_node: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    for pod in core.list_pod_for_all_namespaces().items:
        if not pod.spec.node_name or (pod.status and pod.status.phase in ("Succeeded", "Failed")):
            continue
        pods_per_node[pod.spec.node_name] += 1
        for container in pod.spec.containers or []:
            requests = (container.resources.requests if container.resources else None) or {}
            cpu[pod.spec.node_name] += _millicores(requests.get("cpu"))
            memory[pod.spec.node_name] += _mebibytes(requests.get("memory"))
    nodes = []
    for node in core.list_node().items:
        labels = node.metadata.labels or {}
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        nodes.append(NodeState(
            name=node.metadata.name,
            pool=next((labels[key] for key in POOL_LABELS if key in labels), "default"),
            version=node.status.node_info.kubelet_version,
            ready=ready,
            unschedulable=bool(node.spec.unschedulable),
            pods=pods_per_node.get(node.metadata.name, 0),
            allocatable_pods=int((node.status.allocatable or {}).get("pods", "0")),
            cpu_allocatable_m=_millicores((node.status.allocatable or {}).get("cpu")),
            memory_allocatable_mi=_mebibytes((node.status.allocatable or {}).get("memory")),
            cpu_requested_m=cpu.get(node.metadata.name, 0),
            memory_requested_mi=memory.get(node.metadata.name, 0),
        ))
    return nodes


def read_pdbs(api: k8s.ApiClient) -> list[PdbState]:
    budgets = k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces().items
    return [
        PdbState(
            namespace=b.metadata.namespace, name=b.metadata.name,
            min_available=b.spec.min_available, max_unavailable=b.spec.max_unavailable,
            expected_pods=b.status.expected_pods if b.status else 0,
            current_healthy=b.status.current_healthy if b.status else 0,
            disruptions_allowed=b.status.disruptions_allowed if b.status else 0,
        )
        for b in budgets
    ]


def read_deployments(api: k8s.ApiClient) -> list[tuple[str, int, int]]:
    return [
        (f"{d.metadata.namespace}/{d.metadata.name}", d.spec.replicas or 0, (d.status.ready_replicas or 0) if d.status else 0)
        for d in k8s.AppsV1Api(api).list_deployment_for_all_namespaces().items
    ]


def read_health(api: k8s.ApiClient) -> ClusterHealth:
    ready = api_ready(api)
    return ClusterHealth(api_ready=ready, nodes=read_nodes(api), pdbs=read_pdbs(api), deployments=read_deployments(api))


def current_problems(api: k8s.ApiClient, *, min_ready_nodes: int = 0) -> list[str]:
    """What a health gate waits on right now. An API that cannot answer is one more problem
    to wait out, not a reason to fail the gate early."""
    try:
        state = read_health(api)
    except (ApiException, HTTPError) as error:
        if getattr(error, "status", None) in (401, 403):
            raise  # no amount of waiting fixes a refusal
        return [f"the API server did not answer: {str(error).splitlines()[0]}"]
    problems = readiness.health_problems(nodes=state.nodes, deployments=state.deployments, api_ready=state.api_ready)
    ready = sum(1 for node in state.nodes if node.ready)
    if ready < min_ready_nodes:
        problems.insert(0, f"{ready} of {min_ready_nodes} nodes are Ready")
    return problems


def wait_until_healthy(api: k8s.ApiClient, *, timeout_seconds: float, poll_interval_seconds: float,
                       on_poll: Callable[[list[str]], None], min_ready_nodes: int = 0) -> list[str]:
    """Poll until the cluster has no health problem; the problems still there when time ran out
    (empty: healthy)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        problems = current_problems(api, min_ready_nodes=min_ready_nodes)
        on_poll(problems)
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(poll_interval_seconds)
