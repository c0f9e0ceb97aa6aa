"""Disaster recovery against a cluster's own API: read its workloads, find the newest Velero
backup of another cluster in the shared bucket, fence (scale to zero, noting what ran), restore
from a backup, scale pre-deployed copies, wait until they answer, and tidy up afterwards.

Called by `activities/kube.py`. Each function is safe to run again: fencing notes the replicas
it took away on the Deployment itself, a restore is created under a fixed name, and a scale or a
deletion that is already done is a no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.models import BackupInfo, WorkloadInventory, WorkloadState
from regatta.rules import decommissioning, recovery

VELERO = ("velero.io", "v1", "velero")
RESTORE_LABEL = "velero.io/restore-name"


class NoBackup(Exception):
    pass


class RestoreFailed(Exception):
    pass


class NotReadyInTime(Exception):
    pass


def _annotation(annotations: dict[str, str], key: str) -> int | None:
    value = annotations.get(key)
    return int(value) if value is not None and value.isdigit() else None


def read_workloads(api: k8s.ApiClient) -> WorkloadInventory:
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    deployments = {}
    for item in apps.list_deployment_for_all_namespaces().items:
        key = f"{item.metadata.namespace}/{item.metadata.name}"
        if decommissioning.is_system_workload(key):
            continue
        annotations = item.metadata.annotations or {}
        deployments[key] = WorkloadState(
            replicas=item.spec.replicas or 0, ready=(item.status.ready_replicas or 0) if item.status else 0,
            dr_replicas=_annotation(annotations, recovery.DR_REPLICAS),
            fenced_replicas=_annotation(annotations, recovery.FENCED_REPLICAS),
            restored_by=(item.metadata.labels or {}).get(RESTORE_LABEL),
        )
    restored = [ns.metadata.name for ns in core.list_namespace(label_selector=RESTORE_LABEL).items]
    return WorkloadInventory(deployments=deployments, restored_namespaces=sorted(restored))


def latest_backup(api: k8s.ApiClient, *, source: str) -> BackupInfo:
    """The newest completed backup of `source` that this cluster's Velero can see."""
    custom = k8s.CustomObjectsApi(api)
    found = custom.list_namespaced_custom_object(*VELERO, "backups", label_selector=f"regatta.dev/cluster={source}")
    completed = [b for b in found.get("items", []) if (b.get("status") or {}).get("phase") == "Completed"]
    if not completed:
        raise NoBackup(f"the shared backup bucket holds no completed backup of {source}; without one there is"
                       " nothing to restore (pre-deploy the workloads on the standby, or restore the bucket)")
    newest = max(completed, key=lambda b: b["status"]["completionTimestamp"])
    return _backup_info(newest, source)


def _backup_info(backup: dict, source: str) -> BackupInfo:
    replicas = json.loads((backup["metadata"].get("annotations") or {}).get("regatta.dev/replicas", "{}"))
    completed = datetime.fromisoformat(backup["status"]["completionTimestamp"].replace("Z", "+00:00"))
    return BackupInfo(name=backup["metadata"]["name"], cluster=source, completed_at=completed, replicas=replicas)


def read_backup(api: k8s.ApiClient, *, name: str, source: str) -> BackupInfo:
    return _backup_info(k8s.CustomObjectsApi(api).get_namespaced_custom_object(*VELERO, "backups", name), source)


def set_replicas(api: k8s.ApiClient, replicas: dict[str, int], *, note: dict[str, str | None] | None = None) -> list[str]:
    """Scale each "namespace/name" to its count (and set or drop annotations in the same patch)."""
    apps = k8s.AppsV1Api(api)
    changed = []
    for key, count in sorted(replicas.items()):
        namespace, name = key.split("/", 1)
        body: dict = {"spec": {"replicas": count}}
        if note:
            body["metadata"] = {"annotations": note}
        try:
            apps.patch_namespaced_deployment(name, namespace, body)
        except ApiException as error:
            if error.status != 404:  # gone already: nothing left to scale
                raise
            continue
        changed.append(key)
    return changed


