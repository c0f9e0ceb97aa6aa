"""Regatta's own drain (blue/green) reads a node the way `kubectl drain --ignore-daemonsets` does
(docs/cloud-conformance.md, the Kubernetes table): pods no controller will recreate and pods with
emptyDir data are refused, named, before a single eviction, unless the operator allows them; a pod two
budgets select is reported blocked with that reason (the eviction API's 500, not a budget's 429); the API
server's own throttling (a 429 naming no budget) is waited out and is no budget; and a budget that selects
with matchExpressions is read whole."""

from __future__ import annotations

import httpx
import pytest
import yaml
from temporalio.client import WorkflowFailureError

from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade

SHOP = [{"name": "checkout", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}}]


def cluster(name: str, *, workloads: list[dict], nodes: int = 2) -> dict:
    return {"name": name, "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"env": "staging"},
            "node_pools": [{"name": "general", "nodes": nodes}], "workloads": workloads}


def apply_budget(simulator, cluster: str, namespace: str, name: str, spec: dict) -> None:
    """A PodDisruptionBudget applied as `kubectl apply --server-side` would."""
    manifest = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": namespace},
                "spec": spec}
    response = httpx.patch(
        f"{simulator.world.kube_url}/k8s/{cluster}/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}",
        params={"fieldManager": "tests"}, content=yaml.safe_dump(manifest), verify=False,
        headers={"Authorization": f"Bearer {simulator.world.api_token}", "Content-Type": "application/apply-patch+yaml"})
    response.raise_for_status()


async def test_pods_kubectl_would_not_lose_are_refused_by_name_before_any_eviction_then_allowed(
        client, worker, task_queue, add_fleet, simulator):
    workloads = [*SHOP, {"name": "debug", "kind": "Pod", "replicas": 1},
                 {"name": "cache", "namespace": "shop", "replicas": 2, "empty_dir": True}]
    [name] = add_fleet(cluster("bare", workloads=workloads))
    before = sorted(p for p in simulator.world.clusters[name].pods)
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, task_queue, name, strategy="blue_green")).result()
    cause = refused.value.cause
    assert cause.type == "DrainRefused"
    assert "cannot delete Pods that declare no controller" in cause.message and "default/debug-0" in cause.message
    assert "cannot delete Pods with local storage" in cause.message and "shop/cache-" in cause.message
    assert "Nothing was evicted" in cause.message
    assert sorted(simulator.world.clusters[name].pods) == before, "a pod left before the refusal"
    state = sim_report(simulator, name)["clusters"][name]
    assert not any(node["unschedulable"] for node in state["nodes"].values()), "the old nodes are back in service"

    allowed = await start_upgrade(client, task_queue, name, strategy="blue_green", drain_unmanaged_pods=True,
                                  drain_emptydir_data=True)
    assert (await allowed.result()).outcome == "succeeded"
    after = sim_report(simulator, name)
    assert ("default", "debug-0") not in simulator.world.clusters[name].pods  # nothing recreates it: as kubectl --force
    assert after["clusters"][name]["pods_ready"] == after["clusters"][name]["pods"] == 5
    assert after["pdb_violations"] == [] and after["double_drains"] == []


async def test_a_pod_two_budgets_select_is_blocked_with_that_reason_and_a_match_expressions_budget_is_read_whole(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("twice", workloads=SHOP))
    apply_budget(simulator, name, "shop", "checkout-by-expression",
                 {"maxUnavailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["checkout"]}]}})
    with pytest.raises(WorkflowFailureError) as failed:
        await (await start_upgrade(client, task_queue, name, strategy="blue_green", drain_timeout_seconds=2,
                                   drain_blocked_report_seconds=0.5)).result()
    message = failed.value.cause.message
    assert failed.value.cause.type == "DrainTimeout"
    assert "selected by more than one PodDisruptionBudget" in message
    assert "shop/checkout-pdb" in message and "shop/checkout-by-expression" in message
    report = sim_report(simulator, name)
    assert report["pdb_violations"] == [] and report["clusters"][name]["pods"] == 3


async def test_the_api_servers_own_throttling_is_waited_out_and_is_no_budget(
        client, worker, task_queue, add_fleet, simulator, inventory):
    [name] = add_fleet(cluster("throttled", workloads=SHOP))
    # A third of all evictions answered as API Priority and Fairness answers: 429, plain text, Retry-After.
    set_faults(simulator, name, api="kube", fail_operation="evict", error_rate=0.3, error_codes=[429])
    handle = await start_upgrade(client, task_queue, name, strategy="blue_green", drain_blocked_report_seconds=0.2)
    result = await handle.result()
    assert result.outcome == "succeeded"
    # Taken for a budget, a throttled drain would have been reported blocked and escalated within 0.2 s.
    assert [r for r in inventory.audit(operation_id=handle.id) if r.action == "drain"] == []
    assert sim_report(simulator, name)["pdb_violations"] == []
