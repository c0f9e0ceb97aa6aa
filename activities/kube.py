"""Activities against each cluster's own API: inspect it, cordon, drain, and gate on health."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.failures import refuse, translated_failures
from regatta.formats.fleet_data import api_removals
from regatta.inventory.sweep import sweep
from regatta.kube import access as cluster_access
from regatta.kube import api_usage, health
from regatta.kube import backup as backups
from regatta.kube import disaster_recovery as dr
from regatta.kube import drain as drains
from regatta.kube.connect import ClusterConnections
from regatta.models import (
    Activity,
    BackupInfo,
    BlockedDrain,
    BlockedPod,
    ClusterInspection,
    ClusterRef,
    CordonNodes,
    DeletePods,
    DrainNodes,
    DrainReport,
    FenceReport,
    FenceWorkloads,
    GrantAccess,
    HandOutAccess,
    HealthGate,
    HealthReport,
    LatestBackup,
    ReadForReadiness,
    RecordEvent,
    RemoveRestored,
    RestoreReport,
    RestoreWorkloads,
    RevokeAccess,
    SealedKubeconfig,
    SetReplicas,
    SweepClusters,
    VeleroBackup,
    WaitWorkloadsReady,
    WorkloadInventory,
)
from regatta.models.errors import ErrorType
from regatta.models.readiness import ApiUsage
from regatta.rules import decommissioning, recovery
from regatta.rules.health import health_problems

log = logging.getLogger("regatta.activities")

def inspect(connections: ClusterConnections, cluster: ClusterRef, *, pods: bool = True) -> ClusterInspection:
    """The cluster's nodes (with the pods on each, unless told not to), budgets and health problems right now."""
    state = health.read_health(connections.api_client(cluster), pods=pods)
    return ClusterInspection(
        api_ready=state.api_ready, nodes=state.nodes, pdbs=state.pdbs,
        problems=health_problems(nodes=state.nodes, deployments=state.deployments, api_ready=state.api_ready),
    )


def gate_on_health(connections: ClusterConnections, request: HealthGate, *,
                   on_poll: Callable[[list[str]], None]) -> HealthReport:
    """Wait until the cluster is healthy, or refuse with the gate's failure type and what is wrong."""
    problems = health.wait_until_healthy(connections.api_client(request.cluster), timeout_seconds=request.timeout_seconds,
                                         poll_interval_seconds=request.poll_interval_seconds,
                                         on_poll=on_poll, min_ready_nodes=request.min_ready_nodes)
    if not problems:
        return HealthReport(healthy=True)
    raise refuse(
        f"{request.cluster.name} is not healthy {request.timeout_seconds:g}s after {request.after}: "
        + "; ".join(problems[:10])
        + ". Fix what is listed, then start the upgrade again; it resumes where it stopped",
        error_type=request.failure_type,
    )


