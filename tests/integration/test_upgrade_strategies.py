"""A PDB-protected cluster upgraded by each strategy ends with every node on the new version,
the new versions in the inventory, the outcome in the audit trail, and /sim/report empty."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
@pytest.mark.parametrize("strategy", ["surge", "blue_green"])
async def test_upgrade_moves_every_node_without_breaking_a_budget(
    provider, strategy, client, worker, task_queue, add_cluster, simulator, inventory
):
    cluster = add_cluster(f"{provider}-{strategy.replace('_', '')}", provider=provider)
    handle = await start_upgrade(client, task_queue, cluster, strategy=strategy, ticket="CHG-1")
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.from_version == "1.30" and result.control_plane_version == "1.31"
    report = sim_report(simulator, cluster)
    state = report["clusters"][cluster]
    assert state["control_plane_version"] == "1.31"
    assert len(state["nodes"]) == 6
    assert all(node["version"].startswith("v1.31.") for node in state["nodes"].values())
    assert all(not node["unschedulable"] for node in state["nodes"].values())
    assert state["pods_ready"] == state["pods"] == 13
    assert report["pdb_violations"] == [] and report["skew_violations"] == [] and report["double_drains"] == []

    # A blue/green replacement is named by its cloud's rules (AKS: lowercase letters and digits, at most 12).
    replacements = {"pool0v31", "pool1v31"} if provider == "aks" else {"pool0-v1-31", "pool1-v1-31"}
    expected_pools = {"pool0", "pool1"} if strategy == "surge" else replacements
    assert set(state["node_pools"]) == expected_pools
    if provider == "aks":  # the System pool's replacement is a System pool: AKS keeps one at all times
        modes = {name: pool["settings"]["mode"] for name, pool in state["node_pools"].items()}
        assert modes == dict(zip(sorted(expected_pools), ["System", "User"], strict=True))
    record = inventory.get_cluster(cluster)
    assert record.control_plane_version == "1.31"
    assert {p.name: p.version for p in record.node_pools} == {name: "1.31" for name in expected_pools}
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert trail[0] == ("upgrade", "started") and trail[-1] == ("upgrade", "succeeded")
    assert inventory.audit(operation_id=handle.id)[-1].detail.startswith("control plane before 1.30, after 1.31; ")
    assert all(r.ticket == "CHG-1" for r in inventory.audit(operation_id=handle.id))

    # Operators find it in the Temporal UI by its search attributes (visibility lags a little).
    query = f'Cluster = "{cluster}" AND Environment = "staging" AND Operation = "ClusterUpgrade" AND Ticket = "CHG-1"'
    for _ in range(50):
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [handle.id]


OLD_IMAGES = {"eks": "1.31.0-20260101", "gke": "1.31.3-gke.1000", "aks": "AKSUbuntu-2204gen2containerd-202601.05.0"}
NEW_IMAGES = {"eks": "1.31.2-20261101", "gke": "1.31.6-gke.1500", "aks": "AKSUbuntu-2204gen2containerd-202611.20.0"}


@pytest.mark.parametrize(("provider", "strategy"), [("eks", "surge"), ("eks", "blue_green"), ("gke", "surge"), ("aks", "surge")])
async def test_a_node_image_roll_replaces_every_node_and_leaves_the_version_alone(
    provider, strategy, client, worker, task_queue, add_cluster, simulator, inventory
):
    cluster = add_cluster(f"img-{provider}", provider=provider, version="1.31", node_image=OLD_IMAGES[provider])
    before = set(sim_report(simulator, cluster)["clusters"][cluster]["nodes"])
    handle = await start_upgrade(client, task_queue, cluster, strategy=strategy, node_images=NEW_IMAGES)
    result = await handle.result()

    assert result.outcome == "succeeded" and result.control_plane_version == "1.31"
    assert f"every pool on node image {NEW_IMAGES[provider]}" in result.message
    assert all(p.from_node_image == OLD_IMAGES[provider] and p.to_node_image == NEW_IMAGES[provider] for p in result.pools)
    report = sim_report(simulator, cluster)
    state = report["clusters"][cluster]
    assert not before & set(state["nodes"]), "every node was replaced"
    assert {n["image"] for n in state["nodes"].values()} == {NEW_IMAGES[provider]}
    assert all(n["version"].startswith("v1.31.") and not n["unschedulable"] for n in state["nodes"].values())
    assert state["pods_ready"] == state["pods"] == 13
    assert report["pdb_violations"] == [] and report["skew_violations"] == [] and report["double_drains"] == []
    assert {p.node_image for p in inventory.get_cluster(cluster).node_pools} == {NEW_IMAGES[provider]}

    again = await start_upgrade(client, task_queue, cluster, node_images=NEW_IMAGES)
    with pytest.raises(Exception) as nothing:
        await again.result()
    assert nothing.value.cause.type == "AlreadyAtVersion" and f"on node image {NEW_IMAGES[provider]}" in str(nothing.value.cause)


async def test_aks_refuses_a_node_image_other_than_its_newest_before_touching_a_pool(
    client, worker, task_queue, add_cluster, simulator
):
    cluster = add_cluster("img-aks-old", provider="aks", version="1.31", node_image=OLD_IMAGES["aks"])
    handle = await start_upgrade(client, task_queue, cluster, node_images={"aks": "AKSUbuntu-2204gen2containerd-202610.01.0"})
    with pytest.raises(Exception) as refused:
        await handle.result()
    assert f"only its newest node image, {NEW_IMAGES['aks']}, not AKSUbuntu-2204gen2containerd-202610.01.0" in str(refused.value.cause)
    state = sim_report(simulator, cluster)["clusters"][cluster]
    assert {n["image"] for n in state["nodes"].values()} == {OLD_IMAGES["aks"]}
    assert not any(n["unschedulable"] for n in state["nodes"].values())


async def test_a_node_image_of_another_version_is_refused_in_preflight(client, worker, task_queue, add_cluster, simulator):
    cluster = add_cluster("img-eks-wrong", provider="eks", version="1.31", node_image=OLD_IMAGES["eks"])
    handle = await start_upgrade(client, task_queue, cluster, node_images={"eks": "1.30.2-20261101"})
    with pytest.raises(Exception) as refused:
        await handle.result()
    assert refused.value.cause.type == "InvalidNodeImage"
    assert "node_images.eks: 1.30.2-20261101 is not a node image of Kubernetes 1.31 on EKS" in str(refused.value.cause)
    state = sim_report(simulator, cluster)["clusters"][cluster]
    assert {n["image"] for n in state["nodes"].values()} == {OLD_IMAGES["eks"]}
