"""Every kind the simulator has no model of (ConfigMaps, RBAC, network policies, policy-engine
objects, CustomResourceDefinitions and the custom resources they make servable, Velero's and
Jobs), kept as sent with the metadata a real API server sets, and changed with every verb kubectl
and Regatta use: create, get, list (label selectors), replace (409 on a stale resourceVersion),
merge, strategic-merge and JSON patches, server-side apply with managedFields and field-manager
conflicts (regatta/sim/field_managers.py), server-side dry runs, delete, and watch.

Velero's Backups are read from the world's shared bucket, Restores start a restore, and a Job runs
to its end at once (or fails with the cluster's `job_failure` fault).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from regatta.sim import api_versions, controllers, field_managers
from regatta.sim.kube_api import bookmark_line, namespace_exists, reach, requirements, selected, timestamp
from regatta.sim.kube_discovery import served_resources
from regatta.sim.world import Cluster, SimError, World

router = APIRouter(prefix="/k8s/{cluster}")
Key = tuple[str, str, str, str]  # (apiVersion, plural, namespace, name)
CRDS = ("apiextensions.k8s.io/v1", "customresourcedefinitions")
BATCH_JOBS = ("batch/v1", "jobs")
# Velero's custom resources. Every cluster's Velero points at one bucket, so Backups are read
# from the world's shared store, not from the cluster: a standby sees the primary's backups.
VELERO_BACKUPS = ("velero.io/v1", "backups")
VELERO_RESTORES = ("velero.io/v1", "restores")
WATCH_POLL_SECONDS = 0.05
# Writes a cluster remembers for watches; a watch from before the oldest is told 410 Gone, as the
# API server says "too old resource version" once etcd has compacted.
WATCH_WINDOW = 2000


def _kind_name(plural: str, api: str) -> str:
    group = api.split("/")[0] if "/" in api else ""
    return f"{plural}.{group}" if group else plural


def _not_found(api: str, plural: str, name: str) -> SimError:
    return SimError(404, "NotFound", f'{_kind_name(plural, api)} "{name}" not found')


def _manager(request: Request, default: str) -> str:
    """The field manager a write is recorded under: the one named, else the client's name."""
    named = request.query_params.get("fieldManager")
    if named:
        return named
    agent = request.headers.get("user-agent", "")
    return agent.split("/")[0] if agent else default


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dryRun") == "All"