class KubeActivities:
    def __init__(self, connections: ClusterConnections, inventory=None):
        self.connections = connections
        self.inventory = inventory  # for the fleet sweep, which writes what it reads into the inventory

    @activity.defn(name=Activity.INSPECT_CLUSTER)
    def inspect_cluster(self, cluster: ClusterRef) -> ClusterInspection:
        with translated_failures():
            return inspect(self.connections, cluster)

    @activity.defn(name=Activity.READ_API_USAGE)
    def read_api_usage(self, request: ReadForReadiness) -> ApiUsage:
        """For a cluster whose API only its site's agent reaches: the API versions its clients and manifests
        use, against the removals between its control plane's version (read from its cloud) and the target."""
        assert request.control_plane_version is not None, "the workflow reads the control plane first"
        with translated_failures():
            return api_usage.api_usage(self.connections.api_client(request.cluster), api_removals(),
                                       control_plane=request.control_plane_version, target=request.target_version)

    @activity.defn(name=Activity.CORDON_NODES)
    def cordon_nodes(self, request: CordonNodes) -> list[str]:
        with translated_failures():
            return drains.cordon(self.connections.api_client(request.cluster), request.nodes, unschedulable=request.unschedulable)

    @activity.defn(name=Activity.DRAIN_NODES)
    def drain_nodes(self, request: DrainNodes) -> DrainReport:
        """Drain nodes one after another. Heartbeat details hold the nodes already finished, so a
        retry after a worker crash continues with the next node instead of starting over."""
        api = self.connections.api_client(request.cluster)
        details = activity.info().heartbeat_details
        finished: list[str] = list(details[0]) if details else []
        evicted_before = int(details[1]) if details else 0
        evicted = 0
        with translated_failures():
            if not details:  # before the first eviction: the pods kubectl drain would refuse to lose, named
                drains.refuse_what_kubectl_would(api, request.check_nodes or request.nodes,
                                                 delete_unmanaged=request.delete_unmanaged_pods,
                                                 delete_emptydir=request.delete_emptydir_data)
            for node in request.nodes:
                if node in finished:
                    continue
                def progress(n: int, node: str = node, done: int = evicted) -> None:
                    activity.heartbeat(finished, evicted_before + done + n, node)

                try:
                    evicted += drains.drain_node(
                        api, node, timeout_seconds=request.timeout_seconds, retry_seconds=request.eviction_retry_seconds,
                        on_progress=progress, blocked_report_after=request.blocked_report_after_seconds,
                    )
                except drains.DrainBlocked as blocked:  # the workflow's escalation policy decides what next
                    pods = [BlockedPod(name=f"{p.metadata.namespace}/{p.metadata.name}", labels=dict(p.metadata.labels or {}))
                            for p in blocked.pods]
                    return DrainReport(nodes=finished, pods_evicted=evicted_before + evicted, blocked=BlockedDrain(
                        node=blocked.node, pods=pods, budgets=blocked.budgets, budget_refs=blocked.budget_refs,
                        reason=blocked.reason))
                finished.append(node)
                log.info("drained node %s: %d pods evicted through the eviction API", node, evicted)
                activity.heartbeat(finished, evicted_before + evicted, None)
        return DrainReport(nodes=finished, pods_evicted=evicted_before + evicted)

    @activity.defn(name=Activity.DELETE_PODS)
    def delete_pods(self, request: DeletePods) -> list[str]:
        """Delete pods outright (an approved drain escalation); ones already gone are skipped."""
        with translated_failures():
            return drains.delete_pods(self.connections.api_client(request.cluster), request.pods)

    @activity.defn(name=Activity.RECORD_EVENT)
    def record_event(self, request: RecordEvent) -> None:
        with translated_failures():
            drains.record_event(self.connections.api_client(request.cluster), namespace=request.namespace,
                                name=request.name, kind=request.involved_kind, object_name=request.involved_name,
                                reason=request.reason, message=request.message)

    @activity.defn(name=Activity.HEALTH_GATE)
    def health_gate(self, request: HealthGate) -> HealthReport:
        """Wait until the cluster is healthy again, or fail the gate after its timeout."""
        with translated_failures():
            return gate_on_health(self.connections, request, on_poll=activity.heartbeat)

    @activity.defn(name=Activity.LIST_WORKLOADS)
    def list_workloads(self, cluster: ClusterRef) -> list[str]:
        """Non-system deployments that still have replicas: what a decommission would destroy."""
        with translated_failures():
            return decommissioning.non_system_workloads(health.read_deployments(self.connections.api_client(cluster)))

    @activity.defn(name=Activity.FINAL_BACKUP)
    def final_backup(self, request: VeleroBackup) -> str:
        with translated_failures():
            return self._backup(request)

    def _backup(self, request: VeleroBackup) -> str:
        try:
            return backups.final_backup(self.connections.api_client(request.cluster), name=request.name,
                                        timeout_seconds=request.timeout_seconds,
                                        poll_interval_seconds=request.poll_interval_seconds)
        except backups.BackupFailed as error:
            raise refuse(str(error), error_type=ErrorType.BACKUP_FAILED) from error

    # ------------------------------------------------------------------ disaster recovery

    @activity.defn(name=Activity.TAKE_BACKUP)
    def take_backup(self, request: VeleroBackup) -> BackupInfo:
        """A Velero backup now (failback's resync point), described as the shared bucket holds it."""
        with translated_failures():
            name = self._backup(request)
            return dr.read_backup(self.connections.api_client(request.cluster), name=name, source=request.cluster.name)

    @activity.defn(name=Activity.INSPECT_WORKLOADS)
    def inspect_workloads(self, cluster: ClusterRef) -> WorkloadInventory:
        with translated_failures():
            return dr.read_workloads(self.connections.api_client(cluster))

    @activity.defn(name=Activity.LATEST_BACKUP)
    def latest_backup(self, request: LatestBackup) -> BackupInfo:
        with translated_failures():
            try:
                return dr.latest_backup(self.connections.api_client(request.cluster), source=request.source)
            except dr.NoBackup as error:
                raise refuse(str(error), error_type=ErrorType.NO_BACKUP) from error

    @activity.defn(name=Activity.FENCE_WORKLOADS)
    def fence_workloads(self, request: FenceWorkloads) -> FenceReport:
        """Scale the cluster's workloads to zero so two sites never serve writes at once. A
        cluster whose API cannot be reached within the time allowed is reported unreachable
        (its region is down: there is nothing to fence and no way to), not failed."""
        deadline = time.monotonic() + request.reach_timeout_seconds
        last_error = ""
        while True:
            try:
                # Finding the endpoint asks the cloud, which is as cut off as the cluster.
                api = self.connections.api_client(request.cluster)
                if health.api_ready(api):
                    with translated_failures():
                        return FenceReport(reachable=True, fenced=dr.fence(api, only=request.only))
                last_error = "its API server does not answer /readyz"
            except ApplicationError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure to reach it counts against the budget
                last_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            activity.heartbeat(last_error)
            if time.monotonic() >= deadline:
                return FenceReport(reachable=False, error=f"{request.cluster.name} did not answer for"
                                   f" {request.reach_timeout_seconds:g}s ({last_error})")
            time.sleep(min(2.0, max(0.05, request.reach_timeout_seconds / 20)))

    @activity.defn(name=Activity.UNFENCE_WORKLOADS)
    def unfence_workloads(self, cluster: ClusterRef) -> dict[str, int]:
        with translated_failures():
            return dr.unfence(self.connections.api_client(cluster))

    @activity.defn(name=Activity.RESTORE_WORKLOADS)
    def restore_workloads(self, request: RestoreWorkloads) -> RestoreReport:
        with translated_failures():
            try:
                deployments, namespaces = dr.restore(
                    self.connections.api_client(request.cluster), backup=request.backup, name=request.restore_name,
                    namespace_mapping=request.namespace_mapping, included_namespaces=request.included_namespaces,
                    timeout_seconds=request.timeout_seconds,
                    poll_interval_seconds=request.poll_interval_seconds, on_poll=activity.heartbeat)
            except dr.RestoreFailed as error:
                raise refuse(str(error), error_type=ErrorType.RESTORE_FAILED) from error
            return RestoreReport(restore=request.restore_name, deployments=deployments, namespaces=namespaces)

    @activity.defn(name=Activity.SET_REPLICAS)
    def set_replicas(self, request: SetReplicas) -> list[str]:
        with translated_failures():
            note: dict[str, str | None] | None = {recovery.FENCED_REPLICAS: None} if request.clear_fence else None
            return dr.set_replicas(self.connections.api_client(request.cluster), request.replicas, note=note)

    @activity.defn(name=Activity.REMOVE_RESTORED)
    def remove_restored(self, request: RemoveRestored) -> list[str]:
        with translated_failures():
            return dr.remove_restored(self.connections.api_client(request.cluster), namespaces=request.namespaces,
                                      deployments=request.deployments)

    @activity.defn(name=Activity.WAIT_WORKLOADS_READY)
    def wait_workloads_ready(self, request: WaitWorkloadsReady) -> None:
        with translated_failures():
            try:
                dr.wait_ready(self.connections.api_client(request.cluster), request.deployments,
                              timeout_seconds=request.timeout_seconds, poll_interval_seconds=request.poll_interval_seconds,
                              on_poll=activity.heartbeat)
            except dr.NotReadyInTime as error:
                raise refuse(f"{request.cluster.name}: {error}", error_type=ErrorType.WORKLOADS_NOT_READY) from error

    @activity.defn(name=Activity.REVOKE_CREDENTIALS)
    def revoke_credentials(self, cluster: ClusterRef) -> list[str]:
        """Drop the API clients and tokens this worker holds for the cluster. Credentials live
        only in worker memory (inputs carry references), so this is all Regatta holds."""
        self.connections.forget(cluster)
        return [f"cached API client and token of {cluster.name}"]

    @activity.defn(name=Activity.SWEEP_CLUSTERS)
    def sweep_clusters(self, request: SweepClusters | list[str]) -> dict[str, int]:
        """Health, versions and capacity of these clusters, from the clusters themselves, into the
        inventory; the counts by health. One unreachable cluster is recorded as such, not raised. (A bare list of
        names is what runs begun before patch sweep-batch-targeted send.)"""
        names = request.names if isinstance(request, SweepClusters) else request
        fresh = sweep(self.connections, self.inventory, names)
        counts: dict[str, int] = {}
        for record in fresh:
            kind = record.health.split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # ------------------------------------------------------------------ time-bound access (workflows/access_grant.py)

    @activity.defn(name=Activity.GRANT_ACCESS)
    def grant_access(self, request: GrantAccess) -> None:
        with translated_failures():
            try:
                cluster_access.grant(self.connections.api_client(request.cluster), grant_id=request.grant_id,
                                     account=request.account, role=request.role, person=request.person)
            except cluster_access.AccessRefused as error:
                raise refuse(f"{request.cluster.name}: {error}", error_type=ErrorType.ACCESS_REFUSED) from error

    @activity.defn(name=Activity.HAND_OUT_ACCESS)
    def hand_out_access(self, request: HandOutAccess) -> SealedKubeconfig:
        """A token for the grant's account, in a kubeconfig sealed to the requester's key: the token never leaves this
        process but as ciphertext only the requester can open (it goes through the workflow's history)."""
        import base64
        import json
        from pathlib import Path

        from regatta.formats import kubeconfig as kubeconfigs
        from regatta.formats.sealed_box import SealError, check_recipient, seal
        from regatta.rules.access_grants import token_seconds

        try:
            check_recipient(request.recipient_key)  # before any token is made
        except SealError as error:
            raise refuse(str(error), error_type=ErrorType.INVALID_INPUT) from error
        with translated_failures():
            api = self.connections.api_client(request.cluster)
            seconds = token_seconds(request.expires_at, datetime.now(UTC))  # from now: a late retry adds nothing
            try:
                token, expires = cluster_access.token(api, account=request.account, seconds=seconds)
            except cluster_access.AccessRefused as error:
                raise refuse(f"{request.cluster.name}: {error}", error_type=ErrorType.ACCESS_REFUSED) from error
            # where this worker reaches the API server, and the CA it trusts there (from the cloud, a kubeconfig or a
            # stored one alike)
            ca_path = api.configuration.ssl_ca_cert
            ca_data = base64.b64encode(Path(ca_path).read_bytes()).decode() if ca_path else None
            config = kubeconfigs.kubeconfig(name=request.cluster.name, server=api.configuration.host, ca_data=ca_data,
                                            user=kubeconfigs.token_user(token))
            try:
                ephemeral, nonce, ciphertext = seal(json.dumps(config).encode(), request.recipient_key)
            except SealError as error:
                raise refuse(str(error), error_type=ErrorType.INVALID_INPUT) from error
            return SealedKubeconfig(ephemeral_key=ephemeral, nonce=nonce, ciphertext=ciphertext,
                                    expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires
                                    else datetime.now(UTC))

    @activity.defn(name=Activity.REVOKE_ACCESS)
    def revoke_access(self, request: RevokeAccess) -> list[str]:
        with translated_failures():
            try:
                return cluster_access.revoke(self.connections.api_client(request.cluster), account=request.account)
            except cluster_access.AccessRefused as error:
                raise refuse(f"{request.cluster.name}: {error}", error_type=ErrorType.ACCESS_REFUSED) from error
