"""The simulator's rules, which the rest of the tests trust: evictions honour budgets, the
deployment controller replaces what leaves, and every broken invariant is reported."""

from __future__ import annotations

import asyncio

import pytest

from regatta.formats.fleet_file import FleetFileError, FleetSpec, load_fleet
from regatta.sim.world import SimError, World


def world_with(**overrides) -> tuple[World, str]:
    spec = {
        "name": "c1", "provider": "eks", "region": "us-east-1", "version": "1.30",
        "node_pools": [{"name": "p", "nodes": 3}],
        "workloads": [{"name": "web", "namespace": "shop", "replicas": 3, "pdb": {"min_available": 2}}],
        **overrides,
    }
    world = World(time_scale=0)
    world.load(FleetSpec.model_validate({"clusters": [spec]}))
    return world, "c1"


def web_pods(world: World, name: str) -> list:
    return [p for p in world.clusters[name].pods.values() if p.owner == "web"]


def test_pods_spread_across_ready_nodes():
    world, name = world_with()
    assert sorted(p.node for p in web_pods(world, name)) == ["p-001", "p-002", "p-003"]


def test_an_eviction_that_would_break_the_budget_is_refused_with_429():
    world, name = world_with(time_scale=1.0)  # replacements take 5s to become Ready
    cluster = world.clusters[name]
    first, second = web_pods(world, name)[:2]
    world.evict(cluster, "shop", first.name)
    with pytest.raises(SimError) as refused:
        world.evict(cluster, "shop", second.name)
    assert refused.value.status == 429
    assert "needs 2 healthy pods and has 2" in refused.value.causes[0]["message"]
    assert world.report()["pdb_violations"] == []


def test_the_controller_replaces_an_evicted_pod_on_a_schedulable_node():
    world, name = world_with()
    cluster = world.clusters[name]
    world.set_unschedulable(cluster, "p-001", True)
    victim = next(p for p in web_pods(world, name) if p.node == "p-001")
    world.evict(cluster, "shop", victim.name)
    pods = web_pods(world, name)
    assert len(pods) == 3 and all(p.node in ("p-002", "p-003") for p in pods)


def test_deleting_pods_around_the_budget_is_reported_as_a_violation():
    world, name = world_with(time_scale=1.0)
    cluster = world.clusters[name]
    for pod in web_pods(world, name)[:2]:
        world.delete_pod(cluster, "shop", pod.name)
    violations = world.report()["pdb_violations"]
    assert len(violations) == 1 and violations[0]["pdb"] == "shop/web-pdb"


def test_removing_a_node_with_pods_on_it_breaks_the_budget_and_is_reported():
    world, name = world_with(time_scale=1.0, workloads=[{"name": "web", "namespace": "shop", "replicas": 2, "pdb": {"min_available": 2}}])
    world.remove_node(world.clusters[name], "p-001", why="test")
    assert world.report()["pdb_violations"][0]["via"].startswith("test")


def test_draining_a_node_again_after_it_returned_to_service_is_a_double_drain():
    world, name = world_with()
    cluster = world.clusters[name]
    for _ in range(2):
        world.set_unschedulable(cluster, "p-001", True)
        for pod in list(cluster.pods_on("p-001")):
            world.evict(cluster, pod.namespace, pod.name)
        world.set_unschedulable(cluster, "p-001", False)
        world.reconcile(cluster)
        # Put a pod back so the second episode has something to evict.
        next(iter(cluster.pods.values())).node = "p-001"
    assert [d["node"] for d in world.report()["double_drains"]] == ["p-001"]