def _stamp(c: Cluster, body: dict[str, Any], *, old: dict[str, Any] | None, dry_run: bool = False) -> dict[str, Any]:
    """What the API server sets on a write: uid, creationTimestamp, resourceVersion, generation
    (a dry run shows all but a new resourceVersion: nothing was written)."""
    meta = body.setdefault("metadata", {})
    if old is None:
        meta.setdefault("uid", f"{c.name}-{next(c.seq):06d}")
        meta.setdefault("creationTimestamp", timestamp(time.time()))
        meta["generation"] = 1
    else:
        old_meta = old.get("metadata") or {}
        for kept in ("uid", "creationTimestamp"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
        # apiVersion aside: the same object written through another served version is no change
        spec_changed = {k: v for k, v in body.items() if k not in ("metadata", "status", "apiVersion")} != \
                       {k: v for k, v in old.items() if k not in ("metadata", "status", "apiVersion")}
        meta["generation"] = int(old_meta.get("generation", 1)) + (1 if spec_changed else 0)
    if dry_run:
        meta["resourceVersion"] = (old or {}).get("metadata", {}).get("resourceVersion", "")
        return body
    c.resource_version += 1
    meta["resourceVersion"] = str(c.resource_version)
    return body


def _store(c: Cluster, key: Key, body: dict[str, Any], *, old: dict[str, Any] | None) -> dict[str, Any]:
    api, plural = key[0], key[1]
    _stamp(c, body, old=old)
    if (api, plural) == CRDS:
        names = (body.get("spec") or {}).get("names") or {}
        body["status"] = {"acceptedNames": names, "storedVersions": [v.get("name") for v in
                                                                     (body.get("spec") or {}).get("versions") or []],
                          "conditions": [{"type": t, "status": "True", "reason": r, "lastTransitionTime": timestamp(time.time())}
                                         for t, r in (("NamesAccepted", "NoConflicts"), ("Established", "InitialNamesAccepted"))]}
    c.objects[key] = body
    _log(c, "MODIFIED" if old is not None else "ADDED", key, body)
    return body


def store_object(c: Cluster, key: Key, body: dict[str, Any]) -> dict[str, Any]:
    """A controller's write (a Cluster API controller's status, the system-upgrade-controller's Job): stamped and
    logged for watches like any write through the API."""
    return _store(c, key, body, old=c.objects.get(key))


def remove_object(c: Cluster, key: Key) -> None:
    """An object deleted (through the API, or by the controller that owns it), logged for watches."""
    found = c.objects.pop(key, None)
    if found is None:
        return
    c.resource_version += 1
    gone = copy.deepcopy(found)
    gone["metadata"]["resourceVersion"] = str(c.resource_version)
    _log(c, "DELETED", key, gone)


def _kept_status(old: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """A kind with a status subresource (every kind a controller here reconciles) keeps its status on a write to the
    object itself: the status is the controller's to write."""
    if old is not None and controllers.has_status_subresource(body.get("apiVersion", ""), body.get("kind", "")):
        body = {**body, "status": copy.deepcopy(old.get("status", {}))}
        if not body["status"]:
            body.pop("status")
    return body


def _log(c: Cluster, kind: str, key: Key, body: dict[str, Any]) -> None:
    c.object_log.append((c.resource_version, kind, key, copy.deepcopy(body)))
    if len(c.object_log) > WATCH_WINDOW:
        del c.object_log[: len(c.object_log) - WATCH_WINDOW]


def _served_plural(world: World, c: Cluster, api: str, plural: str) -> None:
    """A kind nobody has told the cluster about, or a version its control plane no longer (or not
    yet) serves, is refused as a real API server refuses it; a deprecated one is counted."""
    if plural not in {r.plural for r in served_resources(world, c.name).get(api, [])} and (api, plural) != CRDS:
        raise SimError(404, "NotFound", f"the server could not find the requested resource ({_kind_name(plural, api)})")
    api_versions.note_request(c, api, plural)


def _key(api: str, plural: str, namespace: str, name: str) -> Key:
    """Where an object lives: a kind Kubernetes moved between versions once, in its newest version."""
    return (api_versions.stored_as(api, plural), plural, namespace, name)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if "yaml" in request.headers.get("content-type", ""):
        return yaml.safe_load(raw)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise SimError(400, "BadRequest", f"the request body is not JSON: {error}") from None


async def _create(request: Request, cluster: str, api: str, plural: str, namespace: str = "") -> JSONResponse:
    world, c = reach(request, cluster, f"create_{plural}")
    _served_plural(world, c, api, plural)
    namespace_exists(c, namespace)
    body = await _body(request)
    name = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
    if not name:
        raise SimError(422, "Invalid", f"{plural}: metadata.name is required")
    key = _key(api, plural, namespace, name)
    if key in c.objects:
        raise SimError(409, "AlreadyExists", f'{_kind_name(plural, api)} "{name}" already exists')
    if namespace:
        body.setdefault("metadata", {})["namespace"] = namespace
    if (api, plural) == VELERO_BACKUPS:  # Velero: snapshot the cluster to the shared bucket
        return JSONResponse(_backup_json(name, world.take_backup(c, name)), status_code=201)
    if (api, plural) == VELERO_RESTORES:
        world.start_restore(c, body)
    if (api, plural) == BATCH_JOBS:
        _run_job(c, body, world.now())
    body["apiVersion"] = api  # in place: a Restore's status is written later into this very object
    controllers.admit(world, c, api, plural, None, body)  # the kind's admission webhooks, where a controller has them
    body = field_managers.record_update(None, body, manager=_manager(request, "unknown"))
    if _dry_run(request):
        return JSONResponse(_stamp(c, copy.deepcopy(body), old=None, dry_run=True), status_code=201)
    stored = _store(c, key, body, old=None)
    controllers.notice(world, c, key)
    return JSONResponse(api_versions.shown(stored, api), status_code=201)


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def apply_at_load(world: World, c: Cluster, manifest: dict[str, Any]) -> None:
    """An object of a fleet file's `manifests`, created as `kubectl apply` creates it: refused as the API server
    would (a kind or version it does not serve), a deprecated version counted as requested, the version written
    kept by its field manager."""
    api, kind, metadata = manifest.get("apiVersion", ""), manifest.get("kind", ""), manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    namespace_given = metadata.get("namespace", "default") if isinstance(metadata, dict) else None
    if not (isinstance(api, str) and isinstance(kind, str) and isinstance(name, str) and isinstance(namespace_given, str)
            and _DNS_NAME.fullmatch(name) and _DNS_NAME.fullmatch(namespace_given)):
        raise SimError(422, "Invalid", f"{c.name}: manifests: each needs apiVersion, kind and metadata.name (and a"
                       " namespace, if any) written as Kubernetes names")
    resources = {r.kind: r for r in served_resources(world, c.name).get(api, [])}
    if kind not in resources:
        raise SimError(422, "Invalid", f"{c.name}: manifests: no {kind or 'kind'} {name or ''} in {api or 'no apiVersion'}"
                       f" that a {c.version} API server serves")
    resource = resources[kind]
    namespace = namespace_given if resource.namespaced else ""
    body = copy.deepcopy(manifest)
    if namespace:
        body["metadata"]["namespace"] = namespace
        c.namespaces.add(namespace)
    key = _key(api, resource.plural, namespace, name)
    if key in c.objects:
        raise SimError(409, "AlreadyExists", f"{c.name}: manifests: {kind} {name} is given twice")
    api_versions.note_request(c, api, resource.plural)
    _store(c, key,
           field_managers.record_update(None, body, manager="kubectl-client-side-apply"), old=None)


def _read(request: Request, cluster: str, api: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
    world, c = reach(request, cluster, f"read_{plural}")
    _served_plural(world, c, api, plural)
    if (api, plural) == VELERO_BACKUPS:
        backup = world.find_backup(name)
        if backup is None:
            raise _not_found(api, plural, name)
        return _backup_json(name, backup)
    found = c.objects.get(_key(api, plural, namespace, name))
    if found is None:
        raise _not_found(api, plural, name)
    return api_versions.shown(found, api)


def _list(request: Request, cluster: str, api: str, plural: str, namespace: str) -> Any:
    world, c = reach(request, cluster, f"list_{plural}")
    _served_plural(world, c, api, plural)
    if request.query_params.get("watch") in ("1", "true"):
        return _watch(request, c, api, plural, namespace)
    if (api, plural) == VELERO_BACKUPS:
        items = _backups(world, request.query_params.get("labelSelector"))
    else:
        labels = requirements(request.query_params.get("labelSelector"))
        fields = requirements(request.query_params.get("fieldSelector"))
        stored = api_versions.stored_as(api, plural)
        items = [api_versions.shown(o, api) for (a, p, ns, name), o in sorted(c.objects.items())
                 if a == stored and p == plural and (not namespace or ns == namespace)
                 and selected(labels, (o.get("metadata") or {}).get("labels") or {})
                 and selected(fields, {"metadata.name": name, "metadata.namespace": ns})]
    kind = next((o.get("kind") for o in items), None) or "List"
    return {"apiVersion": api, "kind": f"{kind}List" if kind != "List" else "List",
            "metadata": {"resourceVersion": str(c.resource_version)}, "items": items}


def _watch(request: Request, c: Cluster, api: str, plural: str, namespace: str) -> StreamingResponse:
    """Events after `resourceVersion` for the kind (and the field selector kubectl wait sends),
    one JSON object a line, until `timeoutSeconds` or the client goes away. A client that asks for
    `sendInitialEvents` (client-go's watch-list) first gets every matching object as ADDED and a
    BOOKMARK marking the end of them."""
    initial = request.query_params.get("sendInitialEvents") == "true"
    since = c.resource_version if initial else int(request.query_params.get("resourceVersion") or c.resource_version)
    if c.object_log and since < c.object_log[0][0] - 1 and len(c.object_log) >= WATCH_WINDOW:
        raise SimError(410, "Expired", f"too old resource version: {since} ({c.object_log[0][0]})")
    fields = requirements(request.query_params.get("fieldSelector"))
    deadline = time.monotonic() + float(request.query_params.get("timeoutSeconds") or 1800)

    stored = api_versions.stored_as(api, plural)

    def matches(key: Key) -> bool:
        a, p, ns, name = key
        return (a == stored and p == plural and (not namespace or ns == namespace)
                and selected(fields, {"metadata.name": name, "metadata.namespace": ns}))

    async def events() -> Any:
        seen = since
        if initial:
            for key, body in sorted(c.objects.items()):
                if matches(key):
                    yield json.dumps({"type": "ADDED", "object": api_versions.shown(body, api)}) + "\n"
            kind = next((b.get("kind") for k, b in c.objects.items() if k[0] == stored and k[1] == plural), "") or plural
            yield bookmark_line(kind=kind, api_version=api, resource_version=str(seen))
        while time.monotonic() < deadline and not await request.is_disconnected():
            for version, kind, (a, p, ns, name), body in list(c.object_log):
                if version <= seen or a != stored or p != plural or (namespace and ns != namespace):
                    continue
                if selected(fields, {"metadata.name": name, "metadata.namespace": ns}):
                    yield json.dumps({"type": kind, "object": api_versions.shown(body, api)}) + "\n"
            seen = max(seen, c.resource_version)
            await asyncio.sleep(WATCH_POLL_SECONDS)

    return StreamingResponse(events(), media_type="application/json")


async def _replace(request: Request, cluster: str, api: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
    world, c = reach(request, cluster, f"replace_{plural}")
    _served_plural(world, c, api, plural)
    key = _key(api, plural, namespace, name)
    old = c.objects.get(key)
    if old is None:
        raise _not_found(api, plural, name)
    body = await _body(request)
    sent = str((body.get("metadata") or {}).get("resourceVersion") or "")
    if sent and sent != old["metadata"]["resourceVersion"]:
        raise SimError(409, "Conflict", f'Operation cannot be fulfilled on {_kind_name(plural, api)} "{name}": the object'
                       " has been modified; please apply your changes to the latest version and try again")
    body.setdefault("metadata", {}).update({"name": name, **({"namespace": namespace} if namespace else {})})
    body["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
    body["apiVersion"] = api
    body = _kept_status(old, body)
    controllers.admit(world, c, api, plural, old, body)
    body = field_managers.record_update(old, body, manager=_manager(request, "unknown"))
    if _dry_run(request):
        return _stamp(c, body, old=old, dry_run=True)
    stored = _store(c, key, body, old=old)
    controllers.notice(world, c, key)
    return api_versions.shown(stored, api)


async def _patch(request: Request, cluster: str, api: str, plural: str, namespace: str, name: str) -> JSONResponse:
    world, c = reach(request, cluster, f"patch_{plural}")
    _served_plural(world, c, api, plural)
    key = _key(api, plural, namespace, name)
    old = c.objects.get(key)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    patch = await _body(request)
    if kind == "application/apply-patch+yaml":
        manager = request.query_params.get("fieldManager")
        if not manager:
            raise SimError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required"
                           " for apply patch")
        if not isinstance(patch, dict) or (patch.get("metadata") or {}).get("name", name) != name:
            raise SimError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if old is None:  # an apply that makes the object
            namespace_exists(c, namespace)
        if namespace:
            patch.setdefault("metadata", {})["namespace"] = namespace
        try:
            body = field_managers.apply(old, patch, manager=manager, force=request.query_params.get("force") == "true")
        except field_managers.ApplyConflict as conflict:
            raise _conflict(conflict, api) from None
    else:
        if old is None:
            raise _not_found(api, plural, name)
        if kind == "application/json-patch+json":
            patched = field_managers.json_patch(old, patch)
        elif kind == "application/strategic-merge-patch+json":
            patched = field_managers.strategic_merge_patch(old, patch)
        elif kind == "application/merge-patch+json":
            patched = field_managers.merge_patch(old, patch)
        else:
            raise SimError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}; accepted"
                           " media types: application/json-patch+json, application/merge-patch+json,"
                           " application/apply-patch+yaml, application/strategic-merge-patch+json")
        patched["apiVersion"] = api
        body = field_managers.record_update(old, patched, manager=_manager(request, "unknown"))
    created = old is None
    body = _kept_status(old, body)
    controllers.admit(world, c, api, plural, old, body)
    if _dry_run(request):
        return JSONResponse(_stamp(c, body, old=old, dry_run=True), status_code=201 if created else 200)
    stored = _store(c, key, body, old=old)
    controllers.notice(world, c, key)
    return JSONResponse(api_versions.shown(stored, api), status_code=201 if created else 200)


def _conflict(conflict: field_managers.ApplyConflict, api: str) -> SimError:
    version = api.split("/")[-1]
    lines = [f'conflict with "{manager}" using {api}: {field_managers.dotted(path)}' for path, manager in conflict.conflicts]
    count = len(lines)
    said = lines[0] if count == 1 else "\n" + "\n".join(f"- {line}" for line in lines)
    return SimError(409, "Conflict", f"Apply failed with {count} conflict{'s' if count > 1 else ''}: {said}", causes=[
        {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}" using {version}',
         "field": field_managers.dotted(path)} for path, manager in conflict.conflicts])


def _delete(request: Request, cluster: str, api: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
    world, c = reach(request, cluster, f"delete_{plural}")
    _served_plural(world, c, api, plural)
    key = _key(api, plural, namespace, name)
    found = c.objects.get(key)
    if found is None:
        raise _not_found(api, plural, name)
    if not _dry_run(request):
        remove_object(c, key)
        controllers.notice(world, c, key)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": plural, "uid": found["metadata"].get("uid")}}


# --------------------------------------------------------------------------- routes: /apis/<group>/<version>/...


@router.post("/apis/{group}/{version}/{plural}")
async def create_cluster_object(request: Request, cluster: str, group: str, version: str, plural: str) -> JSONResponse:
    return await _create(request, cluster, f"{group}/{version}", plural)


@router.post("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
async def create_namespaced_object(request: Request, cluster: str, group: str, version: str, namespace: str,
                                   plural: str) -> JSONResponse:
    return await _create(request, cluster, f"{group}/{version}", plural, namespace)


@router.get("/apis/{group}/{version}/{plural}")
async def list_cluster_objects(request: Request, cluster: str, group: str, version: str, plural: str) -> Any:
    return _list(request, cluster, f"{group}/{version}", plural, "")


@router.get("/apis/{group}/{version}/{plural}/{name}")
async def read_cluster_object(request: Request, cluster: str, group: str, version: str, plural: str, name: str) -> Any:
    return _read(request, cluster, f"{group}/{version}", plural, "", name)


@router.put("/apis/{group}/{version}/{plural}/{name}")
async def replace_cluster_object(request: Request, cluster: str, group: str, version: str, plural: str, name: str) -> Any:
    return await _replace(request, cluster, f"{group}/{version}", plural, "", name)


@router.patch("/apis/{group}/{version}/{plural}/{name}")
async def patch_cluster_object(request: Request, cluster: str, group: str, version: str, plural: str,
                               name: str) -> JSONResponse:
    return await _patch(request, cluster, f"{group}/{version}", plural, "", name)


@router.delete("/apis/{group}/{version}/{plural}/{name}")
async def delete_cluster_object(request: Request, cluster: str, group: str, version: str, plural: str, name: str) -> Any:
    return _delete(request, cluster, f"{group}/{version}", plural, "", name)


@router.get("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
async def list_namespaced_objects(request: Request, cluster: str, group: str, version: str, namespace: str,
                                  plural: str) -> Any:
    return _list(request, cluster, f"{group}/{version}", plural, namespace)


@router.get("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")
async def read_namespaced_object(request: Request, cluster: str, group: str, version: str, namespace: str, plural: str,
                                 name: str) -> Any:
    return _read(request, cluster, f"{group}/{version}", plural, namespace, name)


@router.put("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")
async def replace_namespaced_object(request: Request, cluster: str, group: str, version: str, namespace: str,
                                    plural: str, name: str) -> Any:
    return await _replace(request, cluster, f"{group}/{version}", plural, namespace, name)


@router.patch("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")
async def patch_namespaced_object(request: Request, cluster: str, group: str, version: str, namespace: str, plural: str,
                                  name: str) -> JSONResponse:
    return await _patch(request, cluster, f"{group}/{version}", plural, namespace, name)


@router.delete("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")
async def delete_namespaced_object(request: Request, cluster: str, group: str, version: str, namespace: str,
                                   plural: str, name: str) -> Any:
    return _delete(request, cluster, f"{group}/{version}", plural, namespace, name)


# --------------------------------------------------------------------------- routes: core v1 kinds without a model


@router.post("/api/v1/namespaces/{namespace}/{plural}")
async def create_core_object(request: Request, cluster: str, namespace: str, plural: str) -> JSONResponse:
    return await _create(request, cluster, "v1", plural, namespace)


@router.get("/api/v1/namespaces/{namespace}/{plural}")
async def list_core_objects(request: Request, cluster: str, namespace: str, plural: str) -> Any:
    return _list(request, cluster, "v1", plural, namespace)


@router.get("/api/v1/{plural}")
async def list_core_objects_everywhere(request: Request, cluster: str, plural: str) -> Any:
    return _list(request, cluster, "v1", plural, "")


@router.get("/api/v1/namespaces/{namespace}/{plural}/{name}")
async def read_core_object(request: Request, cluster: str, namespace: str, plural: str, name: str) -> Any:
    return _read(request, cluster, "v1", plural, namespace, name)


@router.put("/api/v1/namespaces/{namespace}/{plural}/{name}")
async def replace_core_object(request: Request, cluster: str, namespace: str, plural: str, name: str) -> Any:
    return await _replace(request, cluster, "v1", plural, namespace, name)


@router.patch("/api/v1/namespaces/{namespace}/{plural}/{name}")
async def patch_core_object(request: Request, cluster: str, namespace: str, plural: str, name: str) -> JSONResponse:
    return await _patch(request, cluster, "v1", plural, namespace, name)


@router.delete("/api/v1/namespaces/{namespace}/{plural}/{name}")
async def delete_core_object(request: Request, cluster: str, namespace: str, plural: str, name: str) -> Any:
    return _delete(request, cluster, "v1", plural, namespace, name)


# --------------------------------------------------------------------------- Jobs and Velero


def _run_job(cluster: Cluster, job: dict, now_epoch: float) -> None:
    """A Job runs to its end at once: it succeeds, or fails with the cluster's `job_failure`
    fault as its message (a smoke test that found trouble)."""
    now = timestamp(now_epoch)
    failure = cluster.faults.job_failure
    if failure:
        job["status"] = {"failed": 1, "startTime": now, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": failure,
             "lastTransitionTime": now}]}
    else:
        job["status"] = {"succeeded": 1, "startTime": now, "completionTime": now, "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": now}]}


