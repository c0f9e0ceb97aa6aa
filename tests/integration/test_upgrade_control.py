"""Pause holds the cluster between batches and resume continues; abort finishes the step in
flight, returns every cordoned node that still serves to service, and records the outcome."""

from __future__ import annotations

import asyncio

from regatta.models import ClusterUpgradeProgress
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.upgrades import progress_of, wait_for

# Slow enough that a drain batch is observable (pods start in 0.04s, nodes boot in 0.7s),
# fast enough that the control plane takes under 4s.
SLOW = 0.008






def first_pool_draining(progress: ClusterUpgradeProgress) -> bool:
    return bool(progress.pools) and progress.pools[0].nodes_done >= 1


async def test_pause_holds_between_batches_and_resume_continues(client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("pause", time_scale=SLOW)
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green")
    await wait_for(handle, first_pool_draining)

    paused = await handle.execute_update("pause", {"reason": "customer event", "requested_by": "sre-a"}, result_type=ClusterUpgradeProgress)
    assert paused.paused and paused.pause_reason == "customer event"
    held = await wait_for(handle, lambda p: p.step.startswith("paused before"))
    before = sim_report(simulator, cluster)["clusters"][cluster]
    await asyncio.sleep(1.5)
    still = await progress_of(handle)
    after = sim_report(simulator, cluster)["clusters"][cluster]
    assert still.pools[0].nodes_done == held.pools[0].nodes_done, "a batch started while paused"
    assert {n: v["pods"] for n, v in after["nodes"].items()} == {n: v["pods"] for n, v in before["nodes"].items()}

    await handle.execute_update("resume", {"requested_by": "sre-a"})
    result = await handle.result()
    assert result.outcome == "succeeded"
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    outcomes = [r.outcome for r in inventory.audit(operation_id=handle.id)]
    assert outcomes.count("paused") == 1 and outcomes.count("resumed") == 1 and outcomes[-1] == "succeeded"


async def test_refused_controls_say_why(client, worker, task_queue, add_cluster):
    from temporalio.client import WorkflowUpdateFailedError

    cluster = add_cluster("ctl", time_scale=SLOW)
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green")
    await wait_for(handle, lambda p: p.phase != "preflight")
    try:
        await handle.execute_update("resume", {})
        raise AssertionError("resume of a running upgrade was accepted")
    except WorkflowUpdateFailedError as error:
        assert "not paused" in str(error.cause)
    await handle.execute_update("pause", {})
    try:
        await handle.execute_update("pause", {})
        raise AssertionError("a second pause was accepted")
    except WorkflowUpdateFailedError as error:
        assert "already paused" in str(error.cause)
    await handle.execute_update("abort", {"reason": "test over"})
    assert (await handle.result()).outcome == "aborted"


async def test_abort_finishes_the_batch_and_hands_back_serving_nodes(client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("abort", time_scale=SLOW)
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green")
    await wait_for(handle, first_pool_draining)

    await handle.execute_update("abort", {"reason": "pager storm", "requested_by": "sre-b"})
    result = await handle.result()

    assert result.outcome == "aborted"
    assert "pager storm" in result.message
    assert result.pools[0].status == "aborted" and result.pools[1].status == "aborted"
    report = sim_report(simulator, cluster)
    nodes = report["clusters"][cluster]["nodes"]
    cordoned_serving = [name for name, node in nodes.items() if node["unschedulable"] and node["pods"] > 0]
    assert cordoned_serving == []
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    # Both pools still exist: the cluster is consistent and serving, ready for a new attempt.
    assert {"pool0", "pool0-v1-31", "pool1"} <= set(report["clusters"][cluster]["node_pools"])
    assert report["clusters"][cluster]["pods_ready"] == report["clusters"][cluster]["pods"]
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert ("abort", "abort_requested") in trail and trail[-1] == ("upgrade", "aborted")

    # Starting again finishes the job from where the abort left it.
    again = await start_upgrade(client, task_queue, cluster, strategy="blue_green")
    assert (await again.result()).outcome == "succeeded"
    final = sim_report(simulator, cluster)
    assert set(final["clusters"][cluster]["node_pools"]) == {"pool0-v1-31", "pool1-v1-31"}
    # Both runs share the operation id; the audit keeps both trails whole.
    both = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert both.count(("upgrade", "started")) == 2 and both[-1] == ("upgrade", "succeeded")
    assert final["pdb_violations"] == []
