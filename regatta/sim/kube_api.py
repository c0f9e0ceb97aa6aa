"""The Kubernetes API subset each simulated cluster serves under `/k8s/<cluster>/`, in the real
wire format, so the official `kubernetes` client works with only `Configuration.host` changed.

Served: /version, /readyz, nodes (get, list, patch), pods (list by label and field selector,
get, delete), the policy/v1 eviction subresource, PodDisruptionBudgets, Deployments and
Namespaces. Errors are `Status` objects with the reason and code the API server would send.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import Callable
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from regatta.sim import controllers, field_managers, kube_rbac
from regatta.sim.world import Cluster, Node, Pdb, Pod, SimError, World

router = APIRouter(prefix="/k8s/{cluster}")


def _world(request: Request) -> World:
    return request.app.state.world


def reach(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world = _world(request)
    cluster = world.cluster(name)
    cluster.kube_calls[operation] += 1  # what its API server was asked, by operation (GET /sim/report)
    authorization = request.headers.get("authorization")
    if not world.accepts(cluster, authorization):
        raise SimError(401, "Unauthorized", "Unauthorized")  # what an API server says, expired token or none
    account = world.service_account_of(cluster, (authorization or "").removeprefix("Bearer "))
    if account is not None:  # a service account: RBAC decides (Regatta's own token stands for a cluster admin)
        user = kube_rbac.service_account_user(*account)
        asked = kube_rbac.attributes(request.method, request.url.path.removeprefix(f"/k8s/{name}"),
                                     dict(request.query_params))
        if not kube_rbac.allows(cluster.objects, user, asked):
            raise SimError(403, "Forbidden", kube_rbac.forbidden_message(user, asked))
    if cluster.status == "CREATING":
        raise SimError(503, "ServiceUnavailable", f"the API server of {name} is still being created")
    world.check_faults(cluster, api="kube", operation=operation)
    world.reconcile(cluster)
    return world, cluster


def timestamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(error: SimError) -> dict:
    return {
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": error.message, "reason": error.reason, "code": error.status,
        "details": {"causes": error.causes} if error.causes else {},
    }


# --------------------------------------------------------------------------- selectors

_REQUIREMENT = re.compile(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(\S*)\s*$")


def requirements(selector: str | None) -> list[tuple[str, str, str | None]]:
    if not selector:
        return []
    out = []
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        match = _REQUIREMENT.match(part)
        if match:
            out.append((match[1], "!=" if match[2] == "!=" else "=", match[3]))
        elif part.startswith("!"):
            out.append((part[1:], "absent", None))
        else:
            out.append((part, "exists", None))
    return out


def selected(reqs: list[tuple[str, str, str | None]], values: dict[str, str]) -> bool:
    for key, op, value in reqs:
        present = key in values
        if op == "=" and values.get(key) != value:
            return False
        if op == "!=" and values.get(key) == value:
            return False
        if op == "exists" and not present:
            return False
        if op == "absent" and present:
            return False
    return True


# --------------------------------------------------------------------------- renderers


def node_labels(cluster: Cluster, node: Node) -> dict[str, str]:
    """The labels a node shows: its own, and those its kubelet and cloud set."""
    return {
        **node.labels,
        "kubernetes.io/hostname": node.name,
        "node.kubernetes.io/instance-type": node.size,
        "topology.kubernetes.io/region": cluster.region,
        "topology.kubernetes.io/zone": node.zone,
        **({"eks.amazonaws.com/nodegroup": node.pool} if cluster.provider not in ("suc", "capi") else {}),
        "regatta.dev/node-pool": node.pool,
    }


def _node_json(cluster: Cluster, node: Node, now: float) -> dict:
    ready = node.ready(now)
    labels = node_labels(cluster, node)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "uid": f"node-{node.name}", "labels": labels,
                     "creationTimestamp": timestamp(node.created), "resourceVersion": str(cluster.resource_version)},
        "spec": {"unschedulable": node.unschedulable, "providerID": f"sim:///{cluster.region}/{node.name}",
                 **({"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]} if node.unschedulable else {})},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": "KubeletReady" if ready else "KubeletNotReady",
                            "lastHeartbeatTime": timestamp(node.created), "lastTransitionTime": timestamp(node.created)}],
            "capacity": {"pods": str(node.capacity), "cpu": str(-(-node.cpu_m // 1000)), "memory": f"{node.memory_mi + 900}Mi"},
            "allocatable": {"pods": str(node.capacity), "cpu": f"{node.cpu_m}m", "memory": f"{node.memory_mi}Mi"},
            "nodeInfo": {
                "kubeletVersion": node.version, "kubeProxyVersion": node.version, "architecture": "amd64",
                "bootID": node.name, "machineID": node.name, "systemUUID": node.name,
                "containerRuntimeVersion": "containerd://1.7.11", "kernelVersion": "6.1.0",
                "operatingSystem": "linux", "osImage": "Simulated Linux",
            },
        },
    }


def _pod_json(pod: Pod, now: float) -> dict:
    ready = pod.ready(now)
    owner = (
        [{"apiVersion": "apps/v1", "kind": pod.owner_kind, "name": pod.owner if pod.owner_kind == "StatefulSet"
          else f"{pod.owner}-rs", "uid": f"{pod.owner_kind.lower()}-{pod.owner}", "controller": True}]
        if pod.owner else []
    )
    started = pod.started or pod.created
    # status.startTime: when the kubelet took it; the Ready condition's lastTransitionTime: when it became Ready (both on
    # the wall clock, to the second, as the API server writes metav1.Time). ready_at 0: Ready when the fleet was loaded.
    became = (pod.created if pod.ready_at == 0.0 else time.time() - (now - pod.ready_at)) if ready else started
    times = {"startTime": timestamp(started)} if pod.node else {}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid, "labels": pod.labels,
                     "ownerReferences": owner, "creationTimestamp": timestamp(pod.created)},
        "spec": {"nodeName": pod.node, "containers": [{"name": "app", "image": f"registry.local/{pod.owner or pod.name}:1",
                                                      **_resources(pod.cpu_m, pod.memory_mi)}],
                 **({"volumes": [dict(v) for v in pod.volumes]} if pod.volumes else {})},
        "status": {"phase": "Running" if pod.node else "Pending", **times,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": timestamp(became)}]},
    }


def _resources(cpu_m: int, memory_mi: int) -> dict:
    requests = {**({"cpu": f"{cpu_m}m"} if cpu_m else {}), **({"memory": f"{memory_mi}Mi"} if memory_mi else {})}
    return {"resources": {"requests": requests}} if requests else {}


def _pdb_json(world: World, cluster: Cluster, pdb: Pdb) -> dict:
    spec: dict = {} if pdb.selector is None else {"selector": {"matchLabels": pdb.selector, **(
        {"matchExpressions": [dict(e) for e in pdb.expressions]} if pdb.expressions else {})}}
    if pdb.min_available is not None:
        spec["minAvailable"] = pdb.min_available
    if pdb.max_unavailable is not None:
        spec["maxUnavailable"] = pdb.max_unavailable
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": pdb.name, "namespace": pdb.namespace, "uid": f"pdb-{pdb.namespace}-{pdb.name}",
                     "creationTimestamp": timestamp(cluster.created), "generation": 1,
                     **({"labels": dict(pdb.labels)} if pdb.labels else {}),
                     **({"annotations": dict(pdb.annotations)} if pdb.annotations else {})},
        "spec": spec,
        "status": {**world.pdb_status(cluster, pdb), "observedGeneration": 1},
    }


def _deployment_json(cluster: Cluster, namespace: str, name: str, now: float) -> dict:
    deployment = cluster.deployments[(namespace, name)]
    owned = [p for p in cluster.pods.values() if p.owner == name and p.namespace == namespace and p.owner_kind == "ReplicaSet"]
    ready = sum(1 for p in owned if p.ready(now))
    containers = deployment.containers or [{"name": "app", "image": f"registry.local/{name}:1",
                                            **_resources(deployment.cpu_m, deployment.memory_mi)}]
    template = {"metadata": {"labels": deployment.labels}, "spec": {"containers": containers}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"deploy-{namespace}-{name}", "generation": 1,
                     "creationTimestamp": timestamp(cluster.created),
                     "labels": dict(deployment.metadata_labels), "annotations": dict(deployment.annotations)},
        "spec": {"replicas": deployment.replicas, "selector": {"matchLabels": deployment.labels}, "template": template},
        "status": {"replicas": len(owned), "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": len(owned), "observedGeneration": 1,
                   # what `kubectl wait --for=condition=Available` and `kubectl rollout status` read
                   "conditions": [{"type": "Available", "status": "True" if ready >= deployment.replicas else "False",
                                   "reason": "MinimumReplicasAvailable" if ready >= deployment.replicas
                                   else "MinimumReplicasUnavailable"},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]},
    }


def _list(kind: str, api_version: str, items: list[dict], cluster: Cluster) -> dict:
    return {"apiVersion": api_version, "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(cluster.resource_version)}, "items": items}


def bookmark_line(*, kind: str, api_version: str, resource_version: str) -> str:
    """The watch event that ends a watch-list's initial events (client-go waits for it)."""
    return json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": {
        "resourceVersion": resource_version, "annotations": {"k8s.io/initial-events-end": "true"}}}}) + "\n"


