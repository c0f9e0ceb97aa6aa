"""An upgrade to a target several minors above the control plane goes through each minor on the way,
as one ClusterUpgrade: each minor its own preflight and readiness check, control plane, EKS add-ons,
node pools and health gates, the versions recorded, then a soak; pause, resume and abort work between
the minors as within them; what the whole path would break is refused before anything moves."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterUpgradeProgress
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.readiness_objects import FINDING, FLOWSCHEMA
from tests.integration.upgrades import progress_of, wait_for
from tests.replaying import patch_ids, replays
from workflows.pieces.patches import SEVERAL_MINORS, SINCE_ONE_MARKER, SOAKS_ON_FLEET_CLOCK


def runs(report: dict, cluster: str, minor: str) -> bool:
    state = report["clusters"][cluster]
    return state["control_plane_version"] == minor and all(
        n["version"].startswith(f"v{minor}.") for n in state["nodes"].values())


async def test_from_1_29_to_1_32_each_minor_in_turn_with_a_pause_between_two(
        client, worker, task_queue, add_cluster, simulator, inventory, request):
    cluster = add_cluster("path", version="1.29", pools=2, nodes=2)
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.32", soak_seconds=2)

    soaking = await wait_for(handle, lambda p: p.phase == "soaking")
    assert [s.version for s in soaking.path] == ["1.30", "1.31", "1.32"]
    assert [s.status for s in soaking.path] == ["soaking", "pending", "pending"]
    assert soaking.step_version == "1.30" and soaking.path[0].soak_ends is not None
    assert sorted(soaking.path[0].pools_done) == ["pool0", "pool1"]
    assert runs(sim_report(simulator, cluster), cluster, "1.30")
    assert inventory.get_cluster(cluster).control_plane_version == "1.30", "the minor reached is recorded at once"

    await handle.execute_update("pause", {"reason": "watch 1.30 overnight", "requested_by": "sre-a"})
    held = await wait_for(handle, lambda p: p.step.startswith("paused before"), timeout=15)
    assert held.path[0].status == "done" and held.path[1].status == "pending"
    await asyncio.sleep(1.0)
    assert runs(sim_report(simulator, cluster), cluster, "1.30"), "the next minor started while paused"

    await handle.execute_update("resume", {"requested_by": "sre-a"})
    result = await handle.result()
    assert result.outcome == "succeeded" and result.from_version == "1.29" and result.control_plane_version == "1.32"
    assert "by way of 1.30, 1.31" in result.message
    final = await progress_of(handle)
    assert [s.status for s in final.path] == ["done", "done", "done"]
    report = sim_report(simulator, cluster)
    assert runs(report, cluster, "1.32")
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    audit = inventory.audit(operation_id=handle.id)
    steps = [r.detail for r in audit if r.outcome == "reached"]
    assert len(steps) == 2 and "runs 1.30" in steps[0] and "1.31 next" in steps[0] and "runs 1.31" in steps[1]
    # EKS leaves its add-ons where they were at each minor: each minor moved them to its own defaults
    assert sum(r.action == "addons" for r in audit) == 3
    assert inventory.get_cluster(cluster).control_plane_version == "1.32"
    history = await replays(handle, request, "cluster_upgrade_several_minors_paused_between")
    assert patch_ids(history) == [SINCE_ONE_MARKER, SEVERAL_MINORS, SOAKS_ON_FLEET_CLOCK]


async def test_an_abort_during_the_soak_stops_on_the_minor_reached_and_says_so(
        client, worker, task_queue, add_cluster, simulator, inventory, browser):
    cluster = add_cluster("pathabort", version="1.29", pools=1, nodes=2)
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.31", soak_seconds=60)
    await wait_for(handle, lambda p: p.phase == "soaking")
    await handle.execute_update("abort", {"reason": "a regression on 1.30", "requested_by": "sre-b"})
    result = await handle.result()
    assert result.outcome == "aborted" and result.control_plane_version == "1.30"
    assert "on the way 1.29 → 1.30 → 1.31 it reached 1.30" in result.message
    final = await progress_of(handle)
    assert [s.status for s in final.path] == ["done", "pending"], "1.30 was reached whole; 1.31 never began"
    assert runs(sim_report(simulator, cluster), cluster, "1.30")
    assert inventory.get_cluster(cluster).control_plane_version == "1.30"
    await browser.sign_in("viewer", "staging")
    page = await browser.page(f"/ui/operations/{handle.id}")
    assert page.status_code == 200 and 'id="path"' in page.text
    assert "<td>1.30</td><td>done</td><td>pool0</td>" in page.text and "<td>1.31</td><td>pending</td>" in page.text


async def test_long_pool_names_alike_keep_request_tokens_of_their_own_at_every_minor(
        client, worker, task_queue, add_fleet, simulator, inventory):
    [cluster] = add_fleet({"name": "pathnames", "provider": "eks", "region": "us-east-1", "version": "1.29",
                           "labels": {"env": "staging"}, "node_pools": [
                               {"name": "workers-general-amd", "nodes": 1}, {"name": "workers-general-arm", "nodes": 1}]})
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.31", soak_seconds=0)
    result = await handle.result()
    assert result.outcome == "succeeded" and result.control_plane_version == "1.31"
    assert runs(sim_report(simulator, cluster), cluster, "1.31")
    assert [s.version for s in (await progress_of(handle)).path] == ["1.30", "1.31"]


async def test_a_hold_set_while_the_cluster_soaks_stops_it_on_the_minor_reached(
        client, worker, task_queue, add_cluster, simulator, inventory):
    from datetime import UTC, datetime, timedelta

    cluster = add_cluster("pathhold", version="1.29", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.31", soak_seconds=2)
    await wait_for(handle, lambda p: p.phase == "soaking")
    now = datetime.now(UTC)
    inventory.hold_cluster(cluster, until=now + timedelta(hours=2), reason="black friday", held_by="sre-maria", now=now)
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ClusterHeld"
    assert "while it soaked on 1.30" in cause.message and "it reached 1.30" in cause.message
    assert runs(sim_report(simulator, cluster), cluster, "1.30")


async def test_blue_green_over_two_minors_replaces_each_pool_twice_under_every_budget(
        client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("pathbg", version="1.29", pools=1, nodes=2)
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.31", strategy="blue_green",
                                 soak_seconds=0)
    result = await handle.result()
    assert result.outcome == "succeeded"
    report = sim_report(simulator, cluster)
    assert runs(report, cluster, "1.31")
    assert set(report["clusters"][cluster]["node_pools"]) == {"pool0-v1-31"}
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    final = await progress_of(handle)
    assert [s.pools_done for s in final.path] == [["pool0"], ["pool0-v1-30"]]


async def test_an_api_the_last_minor_removes_refuses_the_whole_path_before_anything_moves(
        client, worker, task_queue, add_cluster, simulator, inventory):
    cluster = add_cluster("pathapi", version="1.29", pools=1, nodes=1)
    kube = ClusterConnections(sim_url=simulator.url).api_client(inventory.get_cluster(cluster).ref)
    kube.call_api("/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas", "POST", body=FLOWSCHEMA,
                  header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"],
                  _return_http_data_only=True, _preload_content=False)
    handle = await start_upgrade(client, task_queue, cluster, target_version="1.32")
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotReadyForUpgrade"
    assert FINDING in cause.message and "1.32" in cause.message
    assert runs(sim_report(simulator, cluster), cluster, "1.29"), "the path started although its end was refused"
    assert inventory.audit(operation_id=handle.id)[-1].outcome == "refused"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert [s.status for s in progress.path] == ["failed", "pending", "pending"]