def test_control_plane_upgrades_one_minor_at_a_time_and_kubelets_never_lead():
    async def scenario():
        world, name = world_with()
        cluster = world.clusters[name]
        with pytest.raises(SimError, match="Unsupported Kubernetes minor version update from 1.30 to 1.32"):
            world.start_control_plane_upgrade(cluster, "1.32", None)
        with pytest.raises(SimError, match="newer than the cluster version"):
            world.start_node_pool_upgrade(cluster, "p", "1.31", None, False)
        update = world.start_control_plane_upgrade(cluster, "1.31", "token-1")
        assert world.start_control_plane_upgrade(cluster, "1.31", "token-1") is update  # idempotent by token
        while update.status == "InProgress":
            await asyncio.sleep(0)
        assert cluster.version == "1.31" and world.report()["skew_violations"] == []
        pool_update = world.start_node_pool_upgrade(cluster, "p", "1.31", None, False)
        while pool_update.status == "InProgress":
            await asyncio.sleep(0.001)
        assert pool_update.status == "Successful"
        assert all(n.version.startswith("v1.31.") for n in cluster.nodes.values())
        report = world.report()
        assert report["pdb_violations"] == [] and report["double_drains"] == []

    asyncio.run(scenario())


def test_a_surge_blocked_by_a_budget_fails_like_eks_with_the_pods_named():
    async def scenario():
        world, name = world_with(version="1.31", node_pools=[{"name": "p", "nodes": 3, "version": "1.30"}])
        cluster = world.clusters[name]
        cluster.pdbs[("shop", "web-pdb")].blocked = True
        update = world.start_node_pool_upgrade(cluster, "p", "1.31", None, False)
        while update.status == "InProgress":
            await asyncio.sleep(0.001)
        assert update.status == "Failed"
        assert update.errors[0]["errorCode"] == "PodEvictionFailure"
        assert update.errors[0]["resourceIds"][0].startswith("shop/web-")
        assert world.report()["pdb_violations"] == []

    asyncio.run(scenario())


FLOWSCHEMA = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
              "metadata": {"name": "probes"}, "spec": {"priorityLevelConfiguration": {"name": "workload-low"}}}


def one_cluster(version: str, manifests: list[dict]) -> FleetSpec:
    return FleetSpec.model_validate({"clusters": [{"name": "m", "provider": "kubeconfig", "region": "dc1", "version": version,
                                                   "node_pools": [{"name": "p", "nodes": 1}], "manifests": manifests}]})


