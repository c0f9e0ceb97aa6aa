"""Activities against each cluster's own API: inspect it, cordon, drain, and gate on health."""

from __future__ import annotations

import time

from temporalio import activity

from activities.failures import refuse, translated_failures
from regatta import planning
from regatta.kube import backup as backups
from regatta.kube import bootstrap as bootstraps
from regatta.kube import drain as drains
from regatta.kube import health
from regatta.kube.connect import ClusterConnections
from regatta.models import (
    Activity,
    BootstrapCluster,
    ClusterInspection,
    ClusterRef,
    CordonNodes,
    DrainNodes,
    DrainReport,
    FinalBackup,
    HealthGate,
    HealthReport,
)


class KubeActivities:
    def __init__(self, connections: ClusterConnections):
        self.connections = connections

    @activity.defn(name=Activity.INSPECT_CLUSTER)
    def inspect_cluster(self, cluster: ClusterRef) -> ClusterInspection:
        with translated_failures():
            state = health.read_health(self.connections.api_client(cluster))
            return ClusterInspection(
                api_ready=state.api_ready, nodes=state.nodes, pdbs=state.pdbs,
                problems=planning.health_problems(nodes=state.nodes, deployments=state.deployments, api_ready=state.api_ready),
            )

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
            for node in request.nodes:
                if node in finished:
                    continue
                evicted += drains.drain_node(
                    api, node, timeout_seconds=request.timeout_seconds, retry_seconds=request.eviction_retry_seconds,
                    on_progress=lambda n, node=node: activity.heartbeat(finished, evicted_before + evicted + n, node),
                )
                finished.append(node)
                activity.heartbeat(finished, evicted_before + evicted, None)
        return DrainReport(nodes=finished, pods_evicted=evicted_before + evicted)

    @activity.defn(name=Activity.HEALTH_GATE)
    def health_gate(self, request: HealthGate) -> HealthReport:
        """Wait until the cluster is healthy again, or fail the gate after its timeout."""
        api = self.connections.api_client(request.cluster)
        deadline = time.monotonic() + request.timeout_seconds
        with translated_failures():
            while True:
                problems = health.current_problems(api, min_ready_nodes=request.min_ready_nodes)
                activity.heartbeat(problems)
                if not problems:
                    return HealthReport(healthy=True)
                if time.monotonic() >= deadline:
                    raise refuse(
                        f"{request.cluster.name} is not healthy {request.timeout_seconds:g}s after {request.after}: "
                        + "; ".join(problems[:10])
                        + ". Fix what is listed, then start the upgrade again; it resumes where it stopped",
                        error_type=request.failure_type,
                    )
                time.sleep(request.poll_interval_seconds)

    @activity.defn(name=Activity.BOOTSTRAP_CLUSTER)
    def bootstrap_cluster(self, request: BootstrapCluster) -> list[str]:
        with translated_failures():
            return bootstraps.bootstrap(
                self.connections.api_client(request.cluster), namespaces=request.namespaces, admin_group=request.admin_group
            )

    @activity.defn(name=Activity.LIST_WORKLOADS)
    def list_workloads(self, cluster: ClusterRef) -> list[str]:
        """Non-system deployments that still have replicas: what a decommission would destroy."""
        with translated_failures():
            return planning.non_system_workloads(health.read_deployments(self.connections.api_client(cluster)))

    @activity.defn(name=Activity.FINAL_BACKUP)
    def final_backup(self, request: FinalBackup) -> str:
        with translated_failures():
            try:
                return backups.final_backup(self.connections.api_client(request.cluster), name=request.name,
                                            timeout_seconds=request.timeout_seconds,
                                            poll_interval_seconds=request.poll_interval_seconds)
            except backups.BackupFailed as error:
                raise refuse(str(error), error_type="BackupFailed") from error

    @activity.defn(name=Activity.REVOKE_CREDENTIALS)
    def revoke_credentials(self, cluster: ClusterRef) -> list[str]:
        """Drop the API clients and tokens this worker holds for the cluster. Credentials live
        only in worker memory (inputs carry references), so this is all Regatta holds."""
        self.connections.forget(cluster)
        return [f"cached API client and token of {cluster.name}"]
