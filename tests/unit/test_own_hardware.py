"""What Regatta decides about Cluster API and system-upgrade-controller objects (regatta/rules/own_hardware.py), from
the objects as the controllers write them, with the answers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from regatta.rules import cloud_rules, own_hardware


def test_a_cluster_api_release_is_named_exactly_and_of_the_target_minor():
    assert own_hardware.capi_target("1.31", "v1.31.4") == ("v1.31.4", "")
    assert own_hardware.capi_target("1.31", "v1.31.4/ubuntu-2404-v1.31.4") == ("v1.31.4", "ubuntu-2404-v1.31.4")
    for named, said in ((None, "give node_images.capi"), ("1.31.4", "semantic versions with a v"),
                        ("v1.32.0", "not a release of Kubernetes 1.31"), ("v1.31", "semantic versions with a v")):
        with pytest.raises(own_hardware.ReleaseRefused, match=said):
            own_hardware.capi_target("1.31", named)


def test_a_k3s_or_rke2_release_or_else_the_minors_channel():
    assert own_hardware.suc_release("1.31", None, "k3s") == {"channel": "https://update.k3s.io/v1-release/channels/v1.31"}
    assert own_hardware.suc_release("1.31", None, "rke2") == {"channel": "https://update.rke2.io/v1-release/channels/v1.31"}
    assert own_hardware.suc_release("1.31", "v1.31.4+rke2r1", "rke2") == {"version": "v1.31.4+rke2r1"}
    with pytest.raises(own_hardware.ReleaseRefused, match="not a k3s release"):
        own_hardware.suc_release("1.31", "v1.31.4+rke2r1", "k3s")
    with pytest.raises(own_hardware.ReleaseRefused, match="not a release of Kubernetes 1.31"):
        own_hardware.suc_release("1.31", "v1.30.9+k3s1", "k3s")
    assert own_hardware.distribution_of(["v1.30.2+k3s1", "v1.30.2+k3s1"]) == "k3s"
    assert own_hardware.distribution_of(["v1.30.2+rke2r1"]) == "rke2"
    with pytest.raises(ValueError, match="neither k3s nor RKE2"):
        own_hardware.distribution_of(["v1.30.2-eks-1"])


def machine_deployment(*, replicas=3, generation=2, observed=2, updated=3, current=3, available=3, annotations=None):
    return {"metadata": {"name": "md-0", "generation": generation, "annotations": annotations or {}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": current,
                       "availableReplicas": available}}


def test_a_machine_deployment_is_done_only_once_its_controller_has_read_its_spec_and_every_machine_is_new_and_up():
    assert own_hardware.machine_deployment_done(machine_deployment())
    assert not own_hardware.machine_deployment_done(machine_deployment(observed=1))  # the spec not yet read: old status
    assert not own_hardware.machine_deployment_done(machine_deployment(updated=2))
    assert not own_hardware.machine_deployment_done(machine_deployment(current=4))  # an old Machine still being deleted
    assert not own_hardware.machine_deployment_done(machine_deployment(available=2))
    assert own_hardware.paused(machine_deployment(annotations={"cluster.x-k8s.io/paused": "true"}))


def test_a_control_plane_rolls_until_its_status_version_and_every_replica_are_its_specs():
    kcp = {"metadata": {"generation": 3}, "spec": {"replicas": 3, "version": "v1.31.4"},
           "status": {"observedGeneration": 3, "version": "v1.31.4", "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3}}
    assert not own_hardware.control_plane_rolling(kcp)
    assert own_hardware.control_plane_rolling({**kcp, "status": {**kcp["status"], "version": "v1.30.5"}})
    assert own_hardware.control_plane_rolling({**kcp, "status": {**kcp["status"], "replicas": 4}})


def test_a_drain_held_longer_than_the_upgrades_timeout_is_named_with_cluster_apis_own_words():
    def machine(name, since, status="False"):
        return {"metadata": {"name": name}, "status": {"nodeRef": {"name": name}, "conditions": [
            {"type": "DrainingSucceeded", "status": status, "reason": "Draining", "lastTransitionTime": since,
             "message": "Drain not completed yet (started at x):\n* Pod shop/web-1: cannot evict pod as it would violate"
                        " the pod's disruption budget."}]}}
    now = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    held = own_hardware.drain_held_longer_than([machine("a", "2026-12-07T11:50:00Z"), machine("b", "2026-12-07T11:59:30Z"),
                                                machine("c", "2026-12-07T11:00:00Z", status="True")], 300, now=now)
    assert held == ["Machine a (node a) has been draining for 600 s: Drain not completed yet (started at x): * Pod"
                    " shop/web-1: cannot evict pod as it would violate the pod's disruption budget."]


def test_a_plan_is_done_only_when_every_node_it_selects_carries_its_hash_and_runs_the_target():
    plan = {"metadata": {"name": "regatta-agents"}, "status": {"latestHash": "abc", "applying": []}}
    done = ("n1", {"plan.upgrade.cattle.io/regatta-agents": "abc"}, "v1.31.4+k3s1")
    assert own_hardware.plan_done(plan, [done, done], "1.31")
    assert not own_hardware.plan_done(plan, [done, ("n2", {"plan.upgrade.cattle.io/regatta-agents": "disabled"},
                                                    "v1.30.2+k3s1")], "1.31")  # held, not done: the Plan says Complete
    assert not own_hardware.plan_done({**plan, "status": {"latestHash": "abc", "applying": ["n1"]}}, [done], "1.31")
    assert not own_hardware.plan_done({**plan, "status": {}}, [done], "1.31")  # the controller has not read it yet


def test_the_plans_regatta_writes_follow_rancher_s_pattern_and_never_force_a_drain():
    servers = own_hardware.plan(node_pool=None, selector=own_hardware.plan_selector(None, None), distribution="k3s",
                                release={"channel": "c"}, drain_timeout_seconds=600, attempt="t")
    assert servers["spec"]["cordon"] is True and "drain" not in servers["spec"] and servers["spec"]["concurrency"] == 1
    agents = own_hardware.plan(node_pool="agents", selector=own_hardware.plan_selector("agents", "regatta.dev/node-pool"),
                               distribution="rke2", release={"version": "v1.31.4+rke2r1"}, drain_timeout_seconds=600,
                               attempt="t")
    assert agents["spec"]["upgrade"]["image"] == "rancher/rke2-upgrade"
    assert agents["metadata"]["name"] == own_hardware.plan_name("agents") != own_hardware.plan_name("server") != "regatta-server"
    assert own_hardware.plan_name("Edge_GPU.") .startswith("regatta-pool-edge-gpu-")  # a DNS label, whatever the pool label
    assert own_hardware.release_of("v1.31.4-k3s1") == "v1.31.4+k3s1"
    assert agents["spec"]["prepare"]["args"] == ["prepare", "regatta-server"]
    assert agents["spec"]["drain"] == {"force": False, "disableEviction": False, "ignoreDaemonSets": True,
                                       "deleteEmptydirData": True, "timeout": "600s"}
    assert agents["spec"]["jobActiveDeadlineSecs"] == 1200
    selector = agents["spec"]["nodeSelector"]
    assert own_hardware.selects(selector, {"regatta.dev/node-pool": "agents"})
    assert not own_hardware.selects(selector, {"regatta.dev/node-pool": "agents",
                                               "node-role.kubernetes.io/control-plane": "true"})
    assert not own_hardware.selects(selector, {"regatta.dev/node-pool": "gpu"})
    assert not own_hardware.selects(selector, {"regatta.dev/node-pool": "agents", "node-role.kubernetes.io/master": "true"})
    unlabelled = own_hardware.plan_selector("default", None, ["regatta.dev/node-pool", "node-pool"])
    assert own_hardware.selects(unlabelled, {}) and not own_hardware.selects(unlabelled, {"node-pool": "x"})


def test_what_the_controllers_cannot_do_is_refused_before_an_upgrade_starts():
    refused = cloud_rules.cloud_refusals(provider="capi", control_plane="1.30", node_pools=[], target="1.31",
                                         moves_control_plane=True, upgrading=["md-0"], strategy="blue_green",
                                         launch_template_versions={"md-0": "2"})
    assert len(refused) == 3 and "node_images.capi" in refused[0] and "use strategy surge" in refused[1]
    assert cloud_rules.cloud_refusals(provider="suc", control_plane="1.30", node_pools=[], target="1.31",
                                      moves_control_plane=True, upgrading=[], strategy="surge",
                                      launch_template_versions={}) == []