def test_a_fleet_files_manifests_are_applied_as_kubectl_applies_them_and_refused_where_not_served():
    world = World(time_scale=0)
    world.load(one_cluster("1.31", [FLOWSCHEMA]))
    cluster = world.clusters["m"]
    [(key, stored)] = [(k, v) for k, v in cluster.objects.items() if k[1] == "flowschemas"]
    assert key[3] == "probes" and key[2] == ""  # a FlowSchema is cluster-scoped
    assert [(m["manager"], m["apiVersion"]) for m in stored["metadata"]["managedFields"]] == [
        ("kubectl-client-side-apply", "flowcontrol.apiserver.k8s.io/v1beta3")]
    assert ("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "", "1.32") in cluster.requested_deprecated
    later = World(time_scale=0)
    with pytest.raises(SimError, match="that a 1.32 API server serves"):
        later.load(one_cluster("1.32", [FLOWSCHEMA]))
    assert "m" not in later.clusters, "a cluster whose manifests were refused was loaded half"
    for hostile in ({**FLOWSCHEMA, "metadata": "x"}, {**FLOWSCHEMA, "metadata": {"name": {"a": 1}}},
                    {**FLOWSCHEMA, "metadata": {"name": "Not_A_Name"}}):
        with pytest.raises(SimError, match="written as Kubernetes names"):
            World(time_scale=0).load(one_cluster("1.31", [hostile]))
    with pytest.raises(SimError, match="given twice"):
        World(time_scale=0).load(one_cluster("1.31", [FLOWSCHEMA, FLOWSCHEMA]))


def test_the_default_fleet_is_a_fleet_of_today_with_one_cluster_behind_on_a_removed_api():
    fleet = load_fleet()
    minors = sorted(int(c.version.split(".")[1]) for c in fleet.clusters)
    assert minors[-1] == 35 and sum(m >= 34 for m in minors) > len(minors) / 2
    behind = [c for c in fleet.clusters if c.manifests]
    assert [(c.name, c.version) for c in behind] == [("onprem-prod-fra", "1.31")]


def test_the_default_fleet_has_every_provider_in_three_environments_and_regions_and_a_dr_pair():
    fleet = load_fleet()
    assert [(p.primary, p.standby) for p in fleet.dr_pairs] == [("eks-prod-use1", "eks-dr-usw2")]
    assert {t.service for t in fleet.traffic} == {"checkout", "payments", "catalog"}
    assert len(fleet.clusters) >= 12
    assert len({c.environment for c in fleet.clusters}) >= 3
    assert len({c.region for c in fleet.clusters}) >= 3
    assert all(any(w.pdb for w in c.workloads) for c in fleet.clusters)
    assert {c.provider for c in fleet.clusters} == {"eks", "gke", "aks", "kubeconfig", "capi", "suc"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("clusters: [{name: a}]", "region"),
        ("clusters:\n- {name: a, region: r, version: '1.30', node_pools: []}\n- {name: a, region: r, version: '1.30', node_pools: []}", "repeated: a"),
        ("clusters: [{name: a, region: r, version: banana, node_pools: []}]", "cannot read a Kubernetes version"),
        ("clusters: [{name: a, region: r, version: '1.30', node_pools: []}]\ndr_pairs: [{primary: a, standby: b}]",
         "clusters the file does not describe: b"),
        ("clusters: [", "not valid YAML"),
        ("clusters:\n- name: a\n  region: r\n  version: 1.30\n  node_pools: []", r"fleet.yaml:4: clusters.0.version: .*1.30"),
        ("clusters:\n- {name: a, node_pools: []}", "fleet.yaml:2: clusters.0.region: Field required"),
    ],
)
def test_bad_fleet_files_say_what_to_fix(tmp_path, content, says):
    path = tmp_path / "fleet.yaml"
    path.write_text(content)
    with pytest.raises(FleetFileError, match=says):
        load_fleet(path)