def watch_or_list(request: Request, c: Cluster, render: Callable[[], dict]) -> Any:
    """A list of a kind the simulator models (nodes, pods, deployments, budgets), or, with
    `watch`, its changes as watch events: the list is rendered again every few tens of
    milliseconds and each object that appeared, changed or went is one event."""
    if request.query_params.get("watch") not in ("1", "true"):
        return render()
    initial = request.query_params.get("sendInitialEvents") == "true"
    deadline = time.monotonic() + float(request.query_params.get("timeoutSeconds") or 1800)

    def keyed(body: dict) -> dict[tuple[str, str], dict]:
        return {((i["metadata"].get("namespace") or ""), i["metadata"]["name"]): i for i in body["items"]}

    def event(kind: str, item: dict) -> str:
        c.resource_version += 1  # every change a client sees has a version of its own
        item = {**item, "metadata": {**item["metadata"], "resourceVersion": str(c.resource_version)}}
        return json.dumps({"type": kind, "object": item}) + "\n"

    async def events() -> Any:
        first = render()
        last = keyed(first)
        if initial:
            for item in last.values():
                yield event("ADDED", item)
            yield bookmark_line(kind=first["kind"].removesuffix("List"), api_version=first["apiVersion"],
                                resource_version=str(c.resource_version))
        while time.monotonic() < deadline and not await request.is_disconnected():
            await asyncio.sleep(0.05)
            now = keyed(render())
            for key, item in now.items():
                if key not in last:
                    yield event("ADDED", item)
                elif json.dumps(item, sort_keys=True) != json.dumps(last[key], sort_keys=True):
                    yield event("MODIFIED", item)
            for key in last.keys() - now.keys():
                yield event("DELETED", last[key])
            last = now

    return StreamingResponse(events(), media_type="application/json")