def fence(api: k8s.ApiClient, *, only: list[str] | None) -> dict[str, int]:
    """Scale every Deployment outside the platform's namespaces (or just `only`) to zero, noting
    on each the replicas it ran with. A Deployment fenced by an earlier attempt keeps its note."""
    fenced = {}
    for key, state in read_workloads(api).deployments.items():
        if only is not None and key not in only:
            continue
        if state.fenced_replicas is not None:
            fenced[key] = state.fenced_replicas
            if state.replicas:
                set_replicas(api, {key: 0})
            continue
        if state.replicas == 0:
            continue
        set_replicas(api, {key: 0}, note={recovery.FENCED_REPLICAS: str(state.replicas)})
        fenced[key] = state.replicas
    return fenced


def unfence(api: k8s.ApiClient) -> dict[str, int]:
    """Give every fenced Deployment its replicas back and drop the note."""
    restored = {key: state.fenced_replicas for key, state in read_workloads(api).deployments.items()
                if state.fenced_replicas is not None}
    for key, count in restored.items():
        set_replicas(api, {key: count}, note={recovery.FENCED_REPLICAS: None})
    return restored


def restore(api: k8s.ApiClient, *, backup: str, name: str, namespace_mapping: dict[str, str],
            included_namespaces: list[str] | None, timeout_seconds: float, poll_interval_seconds: float,
            on_poll: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """A Velero Restore of `backup` under a fixed name (a retry finds the one it made), skipping
    what exists, waited on until it completes. Returns the Deployments and namespaces it made."""
    custom = k8s.CustomObjectsApi(api)
    body = {"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": name, "namespace": "velero"},
            "spec": {"backupName": backup, "namespaceMapping": namespace_mapping,
                     "includedNamespaces": ["*"] if included_namespaces is None else included_namespaces,
                     "excludedNamespaces": sorted(decommissioning.SYSTEM_NAMESPACES), "existingResourcePolicy": "none"}}
    try:
        custom.create_namespaced_custom_object(*VELERO, "restores", body)
    except ApiException as error:
        if error.status != 409:
            raise
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = custom.get_namespaced_custom_object(*VELERO, "restores", name).get("status") or {}
        phase = status.get("phase") or "New"
        on_poll(phase)
        if phase == "Completed":
            break
        if phase in ("Failed", "PartiallyFailed", "FailedValidation"):
            raise RestoreFailed(f"Velero restore {name} of {backup} ended {phase}: "
                                + "; ".join(status.get("validationErrors") or status.get("errors") or ["no detail"]))
        if time.monotonic() >= deadline:
            raise RestoreFailed(f"Velero restore {name} of {backup} still {phase} after {timeout_seconds:g}s")
        time.sleep(poll_interval_seconds)
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    selector = f"{RESTORE_LABEL}={name}"
    deployments = sorted(f"{d.metadata.namespace}/{d.metadata.name}"
                         for d in apps.list_deployment_for_all_namespaces(label_selector=selector).items)
    namespaces = sorted(n.metadata.name for n in core.list_namespace(label_selector=selector).items)
    return deployments, namespaces


def remove_restored(api: k8s.ApiClient, *, namespaces: list[str], deployments: list[str]) -> list[str]:
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    removed = []
    for key in deployments:
        namespace, name = key.split("/", 1)
        try:
            apps.delete_namespaced_deployment(name, namespace)
            removed.append(key)
        except ApiException as error:
            if error.status != 404:
                raise
    for namespace in namespaces:
        try:
            core.delete_namespace(namespace)
            removed.append(f"namespace/{namespace}")
        except ApiException as error:
            if error.status != 404:
                raise
    return removed


def wait_ready(api: k8s.ApiClient, deployments: list[str], *, timeout_seconds: float, poll_interval_seconds: float,
               on_poll: Callable[[list[str]], None]) -> None:
    """Until every listed Deployment has all its replicas ready (the workloads answer)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        present = read_workloads(api).deployments
        waiting = [f"{key} ({present[key].ready}/{present[key].replicas} ready)" if key in present else f"{key} (missing)"
                   for key in deployments if key not in present or present[key].ready < present[key].replicas]
        on_poll(waiting)
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise NotReadyInTime(f"after {timeout_seconds:g}s these workloads do not answer: {', '.join(waiting[:10])}")
        time.sleep(poll_interval_seconds)
