"""Site agents: a cluster in a private network (`site: dc1` in the inventory) is reached only by the
agent of its site, `regatta worker --site dc1`, which alone is given its credentials. The central
worker runs the workflow and the cloud calls; every call to the cluster's own API goes to the
site's task queue. While the agent is away the operation waits and says so, and carries on when
it returns."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client

from regatta.clouds.base import CloudError
from regatta.inventory import Inventory
from regatta.kube.connect import ClusterConnections
from regatta.models import ClusterSelector, ClusterUpgradeProgress, FleetSweepInput, FleetSweepResult
from regatta.models.policy import BundleSpec, DriftSweepInput, DriftSweepResult, PolicyRolloutResult
from regatta.rules.sites import site_task_queue
from regatta.settings import Settings
from tests.conftest import sim_report
from tests.integration.conftest import queues_used, start_upgrade, wait_until
from tests.integration.sites import add_site_cluster
from tests.replaying import replays
from tests.shared_http import http
from workers.main import build_worker


async def test_an_upgrade_of_a_site_cluster_reaches_its_api_only_through_the_sites_agent(
        client: Client, queue_settings: Settings, simulator, inventory: Inventory, task_queue: str, add_cluster):
    cluster = add_site_cluster(simulator, inventory, site="dc1")
    ref = inventory.get_cluster(cluster).ref
    assert ref.site == "dc1"

    # The simulated cloud hands the cluster's credentials to the agent of dc1 alone.
    credentials = f"{simulator.url}/sim/credentials/{cluster}"
    assert http.get(credentials, timeout=10).status_code == 403
    assert http.get(credentials, params={"site": "dc2"}, timeout=10).status_code == 403
    assert http.get(credentials, params={"site": "dc1"}, timeout=10).status_code == 200
    with pytest.raises(CloudError, match="held by the agent of site dc1"):
        ClusterConnections(sim_url=queue_settings.sim_url).api_client(ref)

    async with build_worker(client, queue_settings), build_worker(client, queue_settings, site="dc1"):
        handle = await start_upgrade(client, task_queue, cluster)
        result = await handle.result()
        # The fleet sweep reads the site's cluster through the agent too, and a central cluster beside it centrally.
        central = add_cluster("central", pools=1, nodes=1)
        sweep = await client.execute_workflow(
            "FleetSweep", FleetSweepInput(selector=ClusterSelector(clusters=[cluster, central]), move_displaced=False),
            id=f"sweep-{uuid.uuid4().hex[:8]}", task_queue=task_queue, result_type=FleetSweepResult)
    assert (result.outcome, result.control_plane_version) == ("succeeded", "1.31")
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == [] and report["skew_violations"] == [] and report["double_drains"] == []

    assert sweep.health == {"healthy": 2}, sweep
    swept = inventory.get_cluster(cluster)
    assert (swept.health, swept.control_plane_version, swept.site) == ("healthy", "1.31", "dc1")
    sweep_queues = await queues_used(client, sweep.operation_id)
    assert "kube.sweep_clusters" in sweep_queues[site_task_queue(task_queue, "dc1")], sweep_queues
    assert "kube.sweep_clusters" in sweep_queues[task_queue], sweep_queues

    used = await queues_used(client, handle.id)
    site_queue = site_task_queue(task_queue, "dc1")
    assert used[site_queue] >= {"kube.inspect_cluster", "kube.health_gate"}, used
    assert all(name.startswith("kube.") for name in used[site_queue]), used
    assert not any(name.startswith("kube.") for name in used[task_queue]), used
    # The cloud's half of each step runs centrally, its health gate at the site: a managed cluster's
    # steps are never the one-call kind, which would reach for its private API from the centre.
    assert "cloud.upgrade" in used[task_queue] and "cloud.read_for_upgrade" not in used[task_queue], used


async def test_the_upgrade_waits_visibly_while_the_sites_agent_is_down_and_carries_on_when_it_returns(
        client: Client, queue_settings: Settings, simulator, inventory: Inventory, task_queue: str, request):
    # The control plane takes a few seconds here, long enough to stop the agent in the middle of it.
    cluster = add_site_cluster(simulator, inventory, site="dc2", time_scale=0.02)
    async with build_worker(client, queue_settings):
        agent = build_worker(client, queue_settings, site="dc2")
        running = asyncio.create_task(agent.run())
        handle = await start_upgrade(client, task_queue, cluster)
        await wait_until(handle, lambda p: p.phase == "control_plane", "upgrading the control plane")
        await agent.shutdown()
        await running

        # The health gate after the control plane is the next call to the cluster's API: nobody takes it.
        waiting = await wait_until(handle, lambda p: p.waiting_for is not None, "waiting for the agent", timeout=60)
        assert "waiting for the agent of site dc2" in waiting.waiting_for
        assert waiting.phase in ("control_plane", "node_pools")

        async with build_worker(client, queue_settings, site="dc2"):
            result = await handle.result()
        final = await handle.query("progress", result_type=ClusterUpgradeProgress)
    assert (result.outcome, result.control_plane_version) == ("succeeded", "1.31")
    assert final.waiting_for is None
    # The wait for an agent is deterministic: the run replays, and is kept for later changes to replay.
    await replays(handle, request, "cluster_upgrade_waits_for_its_site_agent")
    report = sim_report(simulator, cluster)
    assert report["pdb_violations"] == [] and report["skew_violations"] == [] and report["double_drains"] == []


async def test_a_grant_on_a_site_cluster_is_made_handed_out_and_taken_back_by_the_sites_agent(
        client: Client, queue_settings: Settings, simulator, inventory: Inventory, task_queue: str, request):
    """Time-bound access to a cluster in a private network: every call to its API (the binding, the token, the
    revocation) goes to the site's agent, which alone holds its credentials."""
    import json

    from regatta.formats.sealed_box import new_recipient, open_sealed
    from regatta.models import AccessGrantInput, AccessGrantResult, SealedKubeconfig
    from regatta.temporal.operations import start

    cluster = add_site_cluster(simulator, inventory, site="dc3")
    async with build_worker(client, queue_settings), build_worker(client, queue_settings, site="dc3"):
        handle = await start(queue_settings, AccessGrantInput(
            cluster=cluster, role="view", duration_seconds=600, reason="INC-16", requested_by="ana"),
            cluster=inventory.get_cluster(cluster))
        deadline = asyncio.get_running_loop().time() + 30
        while (await handle.query("progress", result_type=dict))["phase"] != "granted":
            assert asyncio.get_running_loop().time() < deadline, await handle.query("progress", result_type=dict)
            await asyncio.sleep(0.1)
        private, public = new_recipient()
        sealed = SealedKubeconfig.model_validate(await handle.execute_update(
            "hand_out", {"requested_by": "ana", "recipient_key": public}, result_type=dict))
        config = json.loads(open_sealed(private, sealed.ephemeral_key, sealed.nonce, sealed.ciphertext))
        assert config["clusters"][0]["cluster"]["server"].startswith("https://")  # where the agent reaches it
        assert config["users"][0]["user"]["token"].startswith("simsa-")
        await handle.execute_update("revoke", {"requested_by": "ana", "reason": "done"}, result_type=dict)
        result = AccessGrantResult.model_validate(await handle.result())
    assert result.outcome == "revoked"
    await replays(handle, request, "access_grant_handed_out_and_revoked")  # tests/histories keeps one
    used = await queues_used(client, handle.id)
    assert used[site_task_queue(task_queue, "dc3")] >= {"kube.grant_access", "kube.hand_out_access", "kube.revoke_access"}
    assert not any(name.startswith("kube.") for name in used.get(task_queue, set())), used


