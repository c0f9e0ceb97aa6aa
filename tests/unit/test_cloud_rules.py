"""The clouds' own rules as the preflight applies them, kubectl drain's filters, and the label selectors
PodDisruptionBudgets use: each rule with the case it refuses and the case it lets through."""

from __future__ import annotations

import pytest

from regatta.models import LaunchTemplate, NodePool, PdbState, PodOnNode, UpgradeInsight
from regatta.rules import cloud_rules, disruption, provisioning


def pool(name: str, version: str = "1.30", **extra) -> NodePool:
    return NodePool(name=name, version=version, node_count=2, **extra)


def refusals(provider: str, pools: list[NodePool], *, target: str = "1.31", control_plane: str = "1.30", strategy: str = "surge",
             templates: dict[str, str] | None = None, budgets: list[PdbState] | None = None) -> list[str]:
    return cloud_rules.cloud_refusals(provider=provider, control_plane=control_plane, node_pools=pools, target=target,
                                      moves_control_plane=control_plane != target, upgrading=[p.name for p in pools],
                                      strategy=strategy, launch_template_versions=templates or {}, budgets=budgets or [])


class TestEks:
    def test_the_control_plane_moves_only_with_every_node_group_on_its_version(self):
        [found] = refusals("eks", [pool("old", "1.29"), pool("new")])
        assert "every managed node group runs its version (1.30)" in found and "old (1.29)" in found
        assert refusals("eks", [pool("a"), pool("b")]) == []
        # Finishing the node groups at the control plane's version is what that refusal asks for: allowed.
        assert refusals("eks", [pool("old", "1.29")], target="1.30", control_plane="1.30") == []

    def test_a_custom_ami_needs_its_template_version(self):
        custom = pool("hardened", image_type="CUSTOM", launch_template=LaunchTemplate(id="lt-0a1b2c3d4e5f60002", version="1"))
        [found] = refusals("eks", [custom])
        assert "node group hardened runs an AMI of its own launch template (lt-0a1b2c3d4e5f60002, version 1)" in found
        assert refusals("eks", [custom], templates={"hardened": "2"}) == []

    def test_template_versions_name_only_template_node_groups_of_the_cluster(self):
        assert "which was not made from a launch template" in refusals("eks", [pool("plain")], templates={"plain": "2"})[0]
        assert "which the cluster does not have" in refusals("eks", [pool("plain")], templates={"ghost": "2"})[0]
        assert "is for EKS node groups" in refusals("gke", [pool("plain")], templates={"plain": "2"})[0]

    def test_an_error_insight_for_the_target_stops_the_upgrade_unless_accepted(self):
        error = UpgradeInsight(name="Deprecated APIs removed in Kubernetes v1.31", status="ERROR", kubernetes_version="1.31",
                               reason="v1beta3 flowschemas called", resources=["/apis/x/v1beta3/y"])
        later = error.model_copy(update={"kubernetes_version": "1.32"})
        warning = error.model_copy(update={"status": "WARNING"})
        with pytest.raises(cloud_rules.InsightsError, match="ERROR Deprecated APIs removed in Kubernetes v1.31 for 1.31"):
            cloud_rules.refuse_blocking_insights([error, later, warning], "1.31", accepted=None)
        assert cloud_rules.refuse_blocking_insights([error], "1.31", accepted="migrated in CHG-9") == [error]
        assert cloud_rules.refuse_blocking_insights([later, warning], "1.31", accepted=None) == []


