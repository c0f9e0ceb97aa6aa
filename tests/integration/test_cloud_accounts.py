"""Clouds check what they are given, as the real ones check a real account: a cluster in subnets
the account does not have is refused with the cloud's own words and nothing is left behind; a
request without the network a cloud needs is refused before it starts; and a blue/green
replacement node pool is made in the old pool's subnets, with its node role, labels and taints."""

from __future__ import annotations

import uuid

import pytest

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory.sweep import records_from_fleet
from regatta.models import ProvisionClusterInput
from regatta.temporal.admission import StartRefused, admit
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.integration.provisioning import EKS_NETWORK, failure_of, nothing_left, provision, request
from tests.shared_http import http


async def test_eks_refuses_a_subnet_the_account_does_not_have_and_the_operator_reads_why(
        client, worker, task_queue, simulator, inventory):
    spec = request("eks", network={**EKS_NETWORK, "subnets": [EKS_NETWORK["subnets"][0], "subnet-0deadbeef0000001"]})
    failure = await failure_of(await provision(client, task_queue, spec))
    assert "The subnet ID 'subnet-0deadbeef0000001' does not exist" in failure.message
    assert "creating the eks control plane" in failure.message
    nothing_left(simulator, inventory, spec.name)


def test_a_provision_without_the_network_eks_needs_is_refused_before_it_starts(inventory):
    bare = ProvisionClusterInput.model_validate({**request("eks").model_dump(), "network": {}})
    with pytest.raises(StartRefused) as refused:
        admit(bare, inventory=inventory)
    assert refused.value.kind == "invalid"
    assert "network.cluster_role" in str(refused.value) and "network.subnets" in str(refused.value)
    assert "node pool system: EKS needs a node IAM role" in str(refused.value)
    admit(request("gke"), inventory=inventory)  # GKE takes the project's default network


async def test_a_blue_green_replacement_pool_keeps_the_old_pools_subnets_role_labels_and_taints(
        client, worker, task_queue, simulator, inventory):
    name = f"bgnet-{uuid.uuid4().hex[:6]}"
    subnets = ["subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"]
    taint = {"key": "dedicated", "value": "payments", "effect": "NO_SCHEDULE"}
    fleet = FleetSpec.model_validate({"clusters": [{
        "name": name, "provider": "eks", "region": "us-east-1", "version": "1.30", "labels": {"env": "staging"},
        "node_pools": [{"name": "payments", "nodes": 2, "subnets": subnets, "labels": {"team": "payments"},
                        "taints": [taint]}],
        "workloads": [{"name": "web", "namespace": "shop", "replicas": 2, "pdb": {"max_unavailable": 1}}]}]})
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=10).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)
    handle = await start_upgrade(client, task_queue, name, strategy="blue_green")
    result = await handle.result()
    assert result.outcome == "succeeded"
    replacement = result.pools[0].replacement_pool
    pool = simulator.world.clusters[name].pools[replacement]
    assert pool.subnets == subnets and pool.node_role == "arn:aws:iam::111122223333:role/eks-node"
    assert pool.labels == {"team": "payments"} and pool.taints == [taint]
    assert "payments" not in simulator.world.clusters[name].pools  # the old one is gone
    assert sim_report(simulator, name)["pdb_violations"] == []


async def test_gke_refuses_a_network_the_project_does_not_have(client, worker, task_queue, simulator, inventory):
    spec = request("gke", network={"network": "corp-vpc"})
    failure = await failure_of(await provision(client, task_queue, spec))
    assert 'Network "corp-vpc" does not exist' in failure.message
    nothing_left(simulator, inventory, spec.name)
    fits = request("gke", network={"network": "fleet", "subnetwork": "fleet-nodes"})
    assert (await (await provision(client, task_queue, fits)).result()).outcome == "succeeded"
