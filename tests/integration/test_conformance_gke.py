"""GKE as its own references describe it (docs/cloud-conformance.md, the GKE table): the simulated GKE
refuses what the real one refuses, asked through google-cloud-container exactly as any client asks it
(one operation at a time per cluster, FAILED_PRECONDITION on HTTP 400; operation links naming the
project by number and a zonal cluster by zone; name and version rules; a cluster born with nodes;
a surge drain that gives up on a budget after an hour), and Regatta obeys: a retried start finds its
own operation, each pool keeps its own image type, a blue/green replacement keeps the whole node config,
someone else's operation is waited for, and a surge does not start while a budget allows no disruption.
Every request body Regatta sent is read back through the SDK's own message types."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1
from temporalio.client import WorkflowFailureError

from regatta.clouds import CloudError
from regatta.clouds.gke import GkeProvider
from regatta.models import ClusterRef, ClusterUpgradeProgress
from regatta.models.errors import ErrorType
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http

PROJECT = "projects/regatta-sim/locations"
SHOP = [{"name": "checkout", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}}]


def cluster(name: str, *, pools: list[dict], region: str = "us-central1", version: str = "1.30", **extra) -> dict:
    return {"name": name, "provider": "gke", "region": region, "version": version, "labels": {"env": "staging"},
            "node_pools": pools, **extra}


@pytest.fixture
def gke(simulator) -> container_v1.ClusterManagerClient:
    return container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest",
                                             client_options=ClientOptions(api_endpoint=simulator.url))


def path(region: str, name: str, pool: str | None = None) -> str:
    return f"{PROJECT}/{region}/clusters/{name}" + (f"/nodePools/{pool}" if pool else "")


def status_of(error: google_errors.GoogleAPICallError) -> str:
    return error.response.json()["error"]["status"]


def test_one_operation_at_a_time_refused_as_failed_precondition_with_links_by_project_number_and_zone(gke, add_fleet, simulator):
    [name] = add_fleet(cluster("zonal", region="us-central1-a", time_scale=0.05,
                               pools=[{"name": "general", "nodes": 1, "node_image": "1.30.2-gke.1000"}]))
    started = gke.update_node_pool(container_v1.UpdateNodePoolRequest(name=path("us-central1-a", name, "general"),
                                                                       node_version="1.30"))
    assert started.target_link == (f"https://container.googleapis.com/v1/projects/123456789012/zones/us-central1-a/clusters/{name}"
                                   "/nodePools/general")
    assert started.self_link.startswith("https://container.googleapis.com/v1/projects/123456789012/zones/us-central1-a/operations/operation-")
    with pytest.raises(google_errors.BadRequest) as busy:  # the REST client names it by HTTP code: 400
        gke.update_master(name=path("us-central1-a", name), master_version="1.31")
    assert status_of(busy.value) == "FAILED_PRECONDITION"
    assert f"Operation {started.name} is currently upgrading cluster {name}. Please wait" in busy.value.message
    ref = ClusterRef(name=name, provider="gke", region="us-central1-a")
    provider = GkeProvider(endpoint_url=simulator.url)
    with pytest.raises(CloudError) as classed:
        provider.start_control_plane_upgrade(ref, version="1.31", request_token="t")
    assert classed.value.error_type == ErrorType.OPERATION_IN_PROGRESS and not classed.value.retryable
    # A retried start of the same upgrade finds the operation GKE is running, by its link, and asks no second time.
    again = provider.start_node_pool_upgrade(ref, node_pool="general", version="1.30", node_image="1.30.5-gke.1200",
                                            request_token="t")
    assert again.id == started.name and again.status == "in_progress"


def test_gke_refuses_what_its_references_say_it_refuses(gke, add_fleet):
    [name] = add_fleet(cluster("rules", pools=[{"name": "linux", "nodes": 1, "cloud": {"config": {"imageType": "UBUNTU_CONTAINERD"}}}]))
    region = "us-central1"
    with pytest.raises(google_errors.BadRequest) as no_nodes:
        gke.create_cluster(parent=f"{PROJECT}/{region}", cluster=container_v1.Cluster(name=f"{name}-x"))
    assert "Cluster.initial_node_count must be greater than zero." in no_nodes.value.message
    with pytest.raises(google_errors.BadRequest) as underscore:
        gke.create_node_pool(parent=path(region, name), node_pool=container_v1.NodePool(name="pool_1", initial_node_count=1))
    assert "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)'" in underscore.value.message
    with pytest.raises(google_errors.BadRequest) as skip:
        gke.update_master(name=path(region, name), master_version="1.32")
    assert "cannot upgrade the master more than a minor version at a time" in skip.value.message
    with pytest.raises(google_errors.BadRequest) as ahead:
        gke.update_node_pool(container_v1.UpdateNodePoolRequest(name=path(region, name, "linux"), node_version="1.31"))
    assert 'cannot be greater than current master version "1.30.5-gke.1200"' in ahead.value.message
    with pytest.raises(google_errors.BadRequest) as malformed:
        gke.update_master(name=path(region, name), master_version="v1.31")
    assert "It should have the form 1.X, 1.X.Y, 1.X.Y-.*, 'latest'" in malformed.value.message
    with pytest.raises(google_errors.BadRequest) as to_windows:
        gke.update_node_pool(container_v1.UpdateNodePoolRequest(name=path(region, name, "linux"), node_version="1.30",
                                                                 image_type="WINDOWS_LTSC_CONTAINERD"))
    assert "between Linux and Windows" in to_windows.value.message


def test_gke_surge_honours_a_budget_for_an_hour_then_goes_on_without_it(gke, add_fleet, simulator):
    """Why Regatta does not start a GKE surge while a budget allows no disruption (the simulator models
    GKE's own limit, at a two-thousandth of real time here)."""
    tight = [{"name": "ledger", "namespace": "shop", "replicas": 2, "pdb": {"min_available": 2}}]  # allows no eviction
    [name] = add_fleet(cluster("hour", time_scale=0.0005, workloads=tight,
                               pools=[{"name": "general", "nodes": 1, "node_image": "1.30.2-gke.1000"}]))
    operation = gke.update_node_pool(container_v1.UpdateNodePoolRequest(name=path("us-central1", name, "general"),
                                                                        node_version="1.30", image_type="COS_CONTAINERD"))
    for _ in range(200):
        if gke.get_operation(name=f"{PROJECT}/us-central1/operations/{operation.name}").status == container_v1.Operation.Status.DONE:
            break
        time.sleep(0.1)
    else:
        raise AssertionError('test_conformance_gke.py:109: what this loop waited for never came')
    violations = sim_report(simulator, name)["pdb_violations"]
    assert violations and all("past its PodDisruptionBudget timeout" in v["via"] for v in violations)


async def test_a_surge_keeps_each_pools_own_image_type_and_every_body_reads_back_through_the_sdk(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("images", pools=[
        {"name": "ubuntu", "nodes": 1, "cloud": {"config": {"imageType": "UBUNTU_CONTAINERD"}}},
        {"name": "windows", "nodes": 1, "cloud": {"config": {"imageType": "WINDOWS_LTSC_CONTAINERD"}}}]))
    assert (await (await start_upgrade(client, task_queue, name)).result()).outcome == "succeeded"
    pools = sim_report(simulator, name)["clusters"][name]["node_pools"]
    assert {p: pools[p]["settings"]["config"]["imageType"] for p in pools} == {
        "ubuntu": "UBUNTU_CONTAINERD", "windows": "WINDOWS_LTSC_CONTAINERD"}
    sent = http.get(f"{simulator.url}/sim/requests", params={"cloud": "gke", "path_contains": name}, timeout=10).json()["requests"]
    updates = [r for r in sent if r["method"] == "PUT"]
    assert {r["body"]["imageType"] for r in updates} == {"UBUNTU_CONTAINERD", "WINDOWS_LTSC_CONTAINERD"}
    assert not any("upgradeSettings" in r["body"] for r in updates)  # the pools' own settings, left as they were
    for request in sent:  # every field Regatta sends is one of the SDK's own: parsed strictly, nothing unknown
        if request["body"]:
            kind = (container_v1.UpdateNodePoolRequest if request["method"] == "PUT" else container_v1.UpdateMasterRequest
                    if request["path"].endswith(":updateMaster") else container_v1.CreateNodePoolRequest)
            kind.from_json(json.dumps(request["body"]), ignore_unknown_fields=False)


async def test_a_blue_green_replacement_keeps_the_whole_node_config_its_locations_and_autoscaling(
        client, worker, task_queue, add_fleet, simulator):
    config = {"imageType": "UBUNTU_CONTAINERD", "serviceAccount": "nodes@regatta-sim.iam.gserviceaccount.com",
              "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"], "diskSizeGb": 200, "spot": True,
              "metadata": {"disable-legacy-endpoints": "true"}}
    zones = ["us-central1-a", "us-central1-b", "us-central1-c"]
    [name] = add_fleet(cluster("likeness", pools=[{"name": "spot", "nodes": 3, "labels": {"tier": "spot"}, "cloud": {
        "config": config, "locations": zones, "autoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 5}}}]))
    assert (await (await start_upgrade(client, task_queue, name, strategy="blue_green")).result()).outcome == "succeeded"
    pools = sim_report(simulator, name)["clusters"][name]["node_pools"]
    assert list(pools) == ["spot-v1-31"]
    replacement = pools["spot-v1-31"]
    assert replacement["settings"]["config"] == config and replacement["settings"]["locations"] == zones
    assert replacement["settings"]["autoscaling"] == {"enabled": True, "minNodeCount": 1, "maxNodeCount": 5}
    assert replacement["labels"] == {"tier": "spot"} and replacement["nodes"] == 3  # one per zone, as before
    created = [r for r in http.get(f"{simulator.url}/sim/requests", params={"cloud": "gke", "path_contains": name},
                                    timeout=10).json()["requests"] if r["method"] == "POST" and r["path"].endswith("/nodePools")]
    [body] = [r["body"] for r in created]
    container_v1.CreateNodePoolRequest.from_json(json.dumps(body), ignore_unknown_fields=False)
    assert body["nodePool"]["initialNodeCount"] == 1 and "selfLink" not in body["nodePool"]


async def test_an_operation_gke_runs_by_itself_is_waited_for_visibly_then_the_upgrade_goes_on(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("auto", version="1.31", time_scale=0.01, pools=[{"name": "general", "nodes": 1, "version": "1.30"}]))
    http.post(f"{simulator.url}/sim/busy", json={"cluster": name, "seconds": 300},
               timeout=10).raise_for_status()  # GKE's own work on the master, three seconds long here
    handle = await start_upgrade(client, task_queue, name)
    seen = None
    for _ in range(100):
        progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
        if progress.waiting_for:
            seen = progress.waiting_for
            break
        await asyncio.sleep(0.05)
    assert (await handle.result()).outcome == "succeeded"
    assert seen is not None and "with a change Regatta did not start" in seen, seen
    assert sim_report(simulator, name)["clusters"][name]["node_pools"]["general"]["version"] == "1.31"


async def test_a_retried_start_that_finds_gkes_own_upgrade_running_still_makes_its_own(
        client, worker, task_queue, add_fleet, simulator):
    """GKE takes no request tokens: the operation a start finds running on its target may be GKE's auto-upgrade
    rather than the start's own earlier attempt. Once it ends, the pool is read again and upgraded if it is not there."""
    [name] = add_fleet(cluster("adopt", version="1.31", time_scale=0.01, pools=[{"name": "general", "nodes": 1, "version": "1.30"}]))
    http.post(f"{simulator.url}/sim/busy", json={"cluster": name, "node_pool": "general", "seconds": 300},
               timeout=10).raise_for_status()  # GKE's auto-upgrade of the pool (to the version it runs)
    assert (await (await start_upgrade(client, task_queue, name)).result()).outcome == "succeeded"
    ours = [o for o in http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"]
            if o["cluster"] == name and o["node_pool"] == "general"]
    assert len(ours) == 2  # GKE's and the upgrade's own
    assert sim_report(simulator, name)["clusters"][name]["node_pools"]["general"]["version"] == "1.31"


async def test_a_step_that_keeps_meeting_gkes_own_operations_stops_after_three_and_names_the_one_running(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("endless", version="1.31", time_scale=0.01, pools=[{"name": "general", "nodes": 1, "version": "1.30"}]))
    http.post(f"{simulator.url}/sim/busy", json={"cluster": name, "node_pool": "general", "seconds": 60, "then": 5},
               timeout=10).raise_for_status()  # an auto-upgrade that takes its turn again the moment it ends
    with pytest.raises(WorkflowFailureError) as failed:
        await (await start_upgrade(client, task_queue, name)).result()
    message = failed.value.cause.message
    assert failed.value.cause.type == "CloudOperationFailed", message
    assert "general of " + name in message and "after 3 operations" in message and "operation-" in message, message
    ours = [o for o in http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"]
            if o["cluster"] == name and o["node_pool"] == "general"]
    assert len(ours) == 4  # three waited for, the fourth named and left to GKE: none of them Regatta's own upgrade
    assert sim_report(simulator, name)["clusters"][name]["node_pools"]["general"]["version"] == "1.30"


async def test_a_gke_surge_does_not_start_while_a_budget_allows_no_disruption(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("budget", workloads=SHOP, pools=[{"name": "general", "nodes": 3}]))
    set_faults(simulator, name, blocking_pdbs=["shop/checkout-pdb"])
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, task_queue, name)).result()
    assert refused.value.cause.type == "CloudRuleViolation"
    assert "GKE's surge upgrade honours a PodDisruptionBudget for at most an hour" in refused.value.cause.message
    assert "shop/checkout-pdb" in refused.value.cause.message and "blue_green" in refused.value.cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"