def _pod_fields(pod: Pod) -> dict[str, str]:
    return {"spec.nodeName": pod.node or "", "metadata.name": pod.name, "metadata.namespace": pod.namespace,
            "status.phase": "Running" if pod.node else "Pending"}


# --------------------------------------------------------------------------- routes


@router.get("/version")
async def version(request: Request, cluster: str):
    _, c = reach(request, cluster, "version")
    return {"major": "1", "minor": c.version.split(".")[1], "gitVersion": f"v{c.version}.0",
            "platform": "linux/amd64", "goVersion": "go1.22", "compiler": "gc", "buildDate": "", "gitCommit": "", "gitTreeState": "clean"}


@router.get("/readyz", response_class=PlainTextResponse)
@router.get("/livez", response_class=PlainTextResponse)
@router.get("/healthz", response_class=PlainTextResponse)
async def readyz(request: Request, cluster: str):
    reach(request, cluster, "readyz")
    return "ok"


@router.get("/api/v1/nodes")
async def list_nodes(request: Request, cluster: str, labelSelector: str | None = None, fieldSelector: str | None = None):
    world, c = reach(request, cluster, "list_nodes")
    labels, fields = requirements(labelSelector), requirements(fieldSelector)

    def render() -> dict:
        now = world.now()
        items = [_node_json(c, n, now) for n in sorted(c.nodes.values(), key=lambda n: n.name)]
        return _list("Node", "v1", [i for i in items if selected(labels, i["metadata"]["labels"])
                                    and selected(fields, {"metadata.name": i["metadata"]["name"]})], c)

    return watch_or_list(request, c, render)


