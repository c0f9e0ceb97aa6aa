"""A ProvisionCluster request, its start, its failure's cause, and a check that nothing it made is left behind."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.models import ProvisionClusterInput, ProvisionClusterResult
from regatta.rules.operation_ids import operation_id
from tests.conftest import sim_report


def request(provider: str = "eks", **changes) -> ProvisionClusterInput:
    fields = {
        "name": f"{provider}-new-{uuid.uuid4().hex[:6]}", "provider": provider, "region": REGION[provider],
        "version": "1.31", "environment": "dev", "labels": {"team": "search"}, "ticket": "CHG-100",
        "node_pools": [{"name": "system", "node_count": 2}, {"name": "general", "node_count": 3}],
        "poll_interval_seconds": 0.05, "ready_timeout_seconds": 20, "cloud_operation_timeout_seconds": 60,
        "activity_heartbeat_timeout_seconds": 5,
        # What the simulated AWS account has (regatta/formats/fleet_file.py, EksAccountSpec): EKS refuses less.
        **({"network": EKS_NETWORK} if provider == "eks" else {}),
    }
    return ProvisionClusterInput(**{**fields, **changes})


EKS_NETWORK = {"subnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
               "cluster_role": "arn:aws:iam::111122223333:role/eks-cluster",
               "node_role": "arn:aws:iam::111122223333:role/eks-node"}


async def provision(client, task_queue, spec: ProvisionClusterInput):
    return await client.start_workflow("ProvisionCluster", spec, id=operation_id(spec.name), task_queue=task_queue,
                                       result_type=ProvisionClusterResult)


async def failure_of(handle) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    return caught.value.cause


def nothing_left(simulator, inventory, name: str) -> None:
    assert name not in sim_report(simulator, name)["clusters"], "the simulator still holds the attempted cluster"
    assert name not in [r.name for r in inventory.list_clusters()], "the inventory still lists the attempted cluster"


REGION = {"eks": "us-east-1", "gke": "europe-west4", "aks": "westeurope"}
