"""What a twin keeps of a cluster (regatta/rules/twins.py), decided from the objects an API server answers, and how the
clouds' step times are calibrated from recorded upgrades; and that the simulator loads what a twin writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from regatta.formats.fleet_file import DEFAULT_STEP_SECONDS, FleetSpec
from regatta.models.twin import UpgradeSample
from regatta.rules import twins
from regatta.sim import world as sim_world


def pod(name, *, labels, owner=None, started="2026-12-01T10:00:00Z", ready_at="2026-12-01T10:00:12Z", ready=True,
        phase="Running", cpu="250m", memory="256Mi", namespace="shop"):
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "ownerReferences": [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []},
            "spec": {"nodeName": "node-1",
                     "containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": phase, "startTime": started,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": ready_at}]}}


def controller(kind, name, *, replicas, labels, namespace="shop"):
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                         {"name": "sidecar", "resources": {"requests": {"cpu": "100m"}}}]}}}}


def test_each_controller_is_one_workload_with_its_template_requests_and_its_pods_median_readiness():
    pods = [pod("web-a", labels={"app": "web"}, owner=("ReplicaSet", "web-7d9"), ready_at="2026-12-01T10:00:10Z"),
            pod("web-b", labels={"app": "web"}, owner=("ReplicaSet", "web-7d9"), ready_at="2026-12-01T10:00:30Z"),
            pod("web-c", labels={"app": "web"}, owner=("ReplicaSet", "web-7d9"), ready_at="2026-12-01T10:00:20Z"),
            pod("db-0", labels={"app": "db"}, owner=("StatefulSet", "db"), ready_at="2026-12-01T10:01:00Z")]
    found, left_out = twins.workloads(deployments=[controller("Deployment", "web", replicas=3, labels={"app": "web"})],
                                      stateful_sets=[controller("StatefulSet", "db", replicas=1, labels={"app": "db"})],
                                      pods=pods, cluster="c")
    by_name = {w.name: w for w in found}
    assert by_name["web"].kind == "Deployment" and by_name["web"].replicas == 3 and by_name["web"].ready_seconds == 20
    assert (by_name["web"].cpu_m, by_name["web"].memory_mi) == (600, 1024)  # the template's containers, summed
    assert by_name["db"].kind == "StatefulSet" and by_name["db"].ready_seconds == 60
    assert left_out == [] and len(found) == 2


def test_pods_a_drain_leaves_alone_are_left_out_and_named_once_and_bare_pods_are_kept_one_by_one():
    pods = [pod("agent-1", labels={"app": "agent"}, owner=("DaemonSet", "agent")),
            pod("agent-2", labels={"app": "agent"}, owner=("DaemonSet", "agent")),
            pod("etcd-node-1", labels={}, owner=("Node", "node-1")),
            pod("report-x", labels={"job": "r"}, owner=("Job", "report")),
            pod("done", labels={}, phase="Succeeded"),
            pod("debug", labels={"run": "debug"}, cpu="100m", memory="64Mi"),
            pod("old-1", labels={"app": "old"}, owner=("ReplicaSet", "old-5c")),
            pod("old-2", labels={"app": "old"}, owner=("ReplicaSet", "old-5c")),
            pod("broker-0", labels={"app": "broker"}, owner=("RabbitmqCluster", "broker"))]
    found, left_out = twins.workloads(deployments=[], stateful_sets=[], pods=pods, cluster="c")
    assert {(w.kind, w.name, w.replicas) for w in found} == {("Pod", "debug", 1), ("Deployment", "old-5c", 2),
                                                             ("Deployment", "broker", 1)}
    assert sorted(m.what for m in left_out) == ["pods of each DaemonSet", "pods of each Job", "pods of each Node",
                                                "pods of each RabbitmqCluster"]
    assert next(w for w in found if w.name == "debug").cpu_m == 100


def test_readiness_is_read_only_from_pods_that_became_ready_after_they_started():
    assert twins.ready_seconds([pod("a", labels={}, ready_at="2026-12-01T10:00:00Z")]) is None  # Ready at its start
    assert twins.ready_seconds([pod("a", labels={}, ready=False)]) is None
    assert twins.ready_seconds([pod("a", labels={}, started=None)]) is None
    assert twins.ready_seconds([pod("a", labels={}, ready_at="not a time")]) is None
    assert twins.ready_seconds([pod("a", labels={}), pod("b", labels={}, ready_at="2026-12-01T09:00:00Z")]) == 12


def test_a_budget_names_the_workloads_it_covers_and_one_without_a_selector_covers_none():
    found, _ = twins.workloads(deployments=[controller("Deployment", "web", replicas=3, labels={"app": "web", "tier": "fe"}),
                                            controller("Deployment", "api", replicas=2, labels={"app": "api", "tier": "fe"})],
                               stateful_sets=[], pods=[], cluster="c")
    pdbs = [{"metadata": {"name": "fe", "namespace": "shop"},
             "spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
                      "maxUnavailable": 1}},
            {"metadata": {"name": "web", "namespace": "other"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                                         "minAvailable": "50%"}},
            {"metadata": {"name": "none", "namespace": "shop"}, "spec": {"minAvailable": 1}}]
    budgets = {b.name: b for b in twins.budgets(pdbs, found)}
    assert budgets["fe"].covers == ["Deployment/api", "Deployment/web"] and budgets["fe"].max_unavailable == 1
    assert budgets["web"].covers == []  # another namespace
    assert budgets["none"].selector is None and budgets["none"].covers == []


def test_calibration_scales_the_defaults_by_the_recorded_upgrades_and_fits_the_nodes_apart_when_it_can():
    cp, node = DEFAULT_STEP_SECONDS["control_plane_upgrade_seconds"], (
        DEFAULT_STEP_SECONDS["node_boot_seconds"] + DEFAULT_STEP_SECONDS["node_terminate_seconds"])
    alike = [UpgradeSample(provider="eks", nodes=6, seconds=2 * (cp + 6 * node)),
             UpgradeSample(provider="eks", nodes=6, seconds=2 * (cp + 6 * node))]
    [eks, gke] = twins.calibrate(alike, defaults=DEFAULT_STEP_SECONDS, providers={"gke"})
    assert eks.factor == 2 and eks.control_plane_upgrade_seconds == 2 * cp and eks.node_boot_seconds == 180
    assert gke.samples == 0 and gke.factor == 1 and "defaults" in gke.how
    # 600 s for the control plane and 300 s a node, over three sizes: each part fitted apart
    spread = [UpgradeSample(provider="gke", nodes=n, seconds=600 + 300 * n) for n in (3, 6, 9)]
    [fitted] = twins.calibrate(spread, defaults=DEFAULT_STEP_SECONDS, providers=())
    assert fitted.control_plane_upgrade_seconds == 600 and fitted.node_boot_seconds == pytest.approx(225)
    assert "fitted to 3 recorded upgrades" in fitted.how
    [absurd] = twins.calibrate([UpgradeSample(provider="aks", nodes=3, seconds=1)], defaults=DEFAULT_STEP_SECONDS,
                               providers=())
    assert absurd.factor == twins.CALIBRATION_CLAMP[0]


def test_only_upgrades_recorded_from_start_to_success_on_known_clusters_are_samples():
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    trail = [("a/1", "c1", "started", t0), ("a/1", "c1", "succeeded", t0 + timedelta(minutes=20)),
             ("b/1", "c1", "started", t0), ("b/1", "c1", "failed", t0 + timedelta(minutes=5)),
             ("c/1", "gone", "started", t0), ("c/1", "gone", "succeeded", t0 + timedelta(minutes=5)),
             ("d/1", "c2", "succeeded", t0 + timedelta(minutes=5)),  # its start is not in the trail
             ("e/1", "c2", "started", None)]
    samples = twins.upgrade_samples(trail, {"c1": ("eks", 9), "c2": ("gke", 3)})
    assert samples == [UpgradeSample(provider="eks", nodes=9, seconds=1200)]


def test_the_simulator_takes_its_step_times_from_the_fleet_files_defaults_and_a_twins_timings():
    assert sim_world.CONTROL_PLANE_UPGRADE_SECONDS == DEFAULT_STEP_SECONDS["control_plane_upgrade_seconds"]
    fleet = FleetSpec.model_validate(yaml.safe_load("""