async def test_a_bundle_and_its_drift_sweep_reach_a_site_cluster_only_through_its_agent(
        client: Client, queue_settings: Settings, simulator, inventory: Inventory, task_queue: str, add_cluster):
    """A bundle given to a site's cluster, the violations its policy gate reads there, and the drift sweep that compares
    it afterwards all go to the site's agent (they named their cluster by name, and went to the central queue, where
    its credentials are refused); a central cluster beside it is reached centrally."""
    tag = uuid.uuid4().hex[:6]
    at_site = add_site_cluster(simulator, inventory, site="dc3", labels={"policy": tag}, policy_engines=["kyverno"])
    add_cluster("sitepol", labels={"policy": tag}, pools=1, nodes=1, policy_engines=["kyverno"])
    spec = BundleSpec.model_validate({
        "name": f"site-{tag}", "targets": {"selector": {"labels": {"policy": tag}}}, "requested_by": "sre-alice",
        "timeout_seconds": 30, "poll_interval_seconds": 0.05, "failure_budget": 0,
        "stages": [{"name": "all", "concurrency": 2, "max_violations": 5}],  # audit, then enforce on fresh counts
        "manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site-owner", "namespace": "kube-system"},
             "data": {"cluster": "{{ cluster.name }}"}},
            {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": f"team-{tag}"},
             "spec": {"rules": [{"name": "team", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                                 "validate": {"message": "a team label",
                                              "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}]})
    async with build_worker(client, queue_settings), build_worker(client, queue_settings, site="dc3"):
        rollout = await client.execute_workflow("PolicyRollout", spec, id=f"policy-site-{tag}", task_queue=task_queue,
                                                result_type=PolicyRolloutResult)
        # someone inside dc3 changes the object on the site's cluster: the sweep at the site finds it
        token = http.get(f"{simulator.url}/sim/credentials/{at_site}", params={"site": "dc3"}, timeout=10).json()["token"]
        http.patch(f"{simulator.url}/k8s/{at_site}/api/v1/namespaces/kube-system/configmaps/site-owner",
                   content=b'{"data": {"cluster": "edited"}}', timeout=10,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
                   ).raise_for_status()
        swept = await client.execute_workflow("DriftSweep", DriftSweepInput(bundle=spec.name), id=f"drift-site-{tag}",
                                              task_queue=task_queue, result_type=DriftSweepResult)
    assert rollout.outcome == "succeeded" and rollout.counts == {"applied": 4}, rollout  # two passes, two clusters
    assert swept.unreachable == {} and swept.drifts == 1, swept
    site_queue = site_task_queue(task_queue, "dc3")
    used = await queues_used(client, f"policy-site-{tag}")
    assert {"kube.give_bundle", "kube.count_violations"} <= used[site_queue], used
    assert {"kube.give_bundle", "kube.count_violations"} <= used[task_queue], used  # the central cluster's
    assert all(name.startswith("kube.") for name in used[site_queue]), used
    drift_queues = await queues_used(client, f"drift-site-{tag}")
    assert "kube.sweep_drift" in drift_queues[site_queue] and "kube.sweep_drift" in drift_queues[task_queue], drift_queues
    assert [drift.cluster for drift, _ in inventory.drifts(bundle=spec.name)] == [at_site]
