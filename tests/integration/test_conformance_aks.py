"""AKS as its own references describe it (docs/cloud-conformance.md, the AKS table): the simulated AKS
refuses what the real one refuses, asked through azure-mgmt-containerservice as any client asks it
(agent pool names, a System pool always, 409 while an operation runs, If-Match, the msi service
principal profile on an update, pools within three minors of the control plane, UnsatisfiablePDB),
and Regatta obeys: the control plane is upgraded as `az aks upgrade --control-plane-only` sends it and
read by the version that runs, Entra ID clusters are reached with a token for the AKS server
application, a surge waits on a budget as long as Regatta's own drain would and then fails rather than
break it, and a System pool replaced blue/green stays a System pool (test_upgrade_strategies.py)."""

from __future__ import annotations

import time

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPool,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterAgentPoolProfileProperties,
    ManagedClusterProperties,
)
from kubernetes import client as k8s
from temporalio.client import WorkflowFailureError

from regatta.clouds import CloudError
from regatta.clouds.aks import SIM_RESOURCE_GROUP, SIM_SUBSCRIPTION, AksProvider, SimulatorCredential
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterRef, NodePool
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http

HTTP = {"enforce_https": False}
ENTRA = {"aadProfile": {"managed": True, "enableAzureRBAC": True}}


def cluster(name: str, *, pools: list[dict] | None = None, version: str = "1.30", **extra) -> dict:
    return {"name": name, "provider": "aks", "region": "eastus", "version": version, "labels": {"env": "staging"},
            "node_pools": pools or [{"name": "system", "nodes": 1}, {"name": "apps", "nodes": 1}], **extra}


@pytest.fixture
def aks(simulator) -> ContainerServiceClient:
    return ContainerServiceClient(SimulatorCredential(simulator.url, site=None), SIM_SUBSCRIPTION, base_url=simulator.url)


def rest_names(model: type) -> set[str]:
    """The wire names of a model's fields, as the SDK generated them from the REST specification."""
    model()  # the SDK fills in a model's field table when the first one is made
    return {field._rest_name for field in model._attr_to_rest_field.values()}  # type: ignore[attr-defined]


def code(error: HttpResponseError) -> str:
    return error.error.code if error.error else ""