@router.get("/api/v1/nodes/{name}")
async def read_node(request: Request, cluster: str, name: str):
    world, c = reach(request, cluster, "read_node")
    if name not in c.nodes:
        raise SimError(404, "NotFound", f'nodes "{name}" not found')
    return _node_json(c, c.nodes[name], world.now())


@router.patch("/api/v1/nodes/{name}")
async def patch_node(request: Request, cluster: str, name: str):
    world, c = reach(request, cluster, "patch_node")
    node = c.nodes.get(name)
    if node is None:
        raise SimError(404, "NotFound", f'nodes "{name}" not found')
    body = await request.json()
    if isinstance(body, list):  # JSON patch
        for op in body:
            path, value = op.get("path", ""), op.get("value")
            if path == "/spec/unschedulable":
                world.set_unschedulable(c, name, bool(value) and op.get("op") != "remove")
            elif path.startswith("/metadata/labels/"):
                key = path.removeprefix("/metadata/labels/").replace("~1", "/").replace("~0", "~")
                if op.get("op") == "remove":
                    node.labels.pop(key, None)
                else:
                    node.labels[key] = value
                controllers.nodes_relabelled(world, c)
    else:  # strategic-merge or merge patch
        spec = body.get("spec") or {}
        if "unschedulable" in spec:
            world.set_unschedulable(c, name, bool(spec["unschedulable"]))
        for key, value in ((body.get("metadata") or {}).get("labels") or {}).items():
            if value is None:
                node.labels.pop(key, None)
            else:
                node.labels[key] = value
        if (body.get("metadata") or {}).get("labels"):
            controllers.nodes_relabelled(world, c)
    c.resource_version += 1
    return _node_json(c, node, world.now())


def _pods(request: Request, c: Cluster, world: World, namespace: str | None, labelSelector: str | None, fieldSelector: str | None) -> dict:
    now = world.now()
    labels, fields = requirements(labelSelector), requirements(fieldSelector)
    pods = sorted(c.pods.values(), key=lambda p: (p.namespace, p.name))
    items = [
        _pod_json(p, now) for p in pods
        if (namespace is None or p.namespace == namespace) and selected(labels, p.labels) and selected(fields, _pod_fields(p))
    ]
    return _list("Pod", "v1", items, c)


@router.get("/api/v1/pods")
async def list_pods(request: Request, cluster: str, labelSelector: str | None = None, fieldSelector: str | None = None):
    world, c = reach(request, cluster, "list_pods")
    return watch_or_list(request, c, lambda: _pods(request, c, world, None, labelSelector, fieldSelector))


@router.get("/api/v1/namespaces/{namespace}/pods")
async def list_namespaced_pods(request: Request, cluster: str, namespace: str, labelSelector: str | None = None, fieldSelector: str | None = None):
    world, c = reach(request, cluster, "list_pods")
    return watch_or_list(request, c, lambda: _pods(request, c, world, namespace, labelSelector, fieldSelector))


@router.get("/api/v1/namespaces/{namespace}/pods/{name}")
async def read_pod(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "read_pod")
    pod = c.pods.get((namespace, name))
    if pod is None:
        raise SimError(404, "NotFound", f'pods "{name}" not found')
    return _pod_json(pod, world.now())


@router.delete("/api/v1/namespaces/{namespace}/pods/{name}")
async def delete_pod(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "delete_pod")
    pod = c.pods.get((namespace, name))
    body = _pod_json(pod, world.now()) if pod else None
    world.delete_pod(c, namespace, name)
    world.pods_deleted.append({"cluster": c.name, "pod": f"{namespace}/{name}"})  # through the API: someone chose to
    return body


