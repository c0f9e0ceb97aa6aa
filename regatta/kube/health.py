"""Reading a cluster's state from its API: nodes (pool, kubelet version, Ready, cordoned,
pod count, allocatable CPU and memory and what the pods on them request), PodDisruptionBudgets
with their live status, and deployment readiness."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from regatta.clouds.base import CloudError
from regatta.clouds.kubeconfig import POOL_LABELS
from regatta.models import NodeState, PdbState
from regatta.rules import health as health_rules
from regatta.rules.quantities import mebibytes, millicores


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


def list_items(api: k8s.ApiClient, path: str, *, served: bool = True) -> list[dict]:
    """A list call's items as the API server sent them. Reading the JSON ourselves skips the
    client's model deserialisation, a large share of a worker's CPU in every health read. With
    `served=False` a kind the API server does not serve (404) lists as none."""
    try:
        response = api.call_api(path, "GET", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                                _return_http_data_only=True, _preload_content=False, _request_timeout=30)
    except ApiException as error:
        if error.status == 404 and not served:
            return []
        raise
    return list(json.loads(response.data or b"{}").get("items") or [])



def _pod_load(api: k8s.ApiClient) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Pods bound to each node, and the CPU (millicores) and memory (MiB) they request, from one pod list."""
    pods_per_node: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    for pod in list_items(api, "/api/v1/pods"):
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        pods_per_node[node] += 1
        for container in pod["spec"].get("containers") or []:
            requests = (container.get("resources") or {}).get("requests") or {}
            cpu[node] += millicores(requests.get("cpu"))
            memory[node] += mebibytes(requests.get("memory"))
    return pods_per_node, cpu, memory


def read_nodes(api: k8s.ApiClient, *, with_pods: bool = True) -> list[NodeState]:
    """Every node; with `with_pods`, the pods on it and what they request (one pod list more,
    which a health gate does not need)."""
    pods_per_node, cpu, memory = _pod_load(api) if with_pods else (Counter(), Counter(), Counter())
    nodes = []
    for node in list_items(api, "/api/v1/nodes"):
        metadata, status = node.get("metadata") or {}, node.get("status") or {}
        name, labels, allocatable = metadata.get("name", ""), metadata.get("labels") or {}, status.get("allocatable") or {}
        nodes.append(NodeState(
            name=name,
            pool=next((labels[key] for key in POOL_LABELS if key in labels), "default"),
            version=(status.get("nodeInfo") or {}).get("kubeletVersion", ""),
            ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []),
            unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
            pods=pods_per_node.get(name, 0),
            allocatable_pods=int(allocatable.get("pods", "0")),
            cpu_allocatable_m=millicores(allocatable.get("cpu")),
            memory_allocatable_mi=mebibytes(allocatable.get("memory")),
            cpu_requested_m=cpu.get(name, 0),
            memory_requested_mi=memory.get(name, 0),
        ))
    return nodes


def read_pdbs(api: k8s.ApiClient) -> list[PdbState]:
    budgets = []
    for budget in list_items(api, "/apis/policy/v1/poddisruptionbudgets"):
        metadata, spec, status = budget.get("metadata") or {}, budget.get("spec") or {}, budget.get("status") or {}
        budgets.append(PdbState(
            namespace=metadata.get("namespace", ""), name=metadata.get("name", ""),
            min_available=spec.get("minAvailable"), max_unavailable=spec.get("maxUnavailable"),
            expected_pods=status.get("expectedPods", 0), current_healthy=status.get("currentHealthy", 0),
            disruptions_allowed=status.get("disruptionsAllowed", 0),
        ))
    return budgets


def read_deployments(api: k8s.ApiClient) -> list[tuple[str, int, int]]:
    found = []
    for deployment in list_items(api, "/apis/apps/v1/deployments"):
        metadata, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
        found.append((f"{metadata.get('namespace')}/{metadata.get('name')}", spec.get("replicas") or 0,
                      status.get("readyReplicas") or 0))
    return found


def read_health(api: k8s.ApiClient, *, pods: bool = True, budgets: bool = True) -> ClusterHealth:
    """The API's readiness, nodes and deployments, and unless told not to the pods on each node and
    the budgets (what a drain or a capacity check needs; a health gate needs neither)."""
    ready = api_ready(api)
    return ClusterHealth(api_ready=ready, nodes=read_nodes(api, with_pods=pods),
                         pdbs=read_pdbs(api) if budgets else [], deployments=read_deployments(api))


def current_problems(api: k8s.ApiClient, *, min_ready_nodes: int = 0) -> list[str]:
    """What a health gate waits on right now. An API that cannot answer is one more problem
    to wait out, not a reason to fail the gate early."""
    try:
        state = read_health(api, pods=False, budgets=False)
    except (ApiException, HTTPError) as error:
        if getattr(error, "status", None) in (401, 403):
            raise  # no amount of waiting fixes a refusal
        return [f"the API server did not answer: {str(error).splitlines()[0]}"]
    problems = health_rules.health_problems(nodes=state.nodes, deployments=state.deployments, api_ready=state.api_ready)
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
