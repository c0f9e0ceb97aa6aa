"""ProvisionCluster on each cloud, and its saga: a permanent failure injected at every step in
turn leaves nothing of the attempted cluster in the simulator or the inventory."""

from __future__ import annotations

import pytest

from tests.conftest import set_faults, sim_report
from tests.integration.provisioning import failure_of, nothing_left, provision, request
from tests.shared_http import http


@pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
async def test_provision_builds_bootstraps_and_registers_a_cluster(provider, client, worker, task_queue, simulator, inventory):
    spec = request(provider)
    result = await (await provision(client, task_queue, spec)).result()

    assert result.outcome == "succeeded"
    assert result.created == ["cluster", "node_pool:system", "node_pool:general", "inventory"]
    state = sim_report(simulator, spec.name)["clusters"][spec.name]
    assert state["provider"] == provider and state["control_plane_version"] == "1.31"
    # A regional GKE pool has as many nodes in each of its three zones: the 2 asked for are 1 per zone, 3 in all.
    assert {name: pool["nodes"] for name, pool in state["node_pools"].items()} == {
        "system": 3 if provider == "gke" else 2, "general": 3}
    assert all(node["ready"] and node["version"].startswith("v1.31.") for node in state["nodes"].values())
    assert {"platform", "monitoring"} <= set(state["namespaces"])
    assert "rbac.authorization.k8s.io/v1/clusterrolebindings/-/regatta-platform-admins" in state["objects"]
    assert "networking.k8s.io/v1/networkpolicies/platform/default-deny-ingress" in state["objects"]
    record = inventory.get_cluster(spec.name)
    assert record.labels == {"env": "dev", "team": "search"} and record.provider == provider
    assert [p.name for p in record.node_pools] == ["system", "general"]
    assert [r.outcome for r in inventory.audit(cluster=spec.name) if r.operation == "ProvisionCluster"] == ["started", "succeeded"]
    # Born compliant: the baseline is a bundle like any other, in `policy status` from the start.
    [baseline] = inventory.compliance(cluster=spec.name)
    assert (baseline.bundle, baseline.state) == ("baseline", "compliant")
    assert "namespace/platform" in result.bootstrapped and "networkpolicy/platform/default-deny-ingress" in result.bootstrapped
    assert any(r.action == "compliance" and "baseline: no record → compliant" in r.detail
               for r in inventory.audit(cluster=spec.name))






@pytest.mark.parametrize(
    ("step", "faults", "error_type", "says"),
    [
        ("create the control plane", {"fail_operation": "CreateCluster", "fail_status": 400, "fail_times": 99},
         "CloudRefused", "creation of cluster"),
        ("create a node pool", {"fail_operation": "CreateNodegroup", "fail_status": 400, "fail_times": 99},
         "CloudRefused", "creation of node group"),
        ("nodes join", {"node_never_ready": True}, "CloudOperationFailed", "NodeCreationFailure"),
        ("the API answers", {"api": "kube", "fail_operation": "list_nodes", "fail_status": 403, "fail_times": 99},
         "KubeRefused", "403"),
        # the baseline bundle is server-side applied: a Namespace is a PATCH
        ("bootstrap", {"api": "kube", "fail_operation": "patch_namespace", "fail_status": 403, "fail_times": 99},
         "KubeRefused", "403"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
async def test_a_permanent_failure_at_any_step_removes_everything_created(
    step, faults, error_type, says, client, worker, task_queue, simulator, inventory
):
    spec = request("eks")
    set_faults(simulator, spec.name, **faults)
    failure = await failure_of(await provision(client, task_queue, spec))
    assert failure.type == error_type, failure.message
    assert says in failure.message
    assert "Everything it had created was deleted" in failure.message
    nothing_left(simulator, inventory, spec.name)
    assert [r.outcome for r in inventory.audit(cluster=spec.name)] == ["started", "failed"]
    assert sim_report(simulator, spec.name)["pdb_violations"] == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"region": "mars-north-1"}, "region 'mars-north-1' is not allowed for eks"),
        ({"version": "1.99"}, "not supported"),
        ({"name": "Bad_Name"}, "must be 4-40 characters"),
        ({"node_pools": [{"name": "general", "node_count": 500}]}, "asks for 500 nodes"),
        ({"node_pools": []}, "at least one node pool"),
    ],
)
async def test_fleet_rules_refuse_before_anything_is_created(changes, says, client, worker, task_queue, simulator, inventory):
    spec = request("eks", **changes)
    failure = await failure_of(await provision(client, task_queue, spec))
    assert failure.type == "FleetRuleViolation" and says in failure.message
    nothing_left(simulator, inventory, spec.name)


async def test_a_name_already_in_the_fleet_is_refused(client, worker, task_queue, add_cluster, simulator, inventory):
    taken = add_cluster("taken")
    failure = await failure_of(await provision(client, task_queue, request("eks", name=taken)))
    assert failure.type == "FleetRuleViolation" and f"a cluster named {taken} is already in the inventory" in failure.message
    assert sim_report(simulator, taken)["clusters"][taken]["control_plane_version"] == "1.30"  # untouched


async def test_a_failure_at_registration_undoes_the_cluster_but_not_the_other_record(client, worker, task_queue, simulator, inventory):
    """Someone registers a different cluster under the same name while ours is being built: the
    registration is refused, our cloud resources are deleted, and their record is left alone."""
    import asyncio

    from regatta.models import ClusterRecord, ProvisionClusterProgress

    spec = request("eks")
    set_faults(simulator, spec.name, hang=True)  # hold the control plane creation
    handle = await provision(client, task_queue, spec)
    for _ in range(200):
        progress = await handle.query("progress", result_type=ProvisionClusterProgress)
        if progress.phase == "creating":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError('test_provision.py:147: what this loop waited for never came')
    theirs = ClusterRecord(name=spec.name, provider="aks", region="westeurope", environment="prod", control_plane_version="1.30")
    inventory.upsert_cluster(theirs)
    http.delete(f"{simulator.url}/sim/faults", params={"cluster": spec.name}).raise_for_status()

    failure = await failure_of(handle)
    assert failure.type == "ClusterExists" and "a different cluster named" in failure.message
    assert "Everything it had created was deleted" in failure.message
    assert spec.name not in sim_report(simulator, spec.name)["clusters"]
    assert inventory.get_cluster(spec.name).provider == "aks"  # their record survived our compensation
    inventory.remove_cluster(spec.name)