class TestGkeAndAks:
    @pytest.mark.parametrize(("provider", "behind", "refused"), [
        ("gke", "1.29", False), ("gke", "1.28", True), ("aks", "1.28", False), ("aks", "1.27", True),
    ])
    def test_pools_stay_within_their_clouds_window_of_the_control_plane(self, provider, behind, refused):
        found = refusals(provider, [pool("lagging", behind)])
        assert bool(found) is refused
        if refused:
            assert f"{provider.upper()} keeps node pools within" in found[0] and "lagging" in found[0]

    def test_a_gke_pool_with_auto_upgrade_on_may_trail_by_one_minor_only(self):
        [found] = refusals("gke", [pool("auto", "1.29", auto_upgrade=True), pool("manual", "1.29", auto_upgrade=False)])
        assert "within 1 minor version of the control plane (their node auto-upgrade is on): auto (1.29)" in found
        assert "manual" not in found and "at least 1.30 first" in found
        assert refusals("gke", [pool("auto", "1.30", auto_upgrade=True)]) == []

    def test_a_gke_surge_does_not_start_while_a_budget_allows_no_disruption(self):
        stuck = PdbState(namespace="shop", name="checkout", expected_pods=3, current_healthy=2, disruptions_allowed=0,
                         min_available=2)
        assert "at most an hour per node" in refusals("gke", [pool("p")], budgets=[stuck])[0]
        assert refusals("gke", [pool("p")], budgets=[stuck], strategy="blue_green") == []
        assert refusals("gke", [pool("p")], budgets=[stuck.model_copy(update={"disruptions_allowed": 1})]) == []

    def test_aks_refuses_a_pool_upgrade_while_a_budget_has_max_unavailable_zero(self):
        zero = PdbState(namespace="db", name="primary", expected_pods=1, current_healthy=1, disruptions_allowed=0,
                        max_unavailable=0)
        assert "UnsatisfiablePDB" in refusals("aks", [pool("p")], budgets=[zero])[0]


class TestProvisioning:
    def test_which_clouds_are_born_with_a_node_pool(self):
        assert [p for p in ("eks", "gke", "aks") if provisioning.born_with_first_pool(p)] == ["gke", "aks"]

    def test_an_aks_decommission_leaves_its_system_pools_to_the_cluster(self):
        pools = [("system", "System"), ("apps", "User")]
        assert provisioning.pools_deleted_before_the_cluster("aks", pools) == ["apps"]
        assert provisioning.pools_deleted_before_the_cluster("eks", [("a", None), ("b", None)]) == ["a", "b"]

    def test_pool_names_are_checked_against_the_cloud(self):
        problems = provisioning.fleet_rule_violations(name="aks-new", provider="aks", region="eastus", version="1.31",
                                                      pools=[("system-pool", 2)], taken=False)
        assert any("AKS node pool names are up to 12 lowercase letters and digits" in p for p in problems)


class TestKubectlDrain:
    def test_what_kubectl_drain_refuses_without_force_or_delete_emptydir_data(self):
        pods = [PodOnNode(name="default/debug", controller_kind=None),
                PodOnNode(name="shop/cache-1", controller_kind="ReplicaSet", emptydir=True),
                PodOnNode(name="kube-system/proxy", controller_kind="DaemonSet", emptydir=True),
                PodOnNode(name="kube-system/etcd", controller_kind=None, mirror=True),
                PodOnNode(name="jobs/done", controller_kind=None, emptydir=True, phase="Succeeded"),
                PodOnNode(name="shop/web-1", controller_kind="ReplicaSet")]
        local, unmanaged = disruption.drain_refusals(pods, delete_unmanaged=False, delete_emptydir=False)
        assert local.startswith("cannot delete Pods with local storage") and local.endswith("shop/cache-1")
        assert unmanaged.startswith("cannot delete Pods that declare no controller") and unmanaged.endswith("default/debug")
        assert disruption.drain_refusals(pods, delete_unmanaged=True, delete_emptydir=False) == [local]
        assert disruption.drain_refusals(pods, delete_unmanaged=True, delete_emptydir=True) == []

    @pytest.mark.parametrize(("selector", "labels", "selects"), [
        (None, {"app": "web"}, False),  # no selector: no pod
        ({}, {"app": "web"}, True),  # empty: every pod in the namespace
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "1"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, {"app": "api"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"tier": "1"}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"app": "web"}, True),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["2"]}]},
         {"app": "web", "tier": "1"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]}, {"app": "web"}, False),
    ])
    def test_a_budget_selects_as_policy_v1_does(self, selector, labels, selects):
        assert disruption.label_selector_matches(selector, labels) is selects