timings: {eks: {node_boot_seconds: 200}}
clusters:
- name: c
  region: us-east-1
  version: '1.33'
  node_pools: [{name: a, nodes: 2, node_size: m5.large, allocatable: {cpu: 3500m, pods: 40}}]
  workloads:
  - {name: db, kind: StatefulSet, replicas: 2, requests: {cpu: 500m, memory: 1Gi}, ready_seconds: 30}
  - {name: debug, kind: Pod, replicas: 1, labels: {run: debug}, requests: {cpu: 100m}}
  pdbs: [{name: data, selector: {matchLabels: {app: db}}, max_unavailable: 1}]
"""))
    world = sim_world.World(time_scale=0)
    world.load(fleet)
    cluster = world.clusters["c"]
    assert world.step_seconds(cluster, "node_boot_seconds", 90) == 200
    assert world.step_seconds(cluster, "node_terminate_seconds", 30) == 30
    assert sorted(name for _, name in cluster.pods) == ["db-0", "db-1", "debug-0"]
    assert {(n.cpu_m, n.memory_mi, n.capacity) for n in cluster.nodes.values()} == {(3500, 7100, 40)}
    assert cluster.pods[("default", "db-0")].cpu_m == 500 and cluster.pods[("default", "debug-0")].labels == {"run": "debug"}
    assert cluster.pdbs[("default", "data")].selector == {"app": "db"}
    world.evict(cluster, "default", "db-1")  # the budget lets one go; its StatefulSet makes it again under its name
    assert sorted(name for _, name in cluster.pods) == ["db-0", "db-1", "debug-0"]
    assert cluster.pods[("default", "db-1")].owner_kind == "StatefulSet"
    with pytest.raises(ValueError, match="cpu"):
        FleetSpec.model_validate({"clusters": [{"name": "x", "region": "r", "version": "1.33", "node_pools": [],
                                                "workloads": [{"name": "w", "replicas": 1, "requests": {"cpu": "lots"}}]}]})


def test_a_deployment_takes_only_its_own_pods_and_a_restarted_pod_gives_no_readiness_reading():
    pods = [pod("web-1", labels={"app": "web"}, owner=("ReplicaSet", "web-7d9")),
            pod("canary-1", labels={"app": "web", "track": "canary"}, owner=("ReplicaSet", "web-canary-5f4"), ready=False)]
    found, _ = twins.workloads(deployments=[controller("Deployment", "web", replicas=1, labels={"app": "web"}),
                                            controller("Deployment", "web-canary", replicas=1,
                                                       labels={"app": "web", "track": "canary"})],
                               stateful_sets=[], pods=pods, cluster="c")
    by = {w.name: w for w in found}
    assert by["web"].unready == 0 and by["web-canary"].unready == 1  # web's selector takes the canary's pod too
    restarted = pod("a", labels={}, ready_at="2026-12-01T10:05:00Z")
    restarted["status"]["containerStatuses"] = [{"name": "app", "restartCount": 2}]
    flapped = pod("b", labels={}, ready_at="2026-12-05T10:00:00Z")  # Ready again days after it started
    assert twins.ready_seconds([restarted, flapped]) is None


@pytest.mark.parametrize("name", ["vault:kv/mgmt", "arn:aws:secretsmanager:us-east-1:1:secret:k", "a/b", "-x", ""])
def test_a_fleet_files_cluster_name_is_never_a_secrets_store_reference_or_a_path(name):
    """A twin whose Cluster API cluster named such a cluster as its management context would have the rehearsal's worker
    read a real kubeconfig from the store: the name is refused where the file is read."""
    with pytest.raises(ValueError, match="name"):
        FleetSpec.model_validate({"clusters": [{"name": name, "region": "r", "version": "1.33", "node_pools": []}]})
    assert FleetSpec.model_validate({"clusters": [{"name": "Prod_Cluster.1", "region": "r", "version": "1.33",
                                                   "node_pools": []}]})  # what EKS takes stays a name


def test_a_rehearsals_connections_refuse_a_secrets_store_reference_whatever_names_it():
    from regatta.clouds.base import CloudError
    from regatta.kube.connect import ClusterConnections
    from regatta.models import ClusterRef

    connections = ClusterConnections(sim_url="http://127.0.0.1:9", simulated_only=True)
    try:
        for provider in ("capi", "kubeconfig", "eks"):
            with pytest.raises(CloudError, match="reaches the simulator only") as refused:
                connections.api_client(ClusterRef(name="mgmt", provider=provider, region="r", credential_ref="vault:kv/mgmt"))
            assert not refused.value.retryable
    finally:
        connections.close()


def test_a_twin_keeps_the_custom_resources_a_cluster_serves_not_their_schemas():
    def crd(group: str, kind: str, versions: list[dict], established: str = "True") -> dict:
        return {"spec": {"group": group, "scope": "Cluster", "names": {"kind": kind, "plural": kind.lower() + "s"},
                         "versions": versions},
                "status": {"conditions": [{"type": "Established", "status": established}]}}

    schema = {"openAPIV3Schema": {"type": "object"}}
    kept = twins.custom_resources([
        crd("kyverno.io", "ClusterPolicy", [{"name": "v1", "served": True, "storage": True, "schema": schema},
                                            {"name": "v2beta1", "served": True, "storage": False}]),
        crd("cert-manager.io", "Issuer", [{"name": "v1alpha1", "served": False}, {"name": "v1", "served": True}]),
        crd("example.com", "Pending", [{"name": "v1", "served": True, "storage": True}], established="False"),
        crd("example.com", "Unserved", [{"name": "v1", "served": False, "storage": True}])])
    assert kept == [
        {"group": "cert-manager.io", "version": "v1", "kind": "Issuer", "plural": "issuers", "scope": "Cluster"},
        {"group": "kyverno.io", "version": "v1", "kind": "ClusterPolicy", "plural": "clusterpolicys", "scope": "Cluster"}]
