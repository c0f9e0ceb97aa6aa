"""Placement of applications against the simulator (clusters of different sizes, CPU requests that
its scheduler honours) and the real Temporal dev server: replicas divided by capacity and by
weight, a pick of N spread over regions, a cluster lost in the middle of a placement whose share
moves to the others, an evacuation that never lets the application's available replicas drop
(its budget lets one go at a time) while its traffic follows, a decommission that offers the
evacuation instead of refusing, and no flapping under a cluster that goes down and up."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from regatta.models import FleetSweepInput, FleetSweepResult
from regatta.models.controls import StageApproveInput
from regatta.models.placement import EvacuateClusterInput, EvacuateClusterResult, MoveWorkloadsResult
from regatta.models.policy import PolicyRolloutProgress
from regatta.rules.operation_ids import evacuate_id, move_id, policy_id
from tests.api_calls import finished, ticket
from tests.conftest import set_faults, sim_report
from tests.integration.cluster_api import ClusterApi
from tests.integration.conftest import wait_until
from tests.integration.placements import Fleet, roll_out
from tests.replaying import replays


@pytest.fixture
def fleet(simulator, inventory, settings) -> Fleet:
    return Fleet(simulator, inventory, settings)




async def test_replicas_are_divided_by_the_room_each_cluster_has_and_the_decision_says_why(
        client, worker, task_queue, fleet, inventory):
    # CPU for 250m replicas: big 2 × 3920m (31), medium 2 × 1930m (15), small 1 × 1930m (7)
    names = fleet.add({"big": ("m5.xlarge", 2, "us-east-1"), "medium": ("m5.large", 2, "us-east-1"),
                       "small": ("m5.large", 1, "us-east-1")})
    spec = fleet.bundle({"divide": "capacity"}, budget={"minAvailable": 4})
    result = await asyncio.wait_for((await roll_out(client, task_queue, spec)).result(), 120)
    assert result.outcome == "succeeded", result.message
    assert fleet.shares() == {"big": 3, "medium": 2, "small": 1}  # 6 × 31/53, 15/53, 7/53, remainders to small, medium
    assert fleet.running() == {"big": 3, "medium": 2, "small": 1}
    budget = ClusterApi(fleet.simulator, names["big"]).get(f"/apis/policy/v1/namespaces/web-{fleet.tag}"
                                                           "/poddisruptionbudgets/web").json()
    assert budget["spec"]["minAvailable"] == 2  # 4 of 6 scaled to the 3 here, rounded up
    decision = inventory.placement(fleet.app)
    big = next(s for s in decision.chosen if s.cluster == names["big"])
    assert big.terms["free CPU"] == 40.0 and big.score == max(s.score for s in decision.chosen)
    assert decision.operation_id == policy_id(fleet.app) and decision.note.startswith("placed by rollout")
    # the plan says it too, per cluster, and the audit trail has each cluster's share
    lines = [(r.action, r.outcome) for r in inventory.audit(cluster=names["small"])]
    assert ("give_bundle", "succeeded") in lines
    decided = [r.detail for r in inventory.audit(cluster=policy_id(fleet.app)) if r.action == "placement"]
    assert len(decided) == 1 and f"{names['big']} score {big.score:g}: 3 of {fleet.workload}" in decided[0]


async def test_pick_two_spread_over_regions_divided_by_weight(client, worker, task_queue, fleet, inventory):
    names = fleet.add({"e1": ("m5.xlarge", 2, "us-east-1"), "e2": ("m5.xlarge", 2, "us-east-1"),
                       "w1": ("m5.large", 1, "us-west-2"), "w2": ("m5.large", 1, "us-west-2")})
    spec = fleet.bundle({"pick": "count", "count": 2, "spread": {"over": "region", "max_skew": 1}, "divide": "weight",
                         "weights": [{"selector": {"region": "us-east-1"}, "weight": 2}]})
    handle = await roll_out(client, task_queue, spec)
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.outcome == "succeeded", result.message
    assert fleet.shares() == {"e1": 4, "w1": 2}
    assert fleet.running() == {"e1": 4, "e2": 0, "w1": 2, "w2": 0}
    progress = await handle.query("progress", result_type=PolicyRolloutProgress)
    assert progress.left_out[names["e2"]] == "not placed: spread over region: us-east-1 already has 1, max skew 1"
    assert progress.left_out[names["w2"]].startswith("not placed: score")


async def test_a_cluster_lost_in_the_middle_of_a_placement_has_its_share_moved_to_the_others(
        client, worker, task_queue, fleet, inventory, simulator):
    names = fleet.add({"a": ("m5.large", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1"),
                       "c": ("m5.large", 2, "us-east-1")})
    spec = fleet.bundle({"divide": "weight"}, failure_budget=1, timeout_seconds=3,
                        stages=[{"name": "first", "selector": {"clusters": [names["a"]]}},
                                {"name": "rest", "approval_required": True, "concurrency": 5}])
    handle = await roll_out(client, task_queue, spec)
    await wait_until(handle, lambda p: p.phase == "awaiting_approval", "waiting for approval",
                     progress_type=PolicyRolloutProgress)
    assert fleet.running()["a"] == 2
    set_faults(simulator, names["c"], unreachable=True)  # c is lost before it is given its share
    try:
        await handle.execute_update("approve", StageApproveInput(approver="sre-bob", stage="rest"))
        result = await asyncio.wait_for(handle.result(), 120)
    finally:
        set_faults(simulator, names["c"], unreachable=False)
    assert result.outcome == "succeeded", result.message
    assert result.failed[names["c"]].startswith(f"{names['c']} did not answer for 3s (")
    assert "moved off" in result.message
    assert fleet.shares() == {"a": 3, "b": 3}
    assert fleet.running() == {"a": 3, "b": 3, "c": 0}
    moved: MoveWorkloadsResult = await client.get_workflow_handle(move_id(fleet.app), result_type=MoveWorkloadsResult).result()
    assert moved.kept_unreachable == [names["c"]] and moved.withdrawn == []
    assert inventory.placement(fleet.app).not_chosen[names["c"]] == "moved off"


async def test_an_evacuation_raises_the_others_before_it_lowers_and_traffic_follows(
        client, worker, task_queue, fleet, inventory, simulator, request):
    names = fleet.add({"a": ("m5.large", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1"),
                       "c": ("m5.large", 2, "us-east-1")}, traffic=True)
    spec = fleet.bundle({"divide": "weight"}, budget={"maxUnavailable": 1})
    result = await asyncio.wait_for((await roll_out(client, task_queue, spec)).result(), 120)
    assert result.outcome == "succeeded", result.message
    assert fleet.running() == {"a": 2, "b": 2, "c": 2}
    assert fleet.traffic() == {names["a"]: 2, names["b"]: 2, names["c"]: 2}  # the rollout pointed it at the shares
    fewest = {"ready": 6}

    async def watch() -> None:  # the application as its users see it: ready replicas over all its clusters
        while True:
            fewest["ready"] = min(fewest["ready"], sum((await asyncio.to_thread(fleet.running)).values()))
            await asyncio.sleep(0.03)

    watcher = asyncio.ensure_future(watch())
    try:
        handle = await client.start_workflow("EvacuateCluster", EvacuateClusterInput(
            cluster=names["b"], reason="replaced blue/green", requested_by="sre-alice", ticket="CHG-EVAC",
            poll_interval_seconds=0.05, timeout_seconds=20), id=evacuate_id(names["b"]), task_queue=task_queue,
            result_type=EvacuateClusterResult)
        evacuated = await asyncio.wait_for(handle.result(), 120)
    finally:
        watcher.cancel()
    assert evacuated.moved == [fleet.app]
    assert fewest["ready"] >= 6, f"the application dropped to {fewest['ready']} ready replicas during the move"
    assert fleet.shares() == {"a": 3, "c": 3}
    assert fleet.running() == {"a": 3, "b": 0, "c": 3}
    assert fleet.deployment("b") is None  # taken off b: its objects carrying the bundle's label are gone
    mover = client.get_workflow_handle(move_id(fleet.app), result_type=MoveWorkloadsResult)
    moved = await mover.result()
    assert moved.withdrawn == [names["b"]]
    await replays(handle, request, "evacuate_cluster_one_application")
    await replays(mover, request, "move_workloads_one_replica_at_a_time")
    steps = [r.detail for r in inventory.audit(cluster=names["b"]) if r.action == "give_share"]
    assert steps == [f"{fleet.app}: 1 of {fleet.workload}", f"{fleet.app}: 0 of {fleet.workload}"]  # one at a time
    assert fleet.traffic() == {names["a"]: 3, names["b"]: 0, names["c"]: 3}
    assert all(not sim_report(simulator, n)["pdb_violations"] for n in names.values())
    assert inventory.compliance(bundle=fleet.app, cluster=names["b"]) == []


async def test_a_decommission_refuses_a_cluster_running_placed_applications_unless_asked_to_evacuate(
        client, worker, task_queue, fleet, inventory):
    from regatta.models import DecommissionClusterInput
    from regatta.rules.operation_ids import operation_id

    names = fleet.add({"a": ("m5.large", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1")})
    result = await asyncio.wait_for((await roll_out(client, task_queue, fleet.bundle({"divide": "weight"}))).result(), 120)
    assert result.outcome == "succeeded", result.message
    handle = await client.start_workflow("DecommissionCluster", DecommissionClusterInput(
        cluster=names["b"], requested_by="sre-alice", poll_interval_seconds=0.05), id=operation_id(names["b"]),
        task_queue=task_queue)
    with pytest.raises(WorkflowFailureError) as refused:
        await asyncio.wait_for(handle.result(), 60)
    assert refused.value.cause.type == "PlacedWorkloads"
    assert f"runs placed applications: {fleet.app} (web-{fleet.tag}/web)" in refused.value.cause.message
    assert "--evacuate" in refused.value.cause.message
    assert fleet.running() == {"a": 3, "b": 3}  # nothing changed


async def test_a_cluster_that_flaps_within_the_damping_moves_nothing_and_nothing_moves_back(
        client, worker, task_queue, fleet, inventory, simulator):
    names = fleet.add({"a": ("m5.large", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1"),
                       "c": ("m5.large", 2, "us-east-1")})
    result = await asyncio.wait_for((await roll_out(client, task_queue, fleet.bundle(
        {"divide": "weight", "damping_seconds": 3}))).result(), 120)
    assert result.outcome == "succeeded", result.message
    assert fleet.shares() == {"a": 2, "b": 2, "c": 2}
    selector = {"labels": {"placement": fleet.tag}}

    async def fleet_sweep() -> FleetSweepResult:
        return await client.execute_workflow("FleetSweep", FleetSweepInput(selector=selector, lost_after_seconds=2),
                                             id=f"sweep-{uuid.uuid4().hex[:6]}", task_queue=task_queue,
                                             result_type=FleetSweepResult)

    for _ in range(2):  # down, swept, up again, swept: inside the damping period each time
        set_faults(simulator, names["b"], unreachable=True)
        down = await fleet_sweep()
        assert inventory.get_cluster(names["b"]).health.startswith("unreachable") and down.moves == {}
        set_faults(simulator, names["b"], unreachable=False)
        up = await fleet_sweep()
        assert up.moves == {} and inventory.get_cluster(names["b"]).unhealthy_since is None
    assert fleet.shares() == {"a": 2, "b": 2, "c": 2} and fleet.running() == {"a": 2, "b": 2, "c": 2}

    set_faults(simulator, names["b"], unreachable=True)  # down for longer than the damping: its share moves
    try:
        await fleet_sweep()
        await asyncio.sleep(3.2)
        swept = await fleet_sweep()
        assert list(swept.moves) == [fleet.app] and "unhealthy for" in swept.moves[fleet.app]
        moved = await asyncio.wait_for(client.get_workflow_handle(
            move_id(fleet.app), result_type=MoveWorkloadsResult).result(), 120)
    finally:
        set_faults(simulator, names["b"], unreachable=False)
    assert moved.kept_unreachable == [names["b"]]
    assert fleet.shares() == {"a": 3, "c": 3}
    back = await fleet_sweep()  # b is healthy again: nothing moves back on its own
    assert back.moves == {} and fleet.shares() == {"a": 3, "c": 3}


async def test_placements_and_evacuations_over_the_api_scoped_to_the_tokens_environments(api, worker, fleet, inventory):
    names = fleet.add({"s": ("m5.large", 2, "us-east-1"), "p": ("m5.large", 2, "us-east-1")},
                      environments={"s": "staging", "p": "prod"})
    operator = api.token("operator", "staging", "prod")
    spec = fleet.bundle({"divide": "weight"}).model_dump(mode="json", exclude={"requested_by", "ticket"})
    nothing = await api.post("/v1/operations", headers=operator, json={
        "kind": "evacuate", "ticket": ticket(), "input": {"cluster": names["s"], "reason": "before any placement"}})
    assert nothing.status_code == 409 and "nothing to evacuate" in nothing.json()["error"], nothing.text
    started = await api.post("/v1/operations", headers=operator, json={"kind": "policy", "ticket": ticket(), "input": spec})
    assert started.status_code == 201, started.text
    done = await finished(api, operator, policy_id(fleet.app))
    assert done["progress"]["phase"] == "succeeded", done

    viewer = api.token("viewer", "staging")
    seen = (await api.get(f"/v1/placements/{fleet.app}", headers=viewer)).json()
    assert [s["cluster"] for s in seen["chosen"]] == [names["s"]]  # the prod cluster is not the viewer's to see
    everything = (await api.get(f"/v1/placements/{fleet.app}", headers=operator)).json()
    assert {s["cluster"]: s["replicas"][fleet.workload] for s in everything["chosen"]} == {names["s"]: 3, names["p"]: 3}
    assert all("free CPU" in s["terms"] for s in everything["chosen"])
    assert fleet.app in [d["app"] for d in (await api.get("/v1/placements", headers=operator)).json()]
    missing = await api.get("/v1/placements/no-such-app", headers=operator)
    assert missing.status_code == 404 and "GET /v1/placements" in missing.json()["error"]

    staging_operator = api.token("operator", "staging")
    request = {"cluster": names["s"], "reason": "node image refresh", "poll_interval_seconds": 0.05}
    refused = await api.post("/v1/operations", headers=staging_operator,
                             json={"kind": "evacuate", "ticket": ticket(), "input": request})
    assert refused.status_code == 403, refused.text  # its replicas would move to prod
    evacuating = await api.post("/v1/operations", headers=operator, json={"kind": "evacuate", "ticket": ticket(),
                                                                          "input": request})
    assert evacuating.status_code == 201 and evacuating.json()["operation_id"] == evacuate_id(names["s"]), evacuating.text
    done = await finished(api, operator, evacuate_id(names["s"]))
    assert done["progress"]["phase"] == "succeeded", done
    assert fleet.shares() == {"p": 6} and fleet.running() == {"s": 0, "p": 6}

    # A hold that evacuates: a staging operator does not even see the prod cluster; an operator of both may.
    hold = {"until": "2099-01-01T00:00:00Z", "reason": "blue/green replacement", "evacuate": True}
    assert (await api.post(f"/v1/clusters/{names['p']}/hold", headers=staging_operator, json=hold)).status_code == 404
    prod_operator = api.token("operator", "prod")
    held = await api.post(f"/v1/clusters/{names['p']}/hold", headers=prod_operator, json=hold)
    assert held.status_code == 201 and held.json()["evacuate"] is True, held.text
    stuck = await finished(api, prod_operator, evacuate_id(names["p"]))
    assert stuck["status"] == "FAILED" and "would run nowhere" in stuck["progress"]["apps"][fleet.app], stuck
    assert fleet.running() == {"s": 0, "p": 6}  # nowhere to go: it stays where it is, and says so


async def test_an_application_placed_on_and_evacuated_from_a_site_cluster_reaches_it_through_its_agent(
        client, worker, task_queue, queue_settings, fleet):
    from regatta.rules.sites import site_task_queue
    from tests.integration.conftest import queues_used
    from workers.main import build_worker

    names = fleet.add({"a": ("m5.large", 2, "us-east-1"), "b": ("m5.large", 2, "us-east-1"),
                       "c": ("m5.large", 2, "us-east-1")}, sites={"b": "dc5"})
    site_queue = site_task_queue(task_queue, "dc5")

    async with build_worker(client, queue_settings, site="dc5"):
        spec = fleet.bundle({"divide": "weight"})
        result = await asyncio.wait_for((await roll_out(client, task_queue, spec)).result(), 120)
        assert result.outcome == "succeeded", result.message
        assert fleet.running() == {"a": 2, "b": 2, "c": 2}
        handle = await client.start_workflow("EvacuateCluster", EvacuateClusterInput(
            cluster=names["b"], reason="the site closes", requested_by="sre-alice", ticket="CHG-EVAC",
            poll_interval_seconds=0.05, timeout_seconds=20), id=evacuate_id(names["b"]), task_queue=task_queue,
            result_type=EvacuateClusterResult)
        evacuated = await asyncio.wait_for(handle.result(), 120)
    assert evacuated.moved == [fleet.app] and fleet.shares() == {"a": 3, "c": 3}
    assert fleet.running() == {"a": 3, "b": 0, "c": 3} and fleet.deployment("b") is None
    assert "kube.give_bundle" in (await queues_used(client, policy_id(spec.name)))[site_queue]
    moved = await queues_used(client, move_id(fleet.app))
    assert {"kube.give_bundle", "kube.withdraw_bundle"} <= moved[site_queue], moved
    assert "kube.withdraw_bundle" not in moved.get(task_queue, set()), moved
