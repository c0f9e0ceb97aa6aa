"""The final backup before a cluster is deleted: a Velero `Backup` of every namespace, which
Velero writes to object storage outside the cluster. Creating it again with the same name is
a no-op, so a retried activity does not take a second backup."""

from __future__ import annotations

import time

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException


class BackupFailed(Exception):
    pass


def final_backup(api: k8s.ApiClient, *, name: str, timeout_seconds: float, poll_interval_seconds: float) -> str:
    custom = k8s.CustomObjectsApi(api)
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "namespace": "velero"},
            "spec": {"includedNamespaces": ["*"], "ttl": "720h0m0s"}}
    try:
        custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backups", body)
    except ApiException as error:
        if error.status != 409:
            raise
    deadline = time.monotonic() + timeout_seconds
    while True:
        phase = (custom.get_namespaced_custom_object("velero.io", "v1", "velero", "backups", name).get("status") or {}).get("phase")
        if phase == "Completed":
            return name
        if phase in ("Failed", "PartiallyFailed", "FailedValidation") or time.monotonic() >= deadline:
            raise BackupFailed(f"backup {name} ended {phase or 'unfinished'} after {timeout_seconds:g}s; the cluster was not deleted")
        time.sleep(poll_interval_seconds)
