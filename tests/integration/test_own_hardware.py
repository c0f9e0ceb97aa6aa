"""Clusters on your own hardware, upgraded through their own controllers with the runbook and the guarantees the
clouds' clusters get: a Cluster API workload cluster (KubeadmControlPlane, then each MachineDeployment, on its
management cluster) and a k3s cluster (the system-upgrade-controller's Plans: servers, then each pool's agents). The
simulator plays the controllers as cluster-api and rancher/system-upgrade-controller behave
(docs/cloud-conformance.md C1–C9, U1–U8): every budget is asked through the eviction API and none may break."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from regatta.formats.fleet_file import FleetSpec
from regatta.inventory.sweep import records_from_fleet
from regatta.models import ClusterUpgradeInput, ClusterUpgradeProgress, PatchWaveInput, PatchWaveResult
from regatta.rules import own_hardware
from regatta.rules.operation_ids import wave_id
from regatta.temporal.admission import StartRefused, admit
from tests.conftest import WorkerProcess, eks_cluster, set_faults, sim_report
from tests.integration.conftest import FAST, start_upgrade
from tests.replaying import replays
from tests.shared_http import http
from workers.main import build_worker

AGENTS = own_hardware.plan_name("agents")  # the Plan of the k3s clusters' pool "agents"
SHOP = [{"name": "web", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}},
        {"name": "api", "namespace": "shop", "replicas": 2, "pdb": {"max_unavailable": 1}}]


def own_fleet(simulator, inventory, *, capi_nodes: int = 3, k3s_nodes: int = 3, time_scale: float | None = None,
              workloads: list[dict] | None = None, labels: dict[str, str] | None = None,
              clouds: list[dict] = ()) -> tuple[str, str, str]:
    """A management cluster, a Cluster API workload cluster it manages and a k3s cluster (and `clouds`, cluster specs
    as the fleet file writes them), loaded and registered."""
    tag = uuid.uuid4().hex[:6]
    mgmt, capi, k3s = f"mgmt-{tag}", f"capi-{tag}", f"k3s-{tag}"
    fleet = FleetSpec.model_validate({"clusters": [
        {"name": mgmt, "provider": "kubeconfig", "region": "dc-east", "labels": {"env": "infra"}, "version": "1.30",
         "node_pools": [{"name": "mgmt", "nodes": 1}]},
        {"name": capi, "provider": "capi", "region": "dc-east", "labels": {"env": "staging", **(labels or {})},
         "version": "1.30", "management": {"context": mgmt, "namespace": "fleet", "cluster": capi}, "time_scale": time_scale,
         "node_pools": [{"name": f"{capi}-md-0", "nodes": capi_nodes}], "workloads": workloads or SHOP},
        {"name": k3s, "provider": "suc", "region": "dc-west", "labels": {"env": "staging", **(labels or {})},
         "version": "1.30", "time_scale": time_scale, "node_pools": [{"name": "agents", "nodes": k3s_nodes}],
         "workloads": workloads or SHOP},
        *clouds,
    ]})
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=30).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)
    return mgmt, capi, k3s


def kube_get(simulator, cluster: str, path: str) -> dict:
    response = http.get(f"{simulator.url}/k8s/{cluster}{path}", timeout=10,
                         headers={"authorization": f"Bearer {simulator.world.api_token}"})
    response.raise_for_status()
    return response.json()


def machines(simulator, mgmt: str) -> list[dict]:
    return kube_get(simulator, mgmt, "/apis/cluster.x-k8s.io/v1beta1/namespaces/fleet/machines")["items"]


def nodes(simulator, cluster: str) -> dict[str, dict]:
    return sim_report(simulator, cluster)["clusters"][cluster]["nodes"]


async def test_a_cluster_api_cluster_is_upgraded_machine_by_machine_under_every_budget(client, worker, task_queue,
                                                                                     simulator, inventory):
    mgmt, capi, _ = own_fleet(simulator, inventory)
    before = {n for n in nodes(simulator, capi)}
    handle = await start_upgrade(client, task_queue, capi, node_images={"capi": "v1.31.4"})
    result = await handle.result()

    assert result.outcome == "succeeded", result.message
    kcp = kube_get(simulator, mgmt, f"/apis/controlplane.cluster.x-k8s.io/v1beta1/namespaces/fleet/kubeadmcontrolplanes/"
                                    f"{capi}-control-plane")
    assert kcp["spec"]["version"] == "v1.31.4" and kcp["status"]["version"] == "v1.31.4"
    md = kube_get(simulator, mgmt, f"/apis/cluster.x-k8s.io/v1beta1/namespaces/fleet/machinedeployments/{capi}-md-0")
    assert md["spec"]["template"]["spec"]["version"] == "v1.31.4"
    assert "nodeDrainTimeout" not in md["spec"]["template"]["spec"]  # never past a budget by Cluster API's own timeout
    now = nodes(simulator, capi)
    assert len(now) == 3 and not set(now) & before, "every Machine was replaced by a new one"
    assert all(node["version"] == "v1.31.4" for node in now.values())
    assert {m["spec"]["version"] for m in machines(simulator, mgmt) if m["spec"]["clusterName"] == capi} == {"v1.31.4"}
    report = sim_report(simulator, capi)
    assert report["pdb_violations"] == [] and report["skew_violations"] == []
    # the runbook's order: the control plane, then the MachineDeployment
    assert [p.name for p in result.pools] == [f"{capi}-md-0"] and result.control_plane_version == "1.31"
    record = inventory.get_cluster(capi)
    assert record.control_plane_version == "1.31" and record.node_pools[0].node_image.startswith("v1.31.4")


async def test_a_k3s_cluster_is_upgraded_by_its_plans_servers_first_then_agents_drained(client, worker, task_queue,
                                                                                       simulator, inventory):
    _, _, k3s = own_fleet(simulator, inventory)
    handle = await start_upgrade(client, task_queue, k3s)
    result = await handle.result()

    assert result.outcome == "succeeded", result.message
    now = nodes(simulator, k3s)
    assert all(node["version"] == "v1.31.4+k3s1" for node in now.values()), now  # the channel's newest 1.31 release
    plans = {p["metadata"]["name"]: p for p in kube_get(
        simulator, k3s, "/apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans")["items"]}
    assert set(plans) == {"regatta-server", AGENTS}
    server, agents = plans["regatta-server"]["spec"], plans[AGENTS]["spec"]
    # asked on the minor's channel, then pinned to what it resolved: a channel left on would upgrade again unattended
    assert "channel" not in server and server["version"] == "v1.31.4+k3s1" and server["cordon"] is True
    assert agents["version"] == "v1.31.4+k3s1"  # the servers' very release, which the agents' prepare step checks
    assert agents["prepare"]["args"] == ["prepare", "regatta-server"]
    assert agents["drain"]["disableEviction"] is False and agents["drain"]["force"] is False
    assert agents["drain"]["timeout"] == "10s"  # the upgrade's drain timeout
    jobs = kube_get(simulator, k3s, "/apis/batch/v1/namespaces/system-upgrade/jobs")["items"]
    assert len(jobs) == 6 and all(j["status"].get("succeeded") == 1 for j in jobs)
    report = sim_report(simulator, k3s)
    assert report["pdb_violations"] == [] and report["skew_violations"] == []
    assert all(not node["unschedulable"] for node in now.values())


async def test_a_cluster_api_upgrade_without_its_release_is_refused_before_anything_changes(client, worker, task_queue,
                                                                                          simulator, inventory):
    mgmt, capi, k3s = own_fleet(simulator, inventory)
    for cluster, images, said in ((capi, {}, "give node_images.capi"),
                                  (capi, {"capi": "v1.32.1"}, "not a release of Kubernetes 1.31"),
                                  (k3s, {"suc": "v1.31.4"}, "not a k3s release")):
        handle = await start_upgrade(client, task_queue, cluster, node_images=images)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert said in str(failure.value.cause), failure.value.cause
    # the CLI and the API refuse the same before anything starts (exit 2, a 422)
    for cluster, images, strategy, said in ((capi, {}, "surge", "give node_images.capi"),
                                            (k3s, {}, "blue_green", "use strategy surge")):
        with pytest.raises(StartRefused, match=said) as refused:
            admit(ClusterUpgradeInput(cluster=cluster, target_version="1.31", node_images=images, strategy=strategy),
                  inventory=inventory)
        assert refused.value.kind == "invalid"
    kcp = kube_get(simulator, mgmt, f"/apis/controlplane.cluster.x-k8s.io/v1beta1/namespaces/fleet/kubeadmcontrolplanes/"
                                    f"{capi}-control-plane")
    assert kcp["spec"]["version"] == "v1.30.5" and kcp["metadata"]["generation"] == 1
    assert kube_get(simulator, k3s, "/apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans")["items"] == []


async def test_a_budget_that_holds_cluster_apis_drain_is_reported_as_a_clouds_is(client, worker, task_queue, simulator,
                                                                               inventory):
    mgmt, capi, _ = own_fleet(simulator, inventory)
    set_faults(simulator, capi, blocking_pdbs=["shop/web-pdb"])
    handle = await start_upgrade(client, task_queue, capi, node_images={"capi": "v1.31.4"}, drain_timeout_seconds=2)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    said = str(failure.value.cause)
    assert "PodEvictionFailure" in said and "shop/web-" in said and "disruption budget" in said, said
    md_path = f"/apis/cluster.x-k8s.io/v1beta1/namespaces/fleet/machinedeployments/{capi}-md-0"
    assert kube_get(simulator, mgmt, md_path)["metadata"]["annotations"]["cluster.x-k8s.io/paused"] == "true"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert progress.control_plane == "done" and progress.pools[0].status == "failed"
    assert sim_report(simulator, capi)["pdb_violations"] == []
    http.delete(f"{simulator.url}/sim/faults", params={"cluster": capi}).raise_for_status()
    again = await start_upgrade(client, task_queue, capi, node_images={"capi": "v1.31.4"})  # the budget allows it now
    assert (await again.result()).outcome == "succeeded"
    assert "cluster.x-k8s.io/paused" not in (kube_get(simulator, mgmt, md_path)["metadata"].get("annotations") or {})
    assert {n["version"] for n in nodes(simulator, capi).values()} == {"v1.31.4"}
    assert sim_report(simulator, capi)["pdb_violations"] == []


async def test_a_budget_that_holds_the_system_upgrade_controllers_drain_is_reported_and_the_pool_held(
        client, worker, task_queue, simulator, inventory):
    _, _, k3s = own_fleet(simulator, inventory)
    set_faults(simulator, k3s, blocking_pdbs=["shop/web-pdb"])
    handle = await start_upgrade(client, task_queue, k3s, drain_timeout_seconds=1)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    said = str(failure.value.cause)
    assert "PodEvictionFailure" in said and "PodDisruptionBudget shop/web-pdb" in said, said
    labels = {name: node["labels"] for name, node in nodes(simulator, k3s).items()}
    held = [name for name, node_labels in labels.items() if node_labels.get(f"plan.upgrade.cattle.io/{AGENTS}") == "disabled"]
    assert held, labels  # the pool's other agents wait, as the controller's own label says
    assert all(not node["unschedulable"] for node in nodes(simulator, k3s).values()), "the failed node is back in service"
    assert sim_report(simulator, k3s)["pdb_violations"] == []
    http.delete(f"{simulator.url}/sim/faults", params={"cluster": k3s}).raise_for_status()
    again = await start_upgrade(client, task_queue, k3s)  # the budget allows it now: the Plan is made anew
    assert (await again.result()).outcome == "succeeded"
    assert {n["version"] for n in nodes(simulator, k3s).values()} == {"v1.31.4+k3s1"}
    assert not any("disabled" in n["labels"].values() for n in nodes(simulator, k3s).values())
    assert sim_report(simulator, k3s)["pdb_violations"] == []


async def wait_until(check, *, timeout: float = 60, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_pause_holds_a_machine_deployment_where_it_stands_and_abort_leaves_it_paused(client, worker, task_queue,
                                                                                         simulator, inventory, request):
    mgmt, capi, _ = own_fleet(simulator, inventory, capi_nodes=4, time_scale=0.02)
    handle = await start_upgrade(client, task_queue, capi, node_images={"capi": "v1.31.4"},
                                 cloud_operation_timeout_seconds=300)
    await wait_until(lambda: any(n["version"] == "v1.31.4" for n in nodes(simulator, capi).values()), timeout=120,
                     what="a new Machine")
    await handle.execute_update("pause", {"requested_by": "sre", "reason": "a look first"})
    md_path = f"/apis/cluster.x-k8s.io/v1beta1/namespaces/fleet/machinedeployments/{capi}-md-0"
    assert kube_get(simulator, mgmt, md_path)["metadata"]["annotations"]["cluster.x-k8s.io/paused"] == "true"
    await asyncio.sleep(1)  # what is in flight finishes; nothing new starts
    held = sorted(nodes(simulator, capi))
    await asyncio.sleep(2)
    assert sorted(nodes(simulator, capi)) == held, "a paused MachineDeployment made or deleted a Machine"
    progress = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert "paused" in (progress.rollout or "")
    await handle.execute_update("resume", {"requested_by": "sre"})
    assert "cluster.x-k8s.io/paused" not in (kube_get(simulator, mgmt, md_path)["metadata"].get("annotations") or {})
    await wait_until(lambda: sorted(nodes(simulator, capi)) != held, what="the rollout going on after resume")
    await handle.execute_update("abort", {"requested_by": "sre", "reason": "change freeze"})
    result = await handle.result()
    assert result.outcome == "aborted"
    assert "left paused" in result.message and "cluster.x-k8s.io/paused" in result.message, result.message
    assert kube_get(simulator, mgmt, md_path)["metadata"]["annotations"]["cluster.x-k8s.io/paused"] == "true"
    versions = {n["version"] for n in nodes(simulator, capi).values()}
    assert versions == {"v1.30.5", "v1.31.4"}, versions  # stopped part way, as it stood
    assert sim_report(simulator, capi)["pdb_violations"] == []
    await replays(handle, request, "cluster_upgrade_capi_paused_resumed_aborted")  # kept with --record-histories


async def test_abort_of_a_k3s_pool_lets_the_node_in_flight_finish_then_removes_the_plan(client, worker, task_queue,
                                                                                     simulator, inventory):
    _, _, k3s = own_fleet(simulator, inventory, k3s_nodes=4, time_scale=0.02)
    handle = await start_upgrade(client, task_queue, k3s, cloud_operation_timeout_seconds=300)
    plans = "/apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans"
    await wait_until(lambda: any(p["metadata"]["name"] == AGENTS and p.get("status", {}).get("applying")
                                 for p in kube_get(simulator, k3s, plans)["items"]), timeout=120, what="an agent applying")
    await handle.execute_update("abort", {"requested_by": "sre", "reason": "change freeze"})
    result = await handle.result()
    assert result.outcome == "aborted", result.message
    assert [p["metadata"]["name"] for p in kube_get(simulator, k3s, plans)["items"]] == ["regatta-server"]
    agents = {name: n for name, n in nodes(simulator, k3s).items() if name.startswith("agents")}
    upgraded = [name for name, n in agents.items() if n["version"].startswith("v1.31.")]
    assert 1 <= len(upgraded) < 4, agents  # the node in flight finished; the others were never started
    assert not any(n["unschedulable"] for n in agents.values()), agents
    assert not any("disabled" in n["labels"].values() for n in agents.values())
    assert sim_report(simulator, k3s)["pdb_violations"] == []


async def test_a_worker_killed_mid_rollout_of_a_machine_deployment_picks_up_where_it_was(client, task_queue,
                                                                                        queue_settings, simulator, inventory):
    mgmt, capi, _ = own_fleet(simulator, inventory, capi_nodes=4, time_scale=0.02)
    with WorkerProcess(queue_settings) as doomed:
        handle = await start_upgrade(client, task_queue, capi, node_images={"capi": "v1.31.4"},
                                     activity_heartbeat_timeout_seconds=2)
        await wait_until(lambda: any(n["version"] == "v1.31.4" for n in nodes(simulator, capi).values()), timeout=120,
                         what="the MachineDeployment rolling")
        doomed.sigkill()
    md_path = f"/apis/cluster.x-k8s.io/v1beta1/namespaces/fleet/machinedeployments/{capi}-md-0"
    generation = kube_get(simulator, mgmt, md_path)["metadata"]["generation"]
    async with build_worker(client, queue_settings):
        result = await handle.result()
    assert result.outcome == "succeeded", result.message
    assert kube_get(simulator, mgmt, md_path)["metadata"]["generation"] == generation, "the new worker wrote it again"
    assert {n["version"] for n in nodes(simulator, capi).values()} == {"v1.31.4"}
    report = sim_report(simulator, capi)
    assert report["pdb_violations"] == [] and report["double_drains"] == []


async def test_one_wave_upgrades_eks_gke_aks_cluster_api_and_k3s_clusters_alike(client, worker, task_queue, simulator,
                                                                              inventory):
    tag = uuid.uuid4().hex[:6]
    clouds = [eks_cluster(f"{provider}-{tag}", provider=provider, pools=1, nodes=2, labels={"wave": tag},
                          workloads=SHOP) for provider in ("eks", "gke", "aks")]
    _, capi, k3s = own_fleet(simulator, inventory, labels={"wave": tag}, clouds=clouds)
    request = PatchWaveInput.model_validate({
        "name": f"w-{tag}", "target_version": "1.31", "selector": {"labels": {"wave": tag}},
        "stages": [{"name": "all", "selector": {"labels": {"wave": tag}}, "concurrency": 5}],
        "node_images": {"capi": "v1.31.4"}, "requested_by": "sre", "ticket": "CHG-EDGE", "upgrade_settings": FAST})
    handle = await client.start_workflow("PatchWave", request, id=wave_id(request.name), task_queue=task_queue,
                                         result_type=PatchWaveResult)
    result = await handle.result()
    assert result.outcome == "succeeded" and result.counts.get("succeeded") == 5, result
    for cluster in (capi, k3s, *(c["name"] for c in clouds)):
        report = sim_report(simulator, cluster)
        assert report["pdb_violations"] == [] and report["skew_violations"] == [], cluster
        assert report["clusters"][cluster]["control_plane_version"] == "1.31"
        assert all(n["version"].startswith("v1.31.") for n in report["clusters"][cluster]["nodes"].values()), cluster