def namespace_exists(c: Cluster, namespace: str) -> None:
    """The NamespaceLifecycle admission plugin: an object is not made in a namespace that does not exist (a dry run
    too: admission runs for it), 404 NotFound naming the namespace."""
    if namespace and namespace not in c.namespaces:
        raise SimError(404, "NotFound", f'namespaces "{namespace}" not found')


@router.post("/api/v1/namespaces/{namespace}/pods", status_code=201)
async def create_pod(request: Request, cluster: str, namespace: str):
    """A pod made directly, as `kubectl run` makes one: no controller owns it."""
    world, c = reach(request, cluster, "create_pod")
    manifest = await request.json()
    if request.query_params.get("dryRun") == "All":
        namespace_exists(c, namespace)
        return manifest
    return _pod_json(world.create_pod(c, namespace, manifest), world.now())


@router.post("/api/v1/namespaces/{namespace}/pods/{name}/eviction", status_code=201)
async def evict_pod(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "evict")
    world.evict(c, namespace, name)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 201}


@router.get("/apis/policy/v1/poddisruptionbudgets")
@router.get("/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets")
async def list_pdbs(request: Request, cluster: str, namespace: str | None = None):
    world, c = reach(request, cluster, "list_pdbs")
    return watch_or_list(request, c, lambda: _list("PodDisruptionBudget", "policy/v1", [
        _pdb_json(world, c, p) for p in c.pdbs.values() if namespace is None or p.namespace == namespace], c))


@router.get("/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}")
async def read_pdb(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "read_pdb")
    pdb = c.pdbs.get((namespace, name))
    if pdb is None:
        raise SimError(404, "NotFound", f'poddisruptionbudgets.policy "{name}" not found')
    return _pdb_json(world, c, pdb)


@router.patch("/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}")
async def apply_pdb(request: Request, cluster: str, namespace: str, name: str):
    """A server-side apply of a whole budget (what a bundle sends; created when absent), or a
    merge patch of one that exists."""
    world, c = reach(request, cluster, "patch_pdb")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/apply-patch+yaml":
        manifest = yaml.safe_load(await request.body()) or {}
    else:
        if (namespace, name) not in c.pdbs:
            raise SimError(404, "NotFound", f'poddisruptionbudgets.policy "{name}" not found')
        manifest = field_managers.merge_patch(_pdb_json(world, c, c.pdbs[(namespace, name)]), await request.json())
    if request.query_params.get("dryRun") == "All":
        if (namespace, name) not in c.pdbs:
            namespace_exists(c, namespace)
        return {**manifest, "metadata": {**(manifest.get("metadata") or {}), "name": name, "namespace": namespace}}
    return _pdb_json(world, c, world.put_pdb(c, namespace, name, manifest))


@router.delete("/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}")
async def delete_pdb(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "delete_pdb")
    world.delete_pdb(c, namespace, name)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": "poddisruptionbudgets"}}


@router.get("/apis/apps/v1/deployments")
@router.get("/apis/apps/v1/namespaces/{namespace}/deployments")
async def list_deployments(request: Request, cluster: str, namespace: str | None = None, labelSelector: str | None = None):
    world, c = reach(request, cluster, "list_deployments")
    labels, fields = requirements(labelSelector), requirements(request.query_params.get("fieldSelector"))

    def render() -> dict:
        now = world.now()
        return _list("Deployment", "apps/v1", [
            _deployment_json(c, ns, name, now) for (ns, name) in sorted(c.deployments)
            if (namespace is None or ns == namespace) and selected(labels, c.deployments[(ns, name)].metadata_labels)
            and selected(fields, {"metadata.name": name, "metadata.namespace": ns})], c)

    return watch_or_list(request, c, render)


