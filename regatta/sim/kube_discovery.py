"""What kubectl asks a cluster's API server before anything else: which groups, versions and
resources it serves (the legacy discovery documents: APIVersions at /api, APIGroupList at /apis,
an APIResourceList per group version), and tables to print (`Accept: application/json;as=Table;
g=meta.k8s.io;v=v1`, answered with a meta.k8s.io/v1 Table whose cells the server formats).

kubectl 1.37 first asks for aggregated discovery (apidiscovery.k8s.io/v2); an answer of plain
`application/json` is the legacy form, which it then reads group version by group version.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regatta.sim import api_versions
from regatta.sim.kube_api import reach
from regatta.sim.world import SimError, World

router = APIRouter(prefix="/k8s/{cluster}")

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    namespaced: bool
    verbs: list[str] = field(default_factory=lambda: list(WRITE))
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    group_version: str | None = None  # a subresource of another group's kind (pods/eviction is policy/v1)

    def entry(self) -> dict[str, Any]:
        singular = self.kind.lower() if "/" not in self.plural else ""
        found: dict[str, Any] = {"name": self.plural, "singularName": singular, "namespaced": self.namespaced,
                                 "kind": self.kind, "verbs": self.verbs}
        if self.short_names:
            found["shortNames"] = self.short_names
        if self.categories:
            found["categories"] = self.categories
        if self.group_version:  # kubectl drain evicts only when it finds pods/eviction in the policy group
            found["group"], found["version"] = self.group_version.split("/")
        return found


# What the simulator serves, by group version ("v1" is the core group).
SERVED: dict[str, list[Resource]] = {
    "v1": [
        Resource("nodes", "Node", False, ["get", "list", "patch", "watch"], ["no"]),
        Resource("pods", "Pod", True, ["delete", "get", "list", "watch"], ["po"], ["all"]),
        Resource("pods/eviction", "Eviction", True, ["create"], group_version="policy/v1"),
        Resource("namespaces", "Namespace", False, ["create", "delete", "get", "list", "patch", "watch"], ["ns"]),
        Resource("events", "Event", True, ["create", "get", "list", "watch"], ["ev"]),
        Resource("configmaps", "ConfigMap", True, list(WRITE), ["cm"]),
        Resource("secrets", "Secret", True, list(WRITE)),
        Resource("serviceaccounts", "ServiceAccount", True, list(WRITE), ["sa"]),
        Resource("serviceaccounts/token", "TokenRequest", True, ["create"], group_version="authentication.k8s.io/v1"),
        Resource("services", "Service", True, list(WRITE), ["svc"], ["all"]),
        Resource("limitranges", "LimitRange", True, list(WRITE), ["limits"]),
        Resource("resourcequotas", "ResourceQuota", True, list(WRITE), ["quota"]),
    ],
    "apps/v1": [Resource("deployments", "Deployment", True, ["create", "delete", "get", "list", "patch", "watch"], ["deploy"],
                         ["all"]),
                Resource("deployments/scale", "Scale", True, ["get", "patch", "update"], group_version="autoscaling/v1"),
                Resource("statefulsets", "StatefulSet", True, ["get", "list", "watch"], ["sts"], ["all"])],
    "policy/v1": [Resource("poddisruptionbudgets", "PodDisruptionBudget", True, READ, ["pdb"])],
    "batch/v1": [Resource("jobs", "Job", True, ["create", "delete", "get", "list"], [], ["all"])],
    "rbac.authorization.k8s.io/v1": [
        Resource("clusterroles", "ClusterRole", False, list(WRITE)),
        Resource("clusterrolebindings", "ClusterRoleBinding", False, list(WRITE)),
        Resource("roles", "Role", True, list(WRITE)),
        Resource("rolebindings", "RoleBinding", True, list(WRITE)),
    ],
    "networking.k8s.io/v1": [Resource("networkpolicies", "NetworkPolicy", True, ["create", "delete", "get", "list"],
                                      ["netpol"])],
    "apiextensions.k8s.io/v1": [Resource("customresourcedefinitions", "CustomResourceDefinition", False, list(WRITE),
                                         ["crd", "crds"])],
    "velero.io/v1": [Resource("backups", "Backup", True, ["create", "get", "list"]),
                     Resource("restores", "Restore", True, ["create", "get", "list"])],
}


def served_resources(world: World, cluster: str) -> dict[str, list[Resource]]:
    """The built-in kinds, the kinds each CustomResourceDefinition makes servable, and the kind of
    every other object a client has stored in this cluster."""
    served = {version: list(resources) for version, resources in SERVED.items()}
    known = {(version, r.plural) for version, resources in served.items() for r in resources}
    c = world.cluster(cluster)
    for group_version, moved in api_versions.served_kinds(c).items():
        for version in moved:
            if (group_version, version.plural) not in known:
                known.add((group_version, version.plural))
                served.setdefault(group_version, []).append(Resource(
                    version.plural, version.kind, version.plural not in api_versions.CLUSTER_SCOPED, list(WRITE)))
    known |= {(v.group_version, v.plural) for kinds in api_versions.versions().values() for v in kinds}  # served or not
    objects = c.objects
    for (api, plural, _, _), crd in sorted(objects.items()):
        if (api, plural) != ("apiextensions.k8s.io/v1", "customresourcedefinitions"):
            continue
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if not version.get("served", True) or not names.get("plural"):
                continue
            group_version = f"{spec.get('group')}/{version.get('name')}"
            if (group_version, names["plural"]) not in known:
                known.add((group_version, names["plural"]))
                served.setdefault(group_version, []).append(Resource(
                    names["plural"], names.get("kind", names["plural"]), spec.get("scope", "Namespaced") == "Namespaced",
                    list(WRITE), list(names.get("shortNames") or []), list(names.get("categories") or [])))
    for (api, plural, namespace, _), body in sorted(objects.items()):
        if (api, plural) not in known:
            known.add((api, plural))
            served.setdefault(api, []).append(Resource(plural, str(body.get("kind") or plural.title()), bool(namespace),
                                                       ["create", "delete", "get", "list"]))
    return served


@router.get("/api")
async def core_versions(request: Request, cluster: str) -> dict[str, Any]:
    reach(request, cluster, "discovery")[0]
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.url.netloc}]}


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' order of a group's versions: GA before beta before alpha, the higher number first
    (v1, v1beta3, v1beta2, v1alpha1): the first is the group's preferred version."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0)
    track = {None: 0, "beta": 1, "alpha": 2}[match[2]]
    return (track, -int(match[1]), -int(match[3] or 0))


def _group_entries(world: World, cluster: str) -> dict[str, dict[str, Any]]:
    """Each group once, with every version it serves, preferred first (an APIGroup)."""
    versions: dict[str, list[str]] = {}
    for api in served_resources(world, cluster):
        if api != "v1":
            group, version = api.split("/", 1)
            versions.setdefault(group, []).append(version)
    entries = {}
    for group, found in versions.items():
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(set(found), key=_version_priority)]
        entries[group] = {"name": group, "versions": listed, "preferredVersion": listed[0]}
    return entries


@router.get("/apis")
async def groups(request: Request, cluster: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(_group_entries(world, cluster).values())}


@router.get("/apis/{group}")
async def group(request: Request, cluster: str, group: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    found = _group_entries(world, cluster).get(group)
    if found is None:
        raise SimError(404, "NotFound", "the server could not find the requested resource")
    return {"kind": "APIGroup", "apiVersion": "v1", **found}


@router.get("/api/v1")
async def core_resources(request: Request, cluster: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [r.entry() for r in served_resources(world, cluster)["v1"]]}


@router.get("/apis/{group}/{version}")
async def group_resources(request: Request, cluster: str, group: str, version: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    api = f"{group}/{version}"
    served = served_resources(world, cluster)
    if api not in served:
        raise SimError(404, "NotFound", f"the server could not find the requested resource ({api})")
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api,
            "resources": [r.entry() for r in served[api]]}


# --------------------------------------------------------------------------- OpenAPI v3
# kubectl reads it to learn whether the server validates fields itself (the PATCH operation of a
# kind takes `fieldValidation`), and for a custom resource falls back to the Namespace's. These
# documents say that much, for every kind served; the schemas are open (any field is kept).


def _paths(api: str, resources: list[Resource]) -> dict[str, Any]:
    group, version = (api.split("/", 1) if "/" in api else ("", api))
    prefix = f"/apis/{api}" if group else "/api/v1"
    paths: dict[str, Any] = {}
    for resource in resources:
        if "/" in resource.plural:
            continue
        gvk = {"group": group, "version": version, "kind": resource.kind}
        item = f"{prefix}/namespaces/{{namespace}}/{resource.plural}/{{name}}" if resource.namespaced else \
            f"{prefix}/{resource.plural}/{{name}}"
        operation = {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                     "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                    for n in ("dryRun", "fieldManager", "fieldValidation", "force")],
                     "responses": {"200": {"description": "OK"}}}
        paths[item] = {"patch": operation}
    return paths


@router.get("/openapi/v3")
async def openapi_index(request: Request, cluster: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    return {"paths": {("api/v1" if api == "v1" else f"apis/{api}"): {"serverRelativeURL": f"/openapi/v3/"
                                                                      f"{'api/v1' if api == 'v1' else 'apis/' + api}"
                                                                      f"?hash={world.cluster(cluster).resource_version}"}
                      for api in served_resources(world, cluster)}}


@router.get("/openapi/v3/{path:path}")
async def openapi_group_version(request: Request, cluster: str, path: str) -> dict[str, Any]:
    world = reach(request, cluster, "discovery")[0]
    api = "v1" if path == "api/v1" else path.removeprefix("apis/")
    served = served_resources(world, cluster)
    if api not in served:
        raise SimError(404, "NotFound", f"no OpenAPI document for {path}")
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (Regatta fleet simulator)", "version": "v1"},
            "paths": _paths(api, served[api]), "components": {"schemas": {}}}


# --------------------------------------------------------------------------- tables


def _age(timestamp: str | None, now: float) -> str:
    if not timestamp:
        return "<unknown>"
    then = time.mktime(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    seconds = max(int(now - then), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _condition(item: dict[str, Any], kind: str) -> str | None:
    return next((c.get("status") for c in (item.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _columns(kind: str) -> list[tuple[str, str, int]]:
    """(name, type, priority) as the API server defines them; priority 1 shows only with -o wide."""
    return {
        "Node": [("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
                 ("Version", "string", 0), ("OS-Image", "string", 1), ("Kernel-Version", "string", 1),
                 ("Container-Runtime", "string", 1)],
        "Pod": [("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
                ("Age", "string", 0), ("Node", "string", 1)],
        "Namespace": [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        "Deployment": [("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "integer", 0),
                       ("Available", "integer", 0), ("Age", "string", 0)],
        "PodDisruptionBudget": [("Name", "string", 0), ("Min Available", "string", 0), ("Max Unavailable", "string", 0),
                                ("Allowed Disruptions", "integer", 0), ("Age", "string", 0)],
    }.get(kind, [("Name", "string", 0), ("Age", "string", 0)])


def _cells(kind: str, item: dict[str, Any], now: float) -> list[Any]:
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    age = _age(meta.get("creationTimestamp"), now)
    if kind == "Node":
        ready = "Ready" if _condition(item, "Ready") == "True" else "NotReady"
        info = status.get("nodeInfo") or {}
        return [meta["name"], ready + (",SchedulingDisabled" if spec.get("unschedulable") else ""), "<none>", age,
                info.get("kubeletVersion", ""), info.get("osImage", ""), info.get("kernelVersion", ""),
                info.get("containerRuntimeVersion", "")]
    if kind == "Pod":
        ready_count = 1 if _condition(item, "Ready") == "True" else 0
        return [meta["name"], f"{ready_count}/1", status.get("phase", "Unknown"), 0, age, spec.get("nodeName") or "<none>"]
    if kind == "Namespace":
        return [meta["name"], status.get("phase", "Active"), age]
    if kind == "Deployment":
        return [meta["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", status.get("updatedReplicas", 0),
                status.get("availableReplicas", 0), age]
    if kind == "PodDisruptionBudget":
        return [meta["name"], str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
                status.get("disruptionsAllowed", 0), age]
    return [meta.get("name", ""), age]


def table(body: dict[str, Any], now: float) -> dict[str, Any]:
    """A list or one object as the Table kubectl prints."""
    listed = body.get("kind", "").endswith("List") and "items" in body
    items = body["items"] if listed else [body]
    kind = body["kind"].removesuffix("List") if listed else body.get("kind", "")
    if listed and kind == "" and items:
        kind = items[0].get("kind", "")
    kind = kind or (items[0].get("kind", "") if items else "")
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": (body.get("metadata") or {}).get("resourceVersion", "")},
        "columnDefinitions": [{"name": name, "type": kind_, "format": "name" if name == "Name" else "", "description": "",
                               "priority": priority} for name, kind_, priority in _columns(kind)],
        "rows": [{"cells": _cells(kind, item, now),
                  "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": item.get("metadata") or {}}} for item in items],
    }


class JsonOnly:
    """A request body in Kubernetes' protobuf encoding (what kubectl's typed commands send: `create namespace`,
    `create serviceaccount`, `create token`) is answered 415 Unsupported Media Type, as an API server answers a
    body in an encoding it does not serve for the resource; client-go then sends it again as JSON."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/k8s/") and scope["method"] in ("POST", "PUT", "PATCH"):
            kind = next((v.decode() for k, v in scope["headers"] if k == b"content-type"), "")
            if kind.split(";")[0].strip() == "application/vnd.kubernetes.protobuf":
                body = json.dumps({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                   "message": f"the body of the request was in an unknown format - accepted media types"
                                              f" include: application/json, application/yaml (got {kind})",
                                   "reason": "UnsupportedMediaType", "code": 415}).encode()
                await send({"type": "http.response.start", "status": 415,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class TablesForKubectl:
    """Turns a cluster API server's JSON answer into a Table when the client asks for one (kubectl
    get does; the official Python client and Regatta do not). A plain ASGI middleware: every other
    request passes straight through, untouched and unbuffered."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/k8s/"):
            await self.app(scope, receive, send)
            return
        accept = next((v.decode() for k, v in scope["headers"] if k == b"accept"), "")
        if "as=Table" not in accept or b"watch=" in scope.get("query_string", b""):  # a watch streams as it is
            await self.app(scope, receive, send)
            return
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = dict(started.get("headers") or [])
            if started.get("status") == 200 and headers.get(b"content-type", b"").startswith(b"application/json"):
                found = json.loads(body)
                if isinstance(found, dict) and found.get("kind") not in (None, "Status", "APIResourceList", "APIGroupList",
                                                                        "APIVersions", "Table"):
                    world: World = scope["app"].state.world
                    body = json.dumps(table(found, world.now())).encode()
            headers[b"content-length"] = str(len(body)).encode()
            await send({**started, "headers": list(headers.items())})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, hold)