def test_aks_refuses_what_its_references_say_it_refuses(aks, add_fleet, simulator):
    [name] = add_fleet(cluster("rules", time_scale=0.05, pools=[{"name": "system", "nodes": 1},
                                                               {"name": "apps", "nodes": 1, "node_image": "AKSUbuntu-2204gen2containerd-202601.05.0"}]))
    group = SIM_RESOURCE_GROUP
    with pytest.raises(HttpResponseError) as hyphen:
        aks.agent_pools.get(group, name, "general-v1-31", **HTTP)
    assert hyphen.value.status_code == 400 and "^[a-z][a-z0-9]{0,11}$" in hyphen.value.message
    with pytest.raises(HttpResponseError) as last_system:
        aks.agent_pools.begin_delete(group, name, "system", polling=False, **HTTP)
    assert code(last_system.value) == "OperationNotAllowed" and "at least one system agent pool" in last_system.value.message
    with pytest.raises(HttpResponseError) as windows_system:
        aks.agent_pools.begin_create_or_update(group, name, "win", AgentPool(  # type: ignore[call-overload]
            count=1, vm_size="Standard_D4s_v5", mode="System", os_type="Windows"), polling=False, **HTTP)
    assert "System agent pools osType must be Linux" in windows_system.value.message
    with pytest.raises(HttpResponseError) as ahead:
        aks.agent_pools.begin_create_or_update(group, name, "newer", AgentPool(  # type: ignore[call-overload]
            count=1, vm_size="Standard_D4s_v5", mode="User", orchestrator_version="1.31"), polling=False, **HTTP)
    assert code(ahead.value) == "NodePoolMcVersionIncompatible"

    found = aks.managed_clusters.get(group, name, **HTTP)
    assert found.service_principal_profile.client_id == "msi"  # what a managed-identity cluster describes
    sent_back = ManagedCluster(found.as_dict(exclude_readonly=True))
    sent_back.kubernetes_version = "1.31"
    with pytest.raises(HttpResponseError) as msi:  # `az aks upgrade` nulls it "because otherwise validation complains"
        aks.managed_clusters.begin_create_or_update(group, name, sent_back, polling=False, **HTTP)
    assert "servicePrincipalProfile" in msi.value.message
    with pytest.raises(ResourceModifiedError):
        sent_back.service_principal_profile = None
        aks.managed_clusters.begin_create_or_update(group, name, sent_back, etag="0123abcd",
                                                    match_condition=MatchConditions.IfNotModified, polling=False, **HTTP)
    rolled_back = ManagedCluster(found.as_dict(exclude_readonly=True))
    rolled_back.service_principal_profile, rolled_back.kubernetes_version = None, "1.31"
    rolled_back.agent_pool_profiles[0].node_image_version = "AKSUbuntu-2204gen2containerd-202501.01.0"
    with pytest.raises(HttpResponseError) as rollback:  # 2026-08-01: a pool's nodeImageVersion asks for a rollback
        aks.managed_clusters.begin_create_or_update(group, name, rolled_back, polling=False, **HTTP)
    assert "recentlyUsedVersions" in rollback.value.message
    assert simulator.world.clusters[name].version == "1.30"  # refused whole: nothing half changed
    skipped = ManagedCluster(found.as_dict(exclude_readonly=True))
    skipped.service_principal_profile, skipped.kubernetes_version = None, "1.32"
    with pytest.raises(HttpResponseError) as skip:
        aks.managed_clusters.begin_create_or_update(group, name, skipped, polling=False, **HTTP)
    assert code(skip.value) == "OperationNotAllowed" and "Upgrading Kubernetes version 1.30.5 to 1.32 is not allowed" in skip.value.message

    resized = AgentPool(aks.agent_pools.get(group, name, "apps", **HTTP).as_dict(exclude_readonly=True))
    resized.vm_size = "Standard_D8s_v5"
    with pytest.raises(HttpResponseError) as immutable:  # "You can't change the VM size of a node pool after you create it"
        aks.agent_pools.begin_create_or_update(group, name, "apps", resized, polling=False, **HTTP)
    assert code(immutable.value) == "PropertyChangeNotAllowed"

    aks.agent_pools.begin_upgrade_node_image_version(group, name, "apps", polling=False, **HTTP)  # a surge, running a while
    with pytest.raises(HttpResponseError) as busy:
        aks.agent_pools.begin_upgrade_node_image_version(group, name, "apps", polling=False, **HTTP)
    assert busy.value.status_code == 409 and code(busy.value) == "OperationNotAllowed"
    assert "Another agentpool operation (apps - Upgrading) is in progress" in busy.value.message
    with pytest.raises(CloudError) as classed:  # which Regatta waits for rather than retrying on a short budget
        AksProvider(endpoint_url=simulator.url).delete_node_pool(ClusterRef(name=name, provider="aks", region="eastus"),
                                                                 node_pool="apps", request_token="t")
    assert classed.value.error_type == "OperationInProgress" and not classed.value.retryable


