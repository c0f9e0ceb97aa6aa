"""What an upgrade refuses, at once and with a message saying what to do, changing nothing;
and how it stops when a budget never lets a drain through."""

from __future__ import annotations

import pytest

from regatta.temporal.operations import OperationRefused, start
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.upgrades import failure_of


def untouched(report: dict, cluster: str) -> bool:
    state = report["clusters"][cluster]
    return (
        state["control_plane_version"] == "1.30"
        and all(n["version"].startswith("v1.30.") and not n["unschedulable"] for n in state["nodes"].values())
        and set(state["node_pools"]) == {"pool0", "pool1"}
    )


@pytest.mark.parametrize(
    ("target", "error_type", "says"),
    [
        ("1.29", "IllegalVersionJump", "cannot be downgraded"),
        ("1.30", "AlreadyAtVersion", "nothing to do"),
        ("1.31.2", "InvalidVersion", "MAJOR.MINOR"),
    ],
)
async def test_illegal_targets_are_refused_and_nothing_changes(target, error_type, says, client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("jump")
    failure = await failure_of(await start_upgrade(client, task_queue, cluster, target_version=target))
    assert failure.type == error_type
    assert says in failure.message
    assert untouched(sim_report(simulator, cluster), cluster)
    assert inventory.audit(cluster=cluster)[-1].outcome == "refused"


async def test_unknown_cluster_is_refused(client, worker, task_queue):
    failure = await failure_of(await start_upgrade(client, task_queue, "no-such-cluster"))
    assert failure.type == "UnknownCluster"
    assert "regatta clusters list" in failure.message


async def test_a_budget_that_can_never_allow_an_eviction_is_refused(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("pdb", workloads=[
        {"name": "ledger", "namespace": "bank", "replicas": 2, "pdb": {"min_available": 2}},
        {"name": "web", "namespace": "bank", "replicas": 3, "pdb": {"max_unavailable": 1}},
    ])
    failure = await failure_of(await start_upgrade(client, task_queue, cluster))
    assert failure.type == "UnsatisfiablePdb"
    assert "bank/ledger-pdb" in failure.message and "minAvailable=2" in failure.message
    assert untouched(sim_report(simulator, cluster), cluster)


async def test_a_second_operation_on_the_same_cluster_is_refused_naming_the_first(
    client, worker, task_queue, add_cluster, simulator, queue_settings, inventory
):
    cluster = add_cluster("busy", time_scale=0.008)
    from regatta.models import ClusterUpgradeInput

    record = inventory.get_cluster(cluster)
    request = ClusterUpgradeInput(cluster=cluster, target_version="1.31", poll_interval_seconds=0.05, ticket="CHG-7")
    first = await start(queue_settings, request, cluster=record)
    with pytest.raises(OperationRefused) as refused:
        await start(queue_settings, request.model_copy(update={"ticket": "CHG-8"}), cluster=record)
    assert f"held by ClusterUpgrade {first.id}" in str(refused.value)
    assert "CHG-7" in str(refused.value) and "regatta op abort" in str(refused.value)
    await first.execute_update("abort", {"reason": "test over"})
    await first.result()


async def test_transient_cloud_and_api_errors_are_retried_to_success(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("flaky")
    set_faults(simulator, cluster, error_rate=0.3, error_codes=[429, 500, 503])
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green")
    result = await handle.result()
    assert result.outcome == "succeeded"
    report = sim_report(simulator, cluster)
    assert all(n["version"].startswith("v1.31.") for n in report["clusters"][cluster]["nodes"].values())
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    history = await handle.fetch_history()
    retried = [e for e in history.events if e.HasField("activity_task_started_event_attributes")
               and e.activity_task_started_event_attributes.attempt > 1]
    assert retried, "the injected errors never reached an activity retry"


async def test_a_budget_that_blocks_forever_stops_the_upgrade_naming_it(client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("blocked")
    set_faults(simulator, cluster, blocking_pdbs=["shop/checkout-pdb"])
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green", drain_timeout_seconds=1.5)
    failure = await failure_of(handle)

    assert failure.type == "DrainTimeout"
    assert "shop/checkout-pdb" in failure.message and "shop/checkout-" in failure.message
    assert "timed out after 1.5s" in failure.message
    report = sim_report(simulator, cluster)
    nodes = report["clusters"][cluster]["nodes"]
    assert [n for n, v in nodes.items() if v["unschedulable"] and v["pods"] > 0] == []
    assert report["pdb_violations"] == []
    assert inventory.audit(operation_id=handle.id)[-1].outcome == "failed"


async def test_json_that_does_not_fit_the_input_fails_at_once_saying_what_to_fix(client, worker, task_queue, add_cluster):
    cluster = add_cluster("json")
    handle = await client.start_workflow(
        "ClusterUpgrade", {"cluster": cluster, "target_versoin": "1.31"}, id=f"cluster-{cluster}", task_queue=task_queue
    )
    failure = await failure_of(handle)
    assert failure.type == "InvalidInput"
    assert "target_version: Field required" in failure.message and "target_versoin: Extra inputs" in failure.message


async def test_an_upgrade_under_another_workflow_id_is_refused(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("wrongid")
    handle = await client.start_workflow(
        "ClusterUpgrade", {"cluster": cluster, "target_version": "1.31"}, id=f"my-upgrade-{cluster}", task_queue=task_queue
    )
    failure = await failure_of(handle)
    assert failure.type == "WrongOperationId" and f"cluster-{cluster}" in failure.message
    assert untouched(sim_report(simulator, cluster), cluster)


async def test_a_node_that_never_becomes_ready_stops_the_surge_and_the_cluster_keeps_serving(
    client, worker, task_queue, add_cluster, simulator
):
    cluster = add_cluster("notready", version="1.31", pool_version="1.30", pools=1)
    set_faults(simulator, cluster, node_never_ready=True)
    failure = await failure_of(await start_upgrade(client, task_queue, cluster, strategy="surge"))
    assert failure.type == "CloudOperationFailed"
    assert "NodeCreationFailure" in failure.message and "pool0" in failure.message
    report = sim_report(simulator, cluster)
    state = report["clusters"][cluster]
    assert state["pods_ready"] == state["pods"] and report["pdb_violations"] == []
    assert not any(n["unschedulable"] for n in state["nodes"].values())


async def test_a_cloud_operation_that_hangs_times_out_with_what_to_do(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("hang")
    set_faults(simulator, cluster, hang=True)
    failure = await failure_of(await start_upgrade(client, task_queue, cluster, cloud_operation_timeout_seconds=1))
    assert failure.type == "CloudOperationTimeout"
    assert "did not finish within 1s" in failure.message and "control plane upgrade" in failure.message


async def test_a_call_that_fails_n_times_then_succeeds_is_retried(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("failn")
    set_faults(simulator, cluster, fail_times=6, fail_operation="UpdateClusterVersion")
    result = await (await start_upgrade(client, task_queue, cluster)).result()
    assert result.outcome == "succeeded" and result.control_plane_version == "1.31"


async def test_a_kubeconfig_cluster_refuses_control_plane_work_saying_why(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("onprem", provider="kubeconfig")
    failure = await failure_of(await start_upgrade(client, task_queue, cluster))
    assert failure.type == "NotManaged"
    assert "kubeconfig only" in failure.message and "cannot upgrade its control plane to 1.31" in failure.message
    assert untouched(sim_report(simulator, cluster), cluster)
