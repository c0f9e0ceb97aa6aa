"""A DecommissionCluster started with short timeouts, and its phases waited for."""

from __future__ import annotations

from regatta.models import DecommissionClusterInput, DecommissionClusterProgress, DecommissionClusterResult
from regatta.rules.operation_ids import operation_id
from tests.integration import conftest as integration

SYSTEM_ONLY = [{"name": "coredns", "namespace": "kube-system", "replicas": 2, "pdb": {"max_unavailable": 1}}]


async def decommission(client, task_queue, cluster: str, **fields):
    request = DecommissionClusterInput(cluster=cluster, requested_by="sre-alice", ticket="CHG-DEL", **{**FAST, **fields})
    return await client.start_workflow("DecommissionCluster", request, id=operation_id(cluster), task_queue=task_queue,
                                       result_type=DecommissionClusterResult)


async def wait_phase(handle, phase: str, timeout: float = 30) -> DecommissionClusterProgress:
    return await integration.wait_phase(handle, phase, DecommissionClusterProgress, timeout=timeout)


FAST = {"poll_interval_seconds": 0.05, "cloud_operation_timeout_seconds": 60, "activity_heartbeat_timeout_seconds": 5}