def test_a_missing_fleet_file_is_named(tmp_path):
    with pytest.raises(FleetFileError, match="does not exist"):
        load_fleet(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- disaster recovery


def test_a_region_outage_times_out_every_api_of_every_cluster_in_it_and_only_there():
    world, name = world_with()
    world.unreachable_regions.add("us-east-1")
    with pytest.raises(SimError) as cut_off:
        world.check_faults(name, api="kube", operation="list_nodes")
    assert cut_off.value.status == 504 and "region us-east-1 is unreachable" in cut_off.value.message
    world.unreachable_regions.clear()
    world.check_faults(name, api="cloud", operation="describe")  # reachable again


def test_a_restore_brings_the_backup_in_skips_what_exists_and_labels_what_it_made():
    async def scenario():
        source, _ = world_with(last_backup_age_seconds=300)
        backup = source.find_backup("scheduled-c1")
        assert backup["deployments"]["shop/web"]["replicas"] == 3
        target = World(time_scale=0)
        target.backups = source.backups
        target.load(FleetSpec.model_validate({"clusters": [{
            "name": "c2", "provider": "eks", "region": "us-west-2", "version": "1.30", "node_pools": [{"name": "p", "nodes": 2}],
            "workloads": [{"name": "web", "namespace": "shop", "replicas": 0, "annotations": {"regatta.dev/dr-replicas": "3"}}]}]}))
        cluster = target.clusters["c2"]
        plain = {"metadata": {"name": "r1"}, "spec": {"backupName": "scheduled-c1"}}
        drill = {"metadata": {"name": "r2"}, "spec": {"backupName": "scheduled-c1", "namespaceMapping": {"shop": "dr-drill-shop"}}}
        for restore in (plain, drill):
            target.start_restore(cluster, restore)
        await asyncio.sleep(0.05)
        return cluster, plain, drill

    cluster, plain, drill = asyncio.run(scenario())
    assert plain["status"]["phase"] == drill["status"]["phase"] == "Completed"
    assert cluster.deployments[("shop", "web")].replicas == 0  # existed: skipped, as Velero does by default
    restored = cluster.deployments[("dr-drill-shop", "web")]
    assert restored.replicas == 3 and restored.metadata_labels["velero.io/restore-name"] == "r2"
    assert cluster.namespace_labels["dr-drill-shop"]["velero.io/backup-name"] == "scheduled-c1"
    assert ("dr-drill-shop", "web-pdb") in cluster.pdbs


def test_a_restore_of_a_backup_that_does_not_exist_fails_validation():
    world, name = world_with()
    restore = {"metadata": {"name": "r"}, "spec": {"backupName": "nope"}}
    world.start_restore(world.clusters[name], restore)
    assert restore["status"]["phase"] == "FailedValidation" and "'nope' not found" in restore["status"]["validationErrors"][0]


def test_a_traffic_change_is_applied_once_per_change_id_and_must_send_traffic_somewhere():
    world = World(time_scale=0)
    world.load(FleetSpec.model_validate({"clusters": [], "traffic": [{"service": "web", "weights": {"a": 100, "b": 0}}]}))
    world.set_traffic("web", {"a": 0, "b": 100}, "change-1")
    world.set_traffic("web", {"a": 0, "b": 100}, "change-1")
    assert world.traffic["web"]["weights"] == {"a": 0, "b": 100} and len(world.traffic["web"]["changes"]) == 1
    with pytest.raises(SimError) as nowhere:
        world.set_traffic("web", {"a": 0, "b": 0}, "change-2")
    assert nowhere.value.status == 400 and "send traffic somewhere" in nowhere.value.message
    with pytest.raises(SimError) as unknown:
        world.set_traffic("mail", {"a": 100}, "change-3")
    assert unknown.value.status == 404


def test_deleting_a_namespace_takes_its_workloads_and_protected_ones_are_refused():
    world, name = world_with()
    cluster = world.clusters[name]
    world.delete_namespace(cluster, "shop")
    assert "shop" not in cluster.namespaces and not cluster.deployments and not cluster.pods and not cluster.pdbs
    assert world.pdb_violations == []  # a namespace deletion is no eviction
    with pytest.raises(SimError) as protected:
        world.delete_namespace(cluster, "kube-system")
    assert protected.value.status == 403


def test_a_kubelet_newer_than_its_control_plane_or_too_far_behind_is_a_skew_violation():
    world, name = world_with(version="1.30")
    cluster = world.clusters[name]
    world._add_node(cluster, cluster.pools["p"], version="1.31")  # what a cloud that ignored skew would do
    world._add_node(cluster, cluster.pools["p"], version="1.26")
    found = [v["violation"] for v in world.report()["skew_violations"]]
    assert len(found) == 2
    assert any("newer than control plane 1.30" in v for v in found)
    assert any("more than 3 minors behind" in v for v in found)


@pytest.mark.parametrize(("min_available", "max_unavailable", "expected", "floor"), [
    (2, None, 3, 2), ("50%", None, 3, 2), ("50%", None, 4, 2), (None, 1, 4, 3), (None, "25%", 4, 3),
    (None, "30%", 4, 2),  # 30% of 4 rounds up to 2 pods that may go: the controller rounds up
    (None, None, 5, 0), ("100%", None, 3, 3), (None, 5, 3, 0),
])
def test_the_simulators_budget_floor_is_the_disruption_controllers(min_available, max_unavailable, expected, floor):
    from regatta.sim.arithmetic import desired_healthy

    assert desired_healthy(min_available=min_available, max_unavailable=max_unavailable, expected=expected) == floor


def test_the_simulator_reads_versions_as_clusters_and_clouds_report_them():
    from regatta.sim.arithmetic import minor, minor_text

    assert minor("v1.30.4") == (1, 30) and minor("1.31.5-gke.1200") == (1, 31) and minor_text("1.30.4-eks-a1b2c3") == "1.30"
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        minor("latest")


def test_the_clouds_refuse_what_the_account_lacks_in_their_own_words():
    world, name = world_with()
    cluster = world.clusters[name]
    good = {"subnets": ["subnet-0a1b2c3d4e5f60001"], "node_role": "arn:aws:iam::111122223333:role/eks-node"}
    with pytest.raises(SimError, match="The subnet ID 'subnet-bogus' does not exist") as subnet:
        world.create_node_pool(cluster, name="n1", version=None, size="m5.large", desired=1, labels={}, token=None,
                               **{**good, "subnets": ["subnet-bogus"]})
    assert subnet.value.reason == "InvalidParameterException"
    with pytest.raises(SimError, match="role arn:aws:iam::111122223333:role/nobody does not exist"):
        world.create_node_pool(cluster, name="n2", version=None, size="m5.large", desired=1, labels={}, token=None,
                               **{**good, "node_role": "arn:aws:iam::111122223333:role/nobody"})
    with pytest.raises(SimError, match="Instance type e2-standard-4 is not supported"):
        world.create_node_pool(cluster, name="n3", version=None, size="e2-standard-4", desired=1, labels={}, token=None,
                               **good)
    with pytest.raises(SimError, match="Role with arn: arn:aws:iam::111122223333:role/other, could not be assumed"):
        world.check_account("eks", cluster_role="arn:aws:iam::111122223333:role/other")
    with pytest.raises(SimError, match='Invalid machine type "m5.large"'):
        world.check_account("gke", size="m5.large")
    with pytest.raises(SimError, match='Network "corp" does not exist'):
        world.check_account("gke", network="corp")
    with pytest.raises(SimError, match="VM size of the agent pool is not allowed") as vm:
        world.check_account("aks", size="m5.large")
    assert vm.value.reason == "InvalidParameter"
    assert "n1" not in cluster.pools and "n2" not in cluster.pools  # nothing half made


def test_a_fleet_file_that_gives_a_cloud_another_clouds_machine_type_says_which():
    with pytest.raises(ValueError, match="gke has no machine type 'm5.large'"):
        FleetSpec.model_validate({"clusters": [{"name": "g", "provider": "gke", "region": "europe-west4", "version": "1.30",
                                                "node_pools": [{"name": "p", "nodes": 1, "node_size": "m5.large"}]}]})
    spec = FleetSpec.model_validate({"clusters": [{"name": "g", "provider": "gke", "region": "europe-west4",
                                                   "version": "1.30", "node_pools": [{"name": "p", "nodes": 1}]}]})
    assert spec.clusters[0].node_pools[0].node_size == "e2-standard-4"  # each cloud's own default


def test_a_watch_from_before_what_the_cluster_remembers_is_told_it_is_too_old():
    import httpx

    from regatta.sim import kube_objects
    from regatta.sim.server import create_app

    world, name = world_with()
    cluster = world.clusters[name]
    for index in range(kube_objects.WATCH_WINDOW + 10):  # writes enough to forget the first ones
        cluster.resource_version += 1
        kube_objects._log(cluster, "ADDED", ("v1", "configmaps", "shop", f"c{index}"), {"metadata": {}})
    assert len(cluster.object_log) == kube_objects.WATCH_WINDOW

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(world))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as sim:
            return await sim.get(f"/k8s/{name}/api/v1/namespaces/shop/configmaps", params={"watch": "true", "resourceVersion": "1"},
                                 headers={"Authorization": f"Bearer {world.api_token}"})

    answer = asyncio.run(ask())
    assert answer.status_code == 410 and answer.json()["reason"] == "Expired"


def test_go_durations_read_as_the_controllers_write_them():
    from regatta.sim.arithmetic import duration_seconds

    assert duration_seconds("10m") == 600 and duration_seconds("1h30m") == 5400 and duration_seconds("900s") == 900
    assert duration_seconds("500ms") == 0.5  # not 500 minutes