# Velero's custom resources. Every cluster's Velero points at one bucket, so Backups are read
# from the world's shared store, not from the cluster: a standby sees the primary's backups.
VELERO_BACKUPS = ("velero.io/v1", "backups")
VELERO_RESTORES = ("velero.io/v1", "restores")


def _backup_json(name: str, backup: dict) -> dict:
    items = len(backup["deployments"]) + len(backup["pdbs"]) + len(backup["namespaces"])
    return {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "uid": f"backup-{name}",
                     "labels": {"velero.io/storage-location": "default", "regatta.dev/cluster": backup["cluster"]},
                     # What Regatta's backup hook notes down: the replicas each Deployment ran with,
                     # so a standby can be sized before anything is restored.
                     "annotations": {"regatta.dev/replicas": json.dumps(
                         {key: item["replicas"] for key, item in sorted(backup["deployments"].items())})}},
        "spec": {"includedNamespaces": ["*"], "storageLocation": "default", "ttl": "720h0m0s"},
        "status": {"phase": "Completed", "startTimestamp": timestamp(backup["completed_at"]),
                   "completionTimestamp": timestamp(backup["completed_at"]),
                   "progress": {"totalItems": items, "itemsBackedUp": items}},
    }


def _backups(world: World, labelSelector: str | None) -> list[dict]:
    labels = requirements(labelSelector)
    items = [_backup_json(name, backup) for taken in world.backups.values() for name, backup in sorted(taken.items())]
    return [item for item in items if selected(labels, item["metadata"]["labels"])]

