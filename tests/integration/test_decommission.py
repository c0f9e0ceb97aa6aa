"""DecommissionCluster: each refusal, the four-eyes approval, the backup before deletion, and
completion after the worker is SIGKILLed mid-way."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from regatta.models import DecommissionClusterProgress
from tests.conftest import WorkerProcess, sim_report
from tests.integration.decommissions import SYSTEM_ONLY, decommission, wait_phase
from workers.main import build_worker


def gone(simulator, inventory, cluster: str) -> bool:
    return cluster not in sim_report(simulator, cluster)["clusters"] and cluster not in [r.name for r in inventory.list_clusters()]


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
async def test_approved_decommission_backs_up_deletes_and_deregisters(provider, client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster(f"del-{provider}", provider=provider, workloads=SYSTEM_ONLY)
    handle = await decommission(client, task_queue, cluster)
    await wait_phase(handle, "awaiting_approval")
    with pytest.raises(WorkflowUpdateFailedError) as self_approval:
        await handle.execute_update("approve", {"approver": "sre-alice"})
    assert "cannot approve it; a second person must" in str(self_approval.value.cause)
    assert cluster in sim_report(simulator, cluster)["clusters"]  # nothing happened yet

    await handle.execute_update("approve", {"approver": "sre-bob", "comment": "checked the dashboards"})
    result = await handle.result()

    assert result.outcome == "succeeded" and result.approved_by == "sre-bob"
    if provider == "aks":  # AKS deletes no last System pool: it goes with the cluster
        assert result.deleted == ["node_pool:pool1", "cluster", "node_pool:pool0 (with the cluster)"]
    else:
        assert result.deleted == ["node_pool:pool0", "node_pool:pool1", "cluster"]
    assert gone(simulator, inventory, cluster)
    assert sim_report(simulator, cluster)["backups"][cluster] == [f"final-{cluster}"]
    trail = [(r.action, r.outcome) for r in inventory.audit(cluster=cluster)]
    assert trail == [("decommission", "started"), ("approve", "approved"), ("cordon", "succeeded"), ("backup", "succeeded"),
                     ("delete", "succeeded"), ("deregister", "succeeded"), ("decommission", "succeeded")]


@pytest.mark.parametrize(
    ("labels", "workloads", "fields", "error_type", "says"),
    [
        ({"traffic": "serving"}, SYSTEM_ONLY, {}, "ClusterInUse", "serves traffic"),
        ({"dr-role": "standby"}, SYSTEM_ONLY, {}, "ClusterInUse", "DR role 'standby'"),
        ({}, None, {}, "ClusterNotEmpty", "shop/checkout (3 replicas)"),
        ({}, None, {"force_empty": True}, "InvalidInput", "force_empty needs a force_reason"),
    ],
    ids=["serves-traffic", "dr-role", "not-empty", "force-without-reason"],
)
async def test_refusals_change_nothing(labels, workloads, fields, error_type, says, client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("keep", labels=labels, workloads=workloads)
    with pytest.raises(WorkflowFailureError) as caught:
        await (await decommission(client, task_queue, cluster, **fields)).result()
    assert caught.value.cause.type == error_type and says in caught.value.cause.message
    state = sim_report(simulator, cluster)["clusters"][cluster]
    assert not any(n["unschedulable"] for n in state["nodes"].values()) and len(state["node_pools"]) == 2
    assert cluster in [r.name for r in inventory.list_clusters()]


async def test_an_unknown_cluster_is_refused(client, worker, task_queue):
    with pytest.raises(WorkflowFailureError) as caught:
        await (await decommission(client, task_queue, "no-such-cluster")).result()
    assert caught.value.cause.type == "UnknownCluster"


async def test_force_empty_with_a_reason_deletes_a_cluster_that_still_runs_workloads(client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("force")
    handle = await decommission(client, task_queue, cluster, force_empty=True, force_reason="team dissolved, data migrated")
    await wait_phase(handle, "awaiting_approval")
    await handle.execute_update("approve", {"approver": "sre-bob"})
    assert (await handle.result()).outcome == "succeeded"
    assert gone(simulator, inventory, cluster)
    assert any("team dissolved" in r.detail for r in inventory.audit(cluster=cluster))


async def test_abort_while_awaiting_approval_leaves_the_cluster_serving(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("abortdel", workloads=SYSTEM_ONLY)
    handle = await decommission(client, task_queue, cluster)
    await wait_phase(handle, "awaiting_approval")
    await handle.execute_update("abort", {"reason": "wrong cluster"})
    result = await handle.result()
    assert result.outcome == "aborted" and "wrong cluster" in result.message
    state = sim_report(simulator, cluster)["clusters"][cluster]
    assert not any(n["unschedulable"] for n in state["nodes"].values())


async def test_a_decommission_interrupted_by_a_worker_sigkill_completes_on_a_new_worker(
    client, task_queue, queue_settings, add_cluster, simulator, inventory
):
    cluster = add_cluster("chaosdel", workloads=SYSTEM_ONLY, time_scale=0.01)  # cluster deletion takes 3s
    with WorkerProcess(queue_settings) as doomed:
        handle = await decommission(client, task_queue, cluster, activity_heartbeat_timeout_seconds=2)
        await wait_phase(handle, "awaiting_approval", timeout=60)
        await handle.execute_update("approve", {"approver": "sre-bob"})
        deadline = asyncio.get_running_loop().time() + 60
        while (await handle.query("progress", result_type=DecommissionClusterProgress)).step != f"deleting cluster {cluster}":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        doomed.sigkill()
    async with build_worker(client, queue_settings):
        result = await handle.result()
    assert result.outcome == "succeeded"
    assert gone(simulator, inventory, cluster)
    assert [r.outcome for r in inventory.audit(cluster=cluster)].count("succeeded") == 5