@router.get("/apis/apps/v1/statefulsets")
@router.get("/apis/apps/v1/namespaces/{namespace}/statefulsets")
async def list_stateful_sets(request: Request, cluster: str, namespace: str | None = None):
    """StatefulSets, read only: what a drain meets (their pods come back under their own names)."""
    world, c = reach(request, cluster, "list_statefulsets")

    def render() -> dict:
        now = world.now()
        items = []
        for (ns, name), stateful in sorted(c.stateful_sets.items()):
            if namespace is not None and ns != namespace:
                continue
            owned = [p for p in c.pods.values() if p.owner == name and p.namespace == ns and p.owner_kind == "StatefulSet"]
            ready = sum(1 for p in owned if p.ready(now))
            items.append({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": name, "namespace": ns, "uid": f"sts-{ns}-{name}", "generation": 1,
                             "creationTimestamp": timestamp(c.created), "labels": dict(stateful.metadata_labels)},
                "spec": {"replicas": stateful.replicas, "serviceName": name, "selector": {"matchLabels": stateful.labels},
                         "template": {"metadata": {"labels": stateful.labels}, "spec": {"containers": [
                             {"name": "app", "image": f"registry.local/{name}:1",
                              **_resources(stateful.cpu_m, stateful.memory_mi)}]}}},
                "status": {"replicas": len(owned), "readyReplicas": ready, "availableReplicas": ready,
                           "currentReplicas": len(owned), "updatedReplicas": len(owned), "observedGeneration": 1},
            })
        return _list("StatefulSet", "apps/v1", items, c)

    return watch_or_list(request, c, render)


@router.get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
async def read_deployment(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "read_deployment")
    if (namespace, name) not in c.deployments:
        raise SimError(404, "NotFound", f'deployments.apps "{name}" not found')
    return _deployment_json(c, namespace, name, world.now())


def _scale_json(c: Cluster, namespace: str, name: str) -> dict:
    deployment = c.deployments.get((namespace, name))
    if deployment is None:
        raise SimError(404, "NotFound", f'deployments.apps "{name}" not found')
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(c.resource_version)},
            "spec": {"replicas": deployment.replicas},
            "status": {"replicas": sum(1 for p in c.pods.values() if p.owner == name and p.namespace == namespace),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(deployment.labels.items()))}}


@router.get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
async def read_scale(request: Request, cluster: str, namespace: str, name: str):
    _, c = reach(request, cluster, "read_scale")
    return _scale_json(c, namespace, name)


