"""A way back: an EKS upgrade taken back within its window, node groups first and then the control plane, under
every budget; what the cloud takes no rollback of (a cluster created at its version, a second rollback in a row,
a window past its 7 days, a GKE or AKS cluster) refused before anything changes, saying why; and the simulated
EKS refusing a rollback outside its rules, asked through boto3 as any client would ask it."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.models import ClusterRollbackInput, ClusterRollbackResult
from regatta.rules.operation_ids import operation_id
from regatta.temporal.admission import StartRefused, admit
from tests.api_calls import finished, ticket
from tests.conftest import sim_report
from tests.integration.conftest import FAST, start_upgrade
from tests.replaying import replays

TIMING = {k: v for k, v in FAST.items() if k in ClusterRollbackInput.model_fields}


async def roll_back(client, task_queue, cluster: str, **fields):
    return await client.start_workflow(
        "ClusterRollback", ClusterRollbackInput(cluster=cluster, reason="1.31 breaks the ledger", **{**TIMING, **fields}),
        id=operation_id(cluster), task_queue=task_queue, result_type=ClusterRollbackResult)


async def refusal_of(handle) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert isinstance(caught.value.cause, ApplicationError)
    return caught.value.cause


def versions_of(simulator, cluster: str) -> tuple[str, set[str]]:
    state = sim_report(simulator, cluster)["clusters"][cluster]
    return state["control_plane_version"], {n["version"].rsplit(".", 1)[0] for n in state["nodes"].values()}


@pytest.fixture
def eks(simulator):
    return boto3.client("eks", endpoint_url=simulator.url, region_name="us-east-1", aws_access_key_id="sim",
                        aws_secret_access_key="sim")


async def test_an_upgrade_taken_back_node_groups_first_then_the_control_plane(
        client, worker, task_queue, add_cluster, simulator, inventory, eks, request):
    cluster = add_cluster("back", version="1.30", pools=2, nodes=2)
    assert (await (await start_upgrade(client, task_queue, cluster)).result()).outcome == "succeeded"
    assert versions_of(simulator, cluster) == ("1.31", {"v1.31"})
    with pytest.raises(ClientError) as early:  # EKS: the node groups go back first
        eks.update_cluster_version(name=cluster, version="1.30")
    assert early.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "must be rolled back to 1.30 before" in early.value.response["Error"]["Message"]

    handle = await roll_back(client, task_queue, cluster, ticket="CHG-back")
    result = await handle.result()
    assert result.outcome == "succeeded" and result.from_version == "1.31" and result.to_version == "1.30"
    assert result.control_plane_version == "1.30" and "add-ons stay" in result.message
    report = sim_report(simulator, cluster)
    assert versions_of(simulator, cluster) == ("1.30", {"v1.30"})
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    assert inventory.get_cluster(cluster).control_plane_version == "1.30"
    # the cloud recorded the control plane's change as a rollback, not an upgrade
    updates = [eks.describe_update(name=cluster, updateId=u)["update"] for u in eks.list_updates(name=cluster)["updateIds"]]
    assert [u["type"] for u in updates if u["status"] == "Successful"][-1] == "VersionRollback"
    trail = inventory.audit(operation_id=operation_id(cluster))
    rollback = [r for r in trail if r.operation == "ClusterRollback"]
    assert rollback[0].outcome == "started" and "because 1.31 breaks the ledger" in rollback[0].detail
    assert rollback[-1].outcome == "succeeded" and rollback[-1].ticket == "CHG-back"
    await replays(handle, request, "cluster_rollback_after_an_upgrade")

    again = await refusal_of(await roll_back(client, task_queue, cluster))
    assert again.type == "CannotRollBack" and "already a rollback" in again.message
    assert versions_of(simulator, cluster) == ("1.30", {"v1.30"})


async def test_no_way_back_is_refused_before_anything_changes(client, worker, task_queue, add_cluster, simulator,
                                                              inventory, sim_clock):
    created = add_cluster("backnew", version="1.31", pools=1, nodes=1)
    born = await refusal_of(await roll_back(client, task_queue, created))
    assert born.type == "CannotRollBack" and "created at 1.31" in born.message
    assert versions_of(simulator, created) == ("1.31", {"v1.31"})
    assert inventory.audit(operation_id=operation_id(created))[-1].outcome == "refused"

    late = add_cluster("backlate", version="1.30", pools=1, nodes=1)
    assert (await (await start_upgrade(client, task_queue, late)).result()).outcome == "succeeded"
    sim_clock(advance_seconds=8 * 24 * 3600)
    closed = await refusal_of(await roll_back(client, task_queue, late))
    assert closed.type == "CannotRollBack" and "within 7 days" in closed.message and "window closed" in closed.message
    assert versions_of(simulator, late) == ("1.31", {"v1.31"})

    gke = add_cluster("backgke", version="1.30", provider="gke", pools=1, nodes=1)
    with pytest.raises(StartRefused) as refused:
        admit(ClusterRollbackInput(cluster=gke, reason="x"), inventory=inventory)
    assert refused.value.kind == "conflict" and "two-step rollback-safe upgrade" in str(refused.value)
    aks = add_cluster("backaks", version="1.30", provider="aks", pools=1, nodes=1)
    with pytest.raises(StartRefused, match="never rolls a control plane back"):
        admit(ClusterRollbackInput(cluster=aks, reason="x"), inventory=inventory)


def test_the_simulated_eks_refuses_a_rollback_outside_its_rules(eks, add_cluster, simulator):
    created = add_cluster("rbrules", version="1.31", pools=1, nodes=1)
    with pytest.raises(ClientError) as two:
        eks.update_cluster_version(name=created, version="1.29")
    assert two.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "one minor version only" in two.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as born:
        eks.update_cluster_version(name=created, version="1.30")
    assert born.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "not upgraded in place from 1.30" in born.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as group:  # outside a rollback: the API reference's refusal
        eks.update_nodegroup_version(clusterName=created, nodegroupName="pool0", version="1.30")
    assert "You cannot roll back a node group" in group.value.response["Error"]["Message"]
    assert versions_of(simulator, created) == ("1.31", {"v1.31"})


async def test_over_the_api_only_an_operator_of_the_clusters_environment_rolls_it_back(
        api, worker, add_cluster, simulator, inventory, client, task_queue):
    cluster = add_cluster("backapi", version="1.30", pools=1, nodes=1, env="staging")
    assert (await (await start_upgrade(client, task_queue, cluster)).result()).outcome == "succeeded"
    body = {"kind": "rollback", "input": {"cluster": cluster, "reason": "1.31 breaks the ledger", **TIMING}}
    viewer = await api.post("/v1/operations", headers=api.token("viewer", "*"), json={**body, "ticket": ticket()})
    assert viewer.status_code == 403
    elsewhere = await api.post("/v1/operations", headers=api.token("operator", "prod"), json={**body, "ticket": ticket()})
    assert elsewhere.status_code in (403, 404)
    no_reason = await api.post("/v1/operations", headers=api.token("operator", "staging"), json={
        "kind": "rollback", "ticket": ticket(), "input": {"cluster": cluster}})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]
    blank = await api.post("/v1/operations", headers=api.token("operator", "staging"), json={
        **body, "ticket": ticket(), "input": {**body["input"], "override_hold": "  "}})
    assert blank.status_code == 422 and "override_hold needs a reason" in blank.json()["error"]
    assert versions_of(simulator, cluster) == ("1.31", {"v1.31"}), "a refused start changed the cluster"

    operator = api.token("operator", "staging")
    started = await api.post("/v1/operations", headers=operator, json={**body, "ticket": ticket()})
    assert started.status_code == 201, started.text
    found = await finished(api, operator, started.json()["operation_id"])
    assert found["status"] == "COMPLETED" and found["progress"]["to_version"] == "1.30"
    assert versions_of(simulator, cluster) == ("1.30", {"v1.30"})


def pools_of(simulator, cluster: str) -> dict[str, list[dict]]:
    state = sim_report(simulator, cluster)["clusters"][cluster]
    found: dict[str, list[dict]] = {}
    for name, node in state["nodes"].items():
        found.setdefault(node["pool"], []).append({"name": name, **node})
    return found


async def test_blue_green_keeps_the_old_pool_and_going_back_is_an_uncordon_and_a_drain_not_a_rebuild(
        client, worker, task_queue, add_cluster, simulator, inventory, api):
    from regatta.models import ClusterUpgradeProgress
    from tests.integration.upgrades import wait_for

    cluster = add_cluster("keep", version="1.30", provider="gke", pools=1, nodes=2)
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green", keep_old_pools_seconds=120)
    kept = await wait_for(handle, lambda p: p.phase == "keeping")
    assert kept.kept_pools == ["pool0"] and kept.keep_ends is not None
    pools = pools_of(simulator, cluster)
    old = pools["pool0"]
    assert all(n["unschedulable"] and not n["pods"] for n in old), "the kept pool is not cordoned and empty"
    [new_pool] = [name for name in pools if name != "pool0"]
    refused = await api.post(f"/v1/operations/{handle.id}/pause", headers=api.token("operator", "staging"),
                             json={"reason": "x"})
    assert refused.status_code == 409 and "kept for a way back" in refused.text
    for role in ("viewer", "operator"):  # who may steer it is decided before what is missing from the request
        viewer = await api.post(f"/v1/operations/{handle.id}/go_back", headers=api.token(role, "prod" if role ==
                                                                                           "operator" else "*"), json={})
        assert viewer.status_code in (403, 404), viewer.text
    no_reason = await api.post(f"/v1/operations/{handle.id}/go_back", headers=api.token("operator", "staging"), json={})
    assert no_reason.status_code == 422 and "go_back needs a reason" in no_reason.text
    back = await api.post(f"/v1/operations/{handle.id}/go_back", headers=api.token("operator", "staging"),
                          json={"reason": "1.31 breaks the ledger"})
    assert back.status_code == 200, back.text
    again = await api.post(f"/v1/operations/{handle.id}/go_back", headers=api.token("operator", "staging"),
                           json={"reason": "twice"})
    assert again.status_code == 409 and "nothing to go back to" in again.text

    result = await handle.result()
    assert result.outcome == "rolled_back" and "went back to pool0 because 1.31 breaks the ledger" in result.message
    assert "the control plane stays on 1.31" in result.message and "two-step rollback-safe upgrade" in result.message
    pools = pools_of(simulator, cluster)
    assert set(pools) == {"pool0"}, f"{new_pool} was not deleted"
    assert sorted(n["name"] for n in pools["pool0"]) == sorted(n["name"] for n in old), "the old pool was rebuilt"
    assert all(not n["unschedulable"] and n["version"].startswith("v1.30.") for n in pools["pool0"])
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == [] and report["double_drains"] == []
    final = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert final.phase == "rolled_back" and final.kept_pools == []
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert ("go_back", "started") in trail and trail[-1] == ("upgrade", "rolled_back")


async def test_kept_pools_nobody_goes_back_to_are_deleted_when_their_time_is_up(
        client, worker, task_queue, add_cluster, simulator):
    from temporalio.service import RPCError

    cluster = add_cluster("keepend", version="1.30", pools=1, nodes=1)
    handle = await start_upgrade(client, task_queue, cluster, strategy="blue_green", keep_old_pools_seconds=1)
    result = await handle.result()
    assert result.outcome == "succeeded"
    assert set(pools_of(simulator, cluster)) == {"pool0-v1-31"}
    with pytest.raises(RPCError, match="already completed"):  # the old pool is gone, and so is the way back
        await handle.execute_update("go_back", {"reason": "too late"})


async def test_ekss_rollback_readiness_insights_stop_the_rollback_until_accepted_with_a_reason(
        client, worker, task_queue, add_fleet, simulator, inventory):
    [cluster] = add_fleet({"name": "backins", "provider": "eks", "region": "us-east-1", "version": "1.30",
                           "labels": {"env": "staging"}, "node_pools": [{"name": "general", "nodes": 1}],
                           "insights": [{"name": "Kubelet version skew", "category": "ROLLBACK_READINESS",
                                         "status": "ERROR", "kubernetes_version": "1.30",
                                         "reason": "self-managed nodes run kubelet 1.31",
                                         "recommendation": "move the self-managed nodes to 1.30 first"}]})
    assert (await (await start_upgrade(client, task_queue, cluster)).result()).outcome == "succeeded", \
        "a rollback insight stopped the upgrade"
    stopped = await refusal_of(await roll_back(client, task_queue, cluster))
    assert stopped.type == "RollbackInsightsError" and "Kubelet version skew" in stopped.message
    assert "self-managed nodes run kubelet 1.31" in stopped.message
    assert versions_of(simulator, cluster) == ("1.31", {"v1.31"})

    result = await (await roll_back(client, task_queue, cluster, accept_insights="the self-managed nodes are gone")).result()
    assert result.outcome == "succeeded" and versions_of(simulator, cluster) == ("1.30", {"v1.30"})
    accepted = [r for r in inventory.audit(operation_id=operation_id(cluster)) if r.action == "insights"]
    assert accepted and "the self-managed nodes are gone" in accepted[-1].detail