def test_the_control_plane_goes_up_as_az_aks_upgrade_sends_it_and_is_read_by_the_version_that_runs(add_fleet, simulator):
    [name] = add_fleet(cluster("cp", time_scale=0.005))
    ref = ClusterRef(name=name, provider="aks", region="eastus")
    provider = AksProvider(endpoint_url=simulator.url)
    started = provider.start_control_plane_upgrade(ref, version="1.31", request_token="t")
    assert started.status == "in_progress"
    assert provider.describe_control_plane(ref).version == "1.30"  # kubernetesVersion says 1.31 already; 1.30 runs
    with pytest.raises(CloudError) as busy:  # a 409 on a pool's create is AKS busy, never "the pool exists already"
        provider.create_node_pool(ref, node_pool=NodePool(name="extra", version="1.30", node_count=1,
                                                          node_size="Standard_D4s_v5"), request_token="t")
    assert busy.value.error_type == "OperationInProgress" and "extra" not in simulator.world.clusters[name].pools
    [put] = [r for r in http.get(f"{simulator.url}/sim/requests", params={"cloud": "aks", "path_contains": name},
                                  timeout=10).json()["requests"] if r["method"] == "PUT" and "/agentPools/" not in r["path"]]
    assert "servicePrincipalProfile" not in put["body"]["properties"] and put.get("if_match")
    assert set(put["body"]["properties"]) <= rest_names(ManagedClusterProperties)  # every property is the SDK's own
    assert all(set(p) <= rest_names(ManagedClusterAgentPoolProfile) for p in put["body"]["properties"]["agentPoolProfiles"])
    assert {p["name"]: p["orchestratorVersion"] for p in put["body"]["properties"]["agentPoolProfiles"]} == {
        "system": "1.30", "apps": "1.30"}  # every pool left where it is: the control plane only
    assert not any(p.get("nodeImageVersion") for p in put["body"]["properties"]["agentPoolProfiles"])  # no rollback asked
    again = provider.start_control_plane_upgrade(ref, version="1.31", request_token="t")  # a retry after a crash
    assert again.id == "resource:1.31"
    for _ in range(200):
        if provider.poll_operation(ref, again).status == "succeeded":
            break
        time.sleep(0.05)
    assert provider.describe_control_plane(ref).version == "1.31"


def test_an_entra_id_cluster_is_reached_with_a_token_for_the_aks_server_application(add_fleet, simulator):
    entra, local, locked = add_fleet(cluster("entra", cloud=ENTRA), cluster("local"),
                                     cluster("locked", cloud={"disableLocalAccounts": True}))
    provider = AksProvider(endpoint_url=simulator.url)
    endpoint = provider.kube_endpoint(ClusterRef(name=entra, provider="aks", region="eastus"))
    assert endpoint.bearer_token.startswith("simtok-entra-") and endpoint.expires_at is not None
    connections = ClusterConnections(sim_url=simulator.url)
    nodes = k8s.CoreV1Api(connections.api_client(ClusterRef(name=entra, provider="aks", region="eastus"))).list_node().items
    assert len(nodes) == 2
    assert provider.kube_endpoint(ClusterRef(name=local, provider="aks", region="eastus")).bearer_token == \
        simulator.world.token_for(simulator.world.clusters[local])  # local accounts: the cluster user's own token
    with pytest.raises(CloudError) as refused:
        provider.kube_endpoint(ClusterRef(name=locked, provider="aks", region="eastus"))
    assert "disable local accounts" in str(refused.value)


async def test_an_aks_surge_waits_on_a_budget_as_long_as_regattas_drain_would_then_fails_without_breaking_it(
        client, worker, task_queue, add_fleet, simulator):
    tight = [{"name": "ledger", "namespace": "shop", "replicas": 2, "pdb": {"min_available": 1}}]
    [name] = add_fleet(cluster("budget", version="1.31", time_scale=0.005, workloads=tight,
                               pools=[{"name": "system", "nodes": 1, "version": "1.30"}]))
    set_faults(simulator, name, blocking_pdbs=["shop/ledger-pdb"])
    with pytest.raises(WorkflowFailureError) as failed:
        await (await start_upgrade(client, task_queue, name, drain_timeout_seconds=120)).result()
    assert "UpgradeFailed" in failed.value.cause.message and "disruption budget" in failed.value.cause.message
    state = sim_report(simulator, name)
    assert state["pdb_violations"] == []
    settings = state["clusters"][name]["node_pools"]["system"]["settings"]["upgradeSettings"]
    assert settings["drainTimeoutInMinutes"] == 2 and settings["undrainableNodeBehavior"] == "Schedule"
    puts = [r for r in http.get(f"{simulator.url}/sim/requests", params={"cloud": "aks", "path_contains": f"{name}/agentPools/"},
                                 timeout=10).json()["requests"] if r["method"] == "PUT"]
    # nodeImageVersion is writable since 2026-08-01 and means a rollback: never sent back
    assert puts and all("nodeImageVersion" not in r["body"]["properties"] and r.get("if_match") for r in puts)
    known = rest_names(ManagedClusterAgentPoolProfileProperties)
    assert all(set(r["body"]["properties"]) <= known for r in puts), "a property the SDK's own model does not have"