@router.patch("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
@router.put("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
async def scale_deployment(request: Request, cluster: str, namespace: str, name: str):
    """The scale subresource `kubectl scale` patches."""
    world, c = reach(request, cluster, "scale")
    body = await request.json()
    replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
    if replicas is None and isinstance(body, list):  # a JSON patch of /spec/replicas
        replicas = next((op.get("value") for op in body if op.get("path") == "/spec/replicas"), None)
    world.patch_deployment(c, namespace, name, {"spec": {"replicas": replicas}})
    return _scale_json(c, namespace, name)


@router.post("/apis/apps/v1/namespaces/{namespace}/deployments", status_code=201)
async def create_deployment(request: Request, cluster: str, namespace: str):
    world, c = reach(request, cluster, "create_deployment")
    manifest = await request.json()
    name = (manifest.get("metadata") or {}).get("name")
    if not name:
        raise SimError(422, "Invalid", "Deployment.apps: metadata.name is required")
    if (namespace, name) in c.deployments:
        raise SimError(409, "AlreadyExists", f'deployments.apps "{name}" already exists')
    if request.query_params.get("dryRun") != "All":
        world.put_deployment(c, namespace, name, manifest)
        return JSONResponse(_deployment_json(c, namespace, name, world.now()), status_code=201)
    namespace_exists(c, namespace)
    return JSONResponse(manifest, status_code=201)


@router.patch("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
async def patch_deployment(request: Request, cluster: str, namespace: str, name: str):
    """A merge or strategic-merge patch of what the simulator models (what Regatta's fencing and
    kubectl scale send), or a server-side apply of a whole manifest (created when absent)."""
    world, c = reach(request, cluster, "patch_deployment")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/apply-patch+yaml":
        manifest = yaml.safe_load(await request.body()) or {}
        if request.query_params.get("dryRun") != "All":
            world.put_deployment(c, namespace, name, manifest)
        elif (namespace, name) not in c.deployments:
            namespace_exists(c, namespace)
            return manifest
    elif kind == "application/json-patch+json":
        current = _deployment_json(c, namespace, name, world.now()) if (namespace, name) in c.deployments else None
        if current is None:
            raise SimError(404, "NotFound", f'deployments.apps "{name}" not found')
        world.put_deployment(c, namespace, name, field_managers.json_patch(current, await request.json()))
    else:
        world.patch_deployment(c, namespace, name, await request.json())
    return _deployment_json(c, namespace, name, world.now())


@router.delete("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
async def delete_deployment(request: Request, cluster: str, namespace: str, name: str):
    world, c = reach(request, cluster, "delete_deployment")
    world.delete_deployment(c, namespace, name)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "details": {"name": name, "kind": "deployments"}}


def _namespace_json(name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": f"ns-{name}", "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
                         **({"annotations": dict(annotations)} if annotations else {})},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


@router.get("/api/v1/namespaces")
async def list_namespaces(request: Request, cluster: str, labelSelector: str | None = None):
    _, c = reach(request, cluster, "list_namespaces")
    items = [_namespace_json(n, c.namespace_labels.get(n), c.namespace_annotations.get(n)) for n in sorted(c.namespaces)]
    labels = requirements(labelSelector)
    return _list("Namespace", "v1", [i for i in items if selected(labels, i["metadata"]["labels"])], c)


@router.get("/api/v1/namespaces/{name}")
async def read_namespace(request: Request, cluster: str, name: str):
    _, c = reach(request, cluster, "read_namespace")
    if name not in c.namespaces:
        raise SimError(404, "NotFound", f'namespaces "{name}" not found')
    return _namespace_json(name, c.namespace_labels.get(name), c.namespace_annotations.get(name))


@router.delete("/api/v1/namespaces/{name}")
async def delete_namespace(request: Request, cluster: str, name: str):
    world, c = reach(request, cluster, "delete_namespace")
    world.delete_namespace(c, name)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "details": {"name": name, "kind": "namespaces"}}


@router.patch("/api/v1/namespaces/{name}")
async def patch_namespace(request: Request, cluster: str, name: str):
    """Labels and annotations by merge, strategic-merge or JSON patch, or a server-side apply of a
    Namespace (created when absent): what a policy bundle or kubectl apply sends a namespace."""
    _, c = reach(request, cluster, "patch_namespace")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    exists = name in c.namespaces
    if not exists and kind != "application/apply-patch+yaml":
        raise SimError(404, "NotFound", f'namespaces "{name}" not found')
    current = _namespace_json(name, c.namespace_labels.get(name), c.namespace_annotations.get(name))
    raw = await request.body()
    if kind == "application/apply-patch+yaml":
        meta = (yaml.safe_load(raw) or {}).get("metadata") or {}
        merged = {**current["metadata"]["labels"], **(meta.get("labels") or {})}
        notes = {**(current["metadata"].get("annotations") or {}), **(meta.get("annotations") or {})}
    else:
        patched = (field_managers.json_patch(current, json.loads(raw)) if kind == "application/json-patch+json"
                   else field_managers.merge_patch(current, json.loads(raw)))["metadata"]
        merged, notes = patched.get("labels") or {}, patched.get("annotations") or {}
    labels = {k: str(v) for k, v in merged.items() if k != "kubernetes.io/metadata.name"}
    annotations = {k: str(v) for k, v in notes.items() if v is not None}
    if request.query_params.get("dryRun") != "All":
        c.namespaces.add(name)
        c.namespace_labels[name], c.namespace_annotations[name] = labels, annotations
        c.resource_version += 1
    return _namespace_json(name, labels, annotations)


@router.post("/api/v1/namespaces", status_code=201)
async def create_namespace(request: Request, cluster: str):
    _, c = reach(request, cluster, "create_namespace")
    name = ((await request.json()).get("metadata") or {}).get("name")
    if not name:
        raise SimError(422, "Invalid", "Namespace metadata.name is required")
    if name in c.namespaces:
        raise SimError(409, "AlreadyExists", f'namespaces "{name}" already exists')
    c.namespaces.add(name)
    return JSONResponse(_namespace_json(name), status_code=201)
