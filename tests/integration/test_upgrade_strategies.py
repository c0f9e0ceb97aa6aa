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

    expected_pools = {"pool0", "pool1"} if strategy == "surge" else {"pool0-v1-31", "pool1-v1-31"}
    assert set(state["node_pools"]) == expected_pools
    record = inventory.get_cluster(cluster)
    assert record.control_plane_version == "1.31"
    assert {p.name: p.version for p in record.node_pools} == {name: "1.31" for name in expected_pools}
    trail = [(r.action, r.outcome) for r in inventory.audit(operation_id=handle.id)]
    assert trail[0] == ("upgrade", "started") and trail[-1] == ("upgrade", "succeeded")
    assert all(r.ticket == "CHG-1" for r in inventory.audit(operation_id=handle.id))

    # Operators find it in the Temporal UI by its search attributes (visibility lags a little).
    query = f'Cluster = "{cluster}" AND Environment = "staging" AND Operation = "ClusterUpgrade" AND Ticket = "CHG-1"'
    for _ in range(50):
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [handle.id]
