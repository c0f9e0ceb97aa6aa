"""DRFailover and DRFailback against the simulator: a failover with the primary's region down,
refusals before anything changes, a SIGKILLed worker that must not shift traffic twice, a
failback that restores the original state, the approval gate, and the drill."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from regatta.models import DRFailoverInput, DRResult
from regatta.rules.operation_ids import operation_id
from tests.conftest import WorkerProcess
from tests.integration import conftest as integration
from tests.integration.dr_pairs import FAST, WARM_COPIES, Pair, failback, failover, wait_phase
from tests.shared_http import http
from workers.main import build_worker

# The standby keeps copies of the two critical services at zero, to scale up on failover; the
# rest comes from the backup.




@pytest.fixture
def pair_of(simulator, inventory):
    return lambda **kwargs: Pair(simulator, inventory, **kwargs)








async def test_failover_with_the_primary_region_down_restores_shifts_and_reports_rto_rpo(
        client, worker, task_queue, pair_of, inventory):
    pair = pair_of(primary_region="eu-north-1", backup_age=600)
    pair.region("eu-north-1", down=True)
    try:
        result = await (await failover(client, task_queue, pair)).result()
    finally:
        pair.region("eu-north-1", down=False)

    assert result.outcome == "succeeded" and not result.drill
    assert result.fencing.startswith("skipped:") and "did not answer" in result.fencing
    assert result.backup == f"scheduled-{pair.primary}"
    assert 600 <= result.rpo_seconds < 700  # the backup's age when the failover started
    assert 0 < result.rto_seconds < 60
    assert result.scaled == {"shop/checkout": 3, "shop/payments": 4}
    assert result.restored == ["jobs/batch", "shop/catalog"]
    assert pair.replicas(pair.standby) == {"jobs/batch": 2, "shop/catalog": 4, "shop/checkout": 3, "shop/payments": 4}
    standby = pair.report(pair.standby)["clusters"][pair.standby]
    assert standby["pods_ready"] == 13 and standby["pods_pending"] == 0
    assert {s: t["weights"] for s, t in pair.traffic().items()} == {
        s: {pair.primary: 0, pair.standby: 100} for s in pair.services}
    assert inventory.dr_pair(pair.primary).serving == "standby"
    trail = [(r.action, r.outcome) for r in inventory.audit(cluster=pair.primary)]
    assert trail == [("failover", "started"), ("fence", "skipped"), ("restore", "succeeded"), ("scale-up", "succeeded"),
                     ("traffic", "succeeded"), ("DRFailover", "succeeded")]
    assert f"RTO {result.rto_seconds:.1f}s" in inventory.audit(cluster=pair.primary)[-1].detail
    assert pair.report(pair.standby)["pdb_violations"] == []


@pytest.mark.parametrize("standby, problem", [
    ({"standby_pools": [{"name": "tiny", "nodes": 1, "node_size": "t3.small"}]},
     "is too small: it has room for 11 more pods but the workloads need 13: short by 2 pods (about 1 more node of 11 pods)"),
    ({"standby_workloads": WARM_COPIES + [{"name": "hog", "namespace": "own", "replicas": 200}]},
     "is not healthy: deployment own/hog has 87/200 replicas ready"),
    ({"standby_version": "1.28"}, "is not on a compatible version: it runs Kubernetes 1.28 and the workloads come from 1.30"),
])
async def test_a_standby_that_cannot_take_over_is_refused_before_anything_changes(
        standby, problem, client, worker, task_queue, pair_of, inventory):
    pair = pair_of(**standby)
    before = (pair.replicas(pair.primary), pair.replicas(pair.standby), pair.traffic())
    with pytest.raises(WorkflowFailureError) as refused:
        await (await failover(client, task_queue, pair)).result()
    message = str(refused.value.cause)
    assert problem in message and "nothing was changed" in message
    assert refused.value.cause.type == "StandbyNotReady"
    assert (pair.replicas(pair.primary), pair.replicas(pair.standby), pair.traffic()) == before
    assert inventory.dr_pair(pair.primary).serving == "primary"
    assert [(r.action, r.outcome) for r in inventory.audit(cluster=pair.primary)] == [
        ("failover", "started"), ("DRFailover", "refused")]


async def test_a_capacity_override_is_audited_and_verification_still_names_what_does_not_answer(
        client, worker, task_queue, pair_of, inventory):
    pair = pair_of(standby_pools=[{"name": "tiny", "nodes": 2, "node_size": "t3.small"}],
                   standby_workloads=WARM_COPIES + [{"name": "own", "namespace": "own", "replicas": 10}])
    handle = await failover(client, task_queue, pair, override_capacity="the autoscaler adds nodes within minutes",
                            ready_timeout_seconds=1)
    with pytest.raises(WorkflowFailureError) as stopped:
        await handle.result()
    assert stopped.value.cause.type == "WorkloadsNotReady"
    assert "these workloads do not answer" in str(stopped.value.cause) and "(3/4 ready)" in str(stopped.value.cause)
    override = [r for r in inventory.audit(cluster=pair.primary) if r.action == "capacity-override"]
    assert len(override) == 1 and "short by 1 pods" in override[0].detail
    assert "the autoscaler adds nodes within minutes" in override[0].detail
    assert inventory.dr_pair(pair.primary).serving == "primary"  # not recorded as failed over


async def test_requests_that_do_not_name_a_declared_pair_are_refused(client, worker, task_queue, pair_of, inventory):
    pair = pair_of()
    with pytest.raises(WorkflowFailureError) as wrong_standby:
        await (await failover(client, task_queue, pair, standby="eks-somewhere-else")).result()
    assert f"the standby of {pair.primary} is {pair.standby}, not eks-somewhere-else" in str(wrong_standby.value.cause)

    request = DRFailoverInput(cluster=pair.standby, standby=pair.primary, **FAST)
    with pytest.raises(WorkflowFailureError) as reversed_pair:
        await (await client.start_workflow("DRFailover", request, id=operation_id(pair.standby), task_queue=task_queue,
                                           result_type=DRResult)).result()
    assert f"it is the standby of {pair.primary}: fail over {pair.primary}" in str(reversed_pair.value.cause)

    with pytest.raises(WorkflowFailureError) as nothing_to_fail_back:
        await (await failback(client, task_queue, pair)).result()
    assert "serves its own workloads already; there is nothing to fail back" in str(nothing_to_fail_back.value.cause)
    assert pair.traffic()[pair.services[0]]["changes"] == 0


async def test_failover_interrupted_by_a_sigkill_completes_on_a_new_worker_without_shifting_traffic_twice(
        client, queue_settings, task_queue, pair_of, simulator, inventory):
    pair = pair_of()
    # Restores on this standby take a while, so the worker dies in the middle of one.
    simulator.world.clusters[pair.standby].time_scale = 0.02
    handle = await failover(client, task_queue, pair)
    with WorkerProcess(queue_settings) as first:
        await wait_phase(handle, "restoring", timeout=60)
        first.sigkill()
    async with build_worker(client, queue_settings):
        result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.fencing == f"fenced 4 deployments on {pair.primary}"
    assert pair.replicas(pair.primary) == {"jobs/batch": 0, "shop/catalog": 0, "shop/checkout": 0, "shop/payments": 0}
    assert pair.traffic() == {s: {"weights": {pair.primary: 0, pair.standby: 100}, "changes": 1} for s in pair.services}
    assert pair.replicas(pair.standby) == {"jobs/batch": 2, "shop/catalog": 4, "shop/checkout": 3, "shop/payments": 4}
    assert pair.report(pair.standby)["double_drains"] == [] and pair.report(pair.standby)["pdb_violations"] == []
    assert [r.action for r in inventory.audit(cluster=pair.primary)].count("traffic") == 1


async def test_failback_restores_the_original_state(client, worker, task_queue, queue_settings, pair_of, inventory):
    """The failback is started as a change-ticket system starts it, over the API (`kind: failback`)."""
    import httpx

    from regatta.api.app import create_app
    from regatta.api.tokens import create_token

    pair = pair_of()
    original = (pair.replicas(pair.primary), pair.replicas(pair.standby),
                {s: t["weights"] for s, t in pair.traffic().items()})
    _, secret = create_token(inventory, name=f"ops-{pair.primary}", role="operator", environments=["staging"])
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(queue_settings, inventory)),
                            base_url="http://regatta.test", headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    body = {"kind": "failback", "ticket": f"CHG-{pair.primary}", "input": {"cluster": pair.primary, **FAST}}
    early = await api.post("/v1/operations", json=body)
    assert early.status_code == 409 and "nothing to fail back" in early.json()["error"], early.text
    await (await failover(client, task_queue, pair)).result()
    assert pair.replicas(pair.primary)["shop/checkout"] == 0  # fenced while the standby served
    # While the standby serves, the team creates something new there: failback must keep it.
    http.post(f"{pair.simulator.url}/sim/backups", json={"cluster": pair.standby}, timeout=10).raise_for_status()

    started = await api.post("/v1/operations", json={**body, "ticket": f"CHG-{pair.standby}"})
    assert started.status_code == 201 and started.json()["operation_id"] == operation_id(pair.primary), started.text
    handle = client.get_workflow_handle(started.json()["operation_id"], result_type=DRResult)
    result = await handle.result()
    found = (await api.get(f"/v1/operations/{operation_id(pair.primary)}")).json()
    assert found["condition"] == {"state": "succeeded", "reason": "Succeeded", "message": found["condition"]["message"],
                                  "ended": True}

    assert result.outcome == "succeeded" and result.source == pair.standby and result.target == pair.primary
    assert result.scaled == {"jobs/batch": 2, "shop/catalog": 4, "shop/checkout": 3, "shop/payments": 4}
    assert result.rpo_seconds is not None and result.rpo_seconds < 30
    assert (pair.replicas(pair.primary), pair.replicas(pair.standby),
            {s: t["weights"] for s, t in pair.traffic().items()}) == original
    assert pair.report(pair.standby)["clusters"][pair.standby]["namespaces"] == [
        "default", "kube-node-lease", "kube-public", "kube-system", "shop", "velero"]
    assert inventory.dr_pair(pair.primary).serving == "primary"
    primary = pair.report(pair.primary)["clusters"][pair.primary]
    assert primary["pods_ready"] == 13
    assert pair.report(pair.primary)["pdb_violations"] == [] and pair.report(pair.standby)["pdb_violations"] == []
    failback_trail = [(r.action, r.outcome) for r in inventory.audit(cluster=pair.primary) if r.operation == "DRFailback"]
    assert failback_trail == [("failback", "started"), ("backup", "succeeded"), ("fence", "succeeded"),
                              ("restore", "succeeded"), ("unfence", "succeeded"), ("traffic", "succeeded"),
                              ("standby", "succeeded"), ("DRFailback", "succeeded")]


async def test_prod_failover_waits_for_a_second_person_before_fencing_and_can_be_aborted_until_then(
        client, worker, task_queue, pair_of, simulator, inventory):
    pair = pair_of(env="prod")
    simulator.world.clusters[pair.standby].time_scale = 0.02  # a restore long enough to try aborting it
    handle = await failover(client, task_queue, pair)
    progress = await wait_phase(handle, "awaiting_approval")
    assert progress.approval_required and progress.fencing == "pending"
    with pytest.raises(WorkflowUpdateFailedError) as self_approval:
        await handle.execute_update("approve", {"approver": "sre-alice"})
    assert "cannot approve it; a second person must" in str(self_approval.value.cause)
    assert pair.replicas(pair.primary)["shop/checkout"] == 3  # nothing fenced while it waits

    await handle.execute_update("abort", {"reason": "the region came back", "requested_by": "sre-alice"})
    result = await handle.result()
    assert result.outcome == "aborted" and "before anything changed" in result.message
    assert pair.replicas(pair.primary)["shop/checkout"] == 3 and pair.traffic()[pair.services[0]]["changes"] == 0

    handle = await failover(client, task_queue, pair)
    await wait_phase(handle, "awaiting_approval")
    await handle.execute_update("approve", {"approver": "sre-bob", "comment": "region confirmed down"})
    await wait_phase(handle, "restoring")
    with pytest.raises(WorkflowUpdateFailedError) as too_late:
        await handle.execute_update("abort", {"reason": "oops"})
    assert "cannot abort: the DRFailover is restoring and will finish" in str(too_late.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await handle.execute_update("approve", {"approver": "sre-carol"})
    assert "nothing to approve: the DRFailover is restoring" in str(twice.value.cause)
    result = await handle.result()
    assert result.outcome == "succeeded" and result.approved_by == "sre-bob"
    assert ("approve", "approved") in [(r.action, r.outcome) for r in inventory.audit(cluster=pair.primary)]


async def test_a_drill_measures_rto_without_fencing_or_moving_traffic_and_leaves_nothing_behind(
        client, worker, task_queue, pair_of, inventory):
    pair = pair_of(env="prod")  # a drill needs no approval, even in prod: it changes nothing that serves
    before = (pair.replicas(pair.primary), pair.replicas(pair.standby), pair.traffic())
    result = await (await failover(client, task_queue, pair, drill=True)).result()

    assert result.outcome == "succeeded" and result.drill and result.fencing == "not in a drill"
    assert result.rto_seconds > 0 and result.rpo_seconds >= 600
    assert sorted(result.restored) == ["dr-drill-jobs/batch", "dr-drill-shop/catalog", "dr-drill-shop/checkout",
                                       "dr-drill-shop/payments"]
    assert "drill:" in result.message and "nothing was fenced and no traffic moved" in result.message
    assert (pair.replicas(pair.primary), pair.replicas(pair.standby), pair.traffic()) == before
    assert not any(ns.startswith("dr-drill") for ns in pair.report(pair.standby)["clusters"][pair.standby]["namespaces"])
    assert inventory.dr_pair(pair.primary).serving == "primary"


async def test_a_drill_on_a_standby_in_a_private_site_reaches_it_only_through_the_sites_agent(
        client, worker, task_queue, queue_settings, pair_of):
    from regatta.rules.sites import site_task_queue

    pair = pair_of(standby_site="dc4")
    async with build_worker(client, queue_settings, site="dc4"):
        handle = await failover(client, task_queue, pair, drill=True)
        result = await handle.result()
    assert result.outcome == "succeeded" and result.drill and len(result.restored) == 4, result
    scheduled = await integration.queues_used(client, handle.id)
    at_site = scheduled[site_task_queue(task_queue, "dc4")]
    assert {"kube.restore_workloads", "kube.wait_workloads_ready"} <= at_site, scheduled
    assert all(name.startswith("kube.") for name in at_site), scheduled


async def test_the_standby_is_held_for_the_whole_failover_and_a_busy_standby_is_refused(
        client, worker, task_queue, pair_of, simulator, inventory):
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from regatta.models import ClusterHoldProgress
    from tests.integration.conftest import start_upgrade

    pair = pair_of(env="prod")
    handle = await failover(client, task_queue, pair)
    await wait_phase(handle, "awaiting_approval")
    hold = client.get_workflow_handle(operation_id(pair.standby))
    held = await hold.query("progress", result_type=ClusterHoldProgress)
    assert (held.held_by, held.operation, held.phase) == (operation_id(pair.primary), "DRFailover", "holding")
    with pytest.raises(WorkflowAlreadyStartedError):  # no upgrade of the standby while it is being failed over to
        await start_upgrade(client, task_queue, pair.standby)
    await handle.execute_update("approve", {"approver": "sre-bob"})
    assert (await handle.result()).outcome == "succeeded"
    assert (await hold.describe()).status == WorkflowExecutionStatus.COMPLETED  # released, not left behind

    busy = pair_of()
    simulator.world.clusters[busy.standby].time_scale = 0.01  # an upgrade that is still running when the failover asks
    upgrade = await start_upgrade(client, task_queue, busy.standby)
    with pytest.raises(WorkflowFailureError) as refused:
        await (await failover(client, task_queue, busy)).result()
    assert refused.value.cause.type == "ClusterBusy"
    assert f"{busy.standby} is busy: operation {operation_id(busy.standby)} runs on it" in str(refused.value.cause)
    assert busy.traffic()[busy.services[0]]["changes"] == 0
    await upgrade.execute_update("abort", {"reason": "test over"})
    await upgrade.result()
