"""The pure decisions behind every upgrade, including each refusal and what it tells the operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import NodePool, NodeState, PdbState, WorkloadInventory, WorkloadState
from regatta.rules import disruption, health, operation_ids, pool_names, recovery, refusals, versions


def pools(*versions: str) -> list[NodePool]:
    return [NodePool(name=f"p{i}", version=v, node_count=3) for i, v in enumerate(versions)]


class TestVersionJump:
    def test_one_minor_up_upgrades_control_plane_and_every_pool_behind(self):
        scope = versions.plan_upgrade_scope(control_plane="1.30", node_pools=pools("1.30", "1.29"), target="1.31")
        assert scope == versions.UpgradeScope(control_plane=True, node_pools=("p0", "p1"))

    def test_finishing_a_half_done_upgrade_skips_the_control_plane(self):
        scope = versions.plan_upgrade_scope(control_plane="1.31", node_pools=pools("1.31", "1.30"), target="1.31")
        assert scope == versions.UpgradeScope(control_plane=False, node_pools=("p1",))

    def test_skipping_a_minor_is_refused_with_the_next_step(self):
        with pytest.raises(versions.IllegalVersionJump, match="upgrade to 1.31 first, then to 1.32"):
            versions.plan_upgrade_scope(control_plane="1.30", node_pools=pools("1.30"), target="1.32")
        with pytest.raises(versions.IllegalVersionJump, match="upgrade to 1.32 first, then to 1.33, then to 1.34$"):
            versions.plan_upgrade_scope(control_plane="1.31", node_pools=pools("1.31"), target="1.34")

    def test_several_minors_are_a_path_of_one_minor_each(self):
        assert versions.plan_upgrade_path(provider="eks", control_plane="1.29", node_pools=pools("1.29", "1.28"),
                                          target="1.32") == ["1.30", "1.31", "1.32"]

    def test_a_path_is_judged_against_the_pools_as_they_are_at_its_first_minor(self):
        with pytest.raises(versions.SkewViolation, match=r"p1 \(1.26\)"):
            versions.plan_upgrade_path(provider="eks", control_plane="1.29", node_pools=pools("1.29", "1.26"),
                                       target="1.32")

    def test_a_path_of_no_minor_moves_the_pools_behind_and_a_downgrade_has_none(self):
        assert versions.plan_upgrade_path(provider="eks", control_plane="1.31", node_pools=pools("1.30"),
                                          target="1.31") == []
        with pytest.raises(versions.IllegalVersionJump, match="cannot be downgraded"):
            versions.plan_upgrade_path(provider="eks", control_plane="1.31", node_pools=pools("1.31"), target="1.29")
        with pytest.raises(versions.AlreadyAtVersion):
            versions.plan_upgrade_path(provider="eks", control_plane="1.31", node_pools=pools("1.31"), target="1.31")

    def test_a_launch_template_version_per_group_is_for_one_minor_only(self):
        with pytest.raises(versions.SeveralMinorsRefused, match="upgrade one minor at a time"):
            versions.plan_upgrade_path(provider="eks", control_plane="1.29", node_pools=pools("1.29"), target="1.31",
                                       launch_templates=True)
        assert versions.plan_upgrade_path(provider="eks", control_plane="1.29", node_pools=pools("1.29"), target="1.30",
                                          launch_templates=True) == ["1.30"]

    def test_a_node_image_is_the_targets_and_is_checked_against_it(self):
        with pytest.raises(versions.InvalidNodeImage):
            versions.plan_upgrade_path(provider="kubeconfig", control_plane="1.29", node_pools=pools("1.29"),
                                       target="1.31", node_image="anything")

    def test_downgrade_is_refused(self):
        with pytest.raises(versions.IllegalVersionJump, match="cannot be downgraded"):
            versions.plan_upgrade_scope(control_plane="1.30", node_pools=pools("1.30"), target="1.29")

    def test_pool_newer_than_target_is_refused(self):
        with pytest.raises(versions.IllegalVersionJump, match="node pool p1 at 1.31"):
            versions.plan_upgrade_scope(control_plane="1.31", node_pools=pools("1.30", "1.31"), target="1.30")

    def test_nothing_to_do_is_refused(self):
        with pytest.raises(versions.AlreadyAtVersion, match="nothing to do"):
            versions.plan_upgrade_scope(control_plane="1.31", node_pools=pools("1.31"), target="1.31")

    def test_pools_that_would_fall_out_of_skew_are_refused_first(self):
        with pytest.raises(versions.SkewViolation, match=r"p1 \(1.27\).*at least 1.28 with target 1.30 first"):
            versions.plan_upgrade_scope(control_plane="1.30", node_pools=pools("1.30", "1.27"), target="1.31")

    def test_three_minors_of_skew_is_allowed(self):
        scope = versions.plan_upgrade_scope(control_plane="1.30", node_pools=pools("1.28"), target="1.31")
        assert scope.node_pools == ("p0",)

    def test_a_node_image_target_takes_every_pool_not_on_it_without_the_control_plane(self):
        imaged = [NodePool(name="old", version="1.31", node_count=3, node_image="1.31.0-20260101"),
                  NodePool(name="new", version="1.31", node_count=3, node_image="1.31.2-20261101")]
        scope = versions.plan_upgrade_scope(control_plane="1.31", node_pools=imaged, target="1.31", node_image="1.31.2-20261101")
        assert scope == versions.UpgradeScope(control_plane=False, node_pools=("old",))

    def test_a_node_image_target_with_a_version_step_takes_the_control_plane_and_every_pool(self):
        imaged = [NodePool(name="p0", version="1.30", node_count=3, node_image="1.30.2-20261101")]
        scope = versions.plan_upgrade_scope(control_plane="1.30", node_pools=imaged, target="1.31", node_image="1.31.2-20261101")
        assert scope == versions.UpgradeScope(control_plane=True, node_pools=("p0",))

    def test_every_pool_on_the_node_image_is_nothing_to_do(self):
        imaged = [NodePool(name="p0", version="1.31", node_count=3, node_image="1.31.2-20261101")]
        with pytest.raises(versions.AlreadyAtVersion, match="on node image 1.31.2-20261101; nothing to do"):
            versions.plan_upgrade_scope(control_plane="1.31", node_pools=imaged, target="1.31", node_image="1.31.2-20261101")

    @pytest.mark.parametrize(("provider", "image", "says"), [
        ("eks", "1.30.2-20261101", "not a node image of Kubernetes 1.31 on EKS"),
        ("gke", "1.30.5-gke.1200", "not a node image of Kubernetes 1.31 on GKE"),
        ("aks", " ", "give the aks node image"),
        ("kubeconfig", "anything", "have no cloud node image"),
    ])
    def test_node_images_that_cannot_be_the_target_say_why(self, provider, image, says):
        assert says in versions.node_image_problem(provider, image, "1.31")

    @pytest.mark.parametrize(("provider", "image"), [("eks", "1.31.2-20261101"), ("gke", "1.31.5-gke.1200"),
                                                     ("aks", "AKSUbuntu-2204gen2containerd-202611.20.0")])
    def test_node_images_of_the_target_are_accepted(self, provider, image):
        assert versions.node_image_problem(provider, image, "1.31") is None

    @pytest.mark.parametrize("bad", ["1.31.2", "v1.31", "latest", "2.1", "1.99", "", "1.031", "01.31", " 1.31", "1.31\n"])
    def test_targets_must_be_major_minor_and_supported(self, bad):
        with pytest.raises(versions.InvalidVersion):
            versions.parse_target_version(bad)

    @pytest.mark.parametrize(("seen", "minor"), [("1.30", (1, 30)), ("v1.30.4", (1, 30)), ("v1.29.3-eks-a1b2c3", (1, 29))])
    def test_observed_versions_are_read_leniently(self, seen, minor):
        assert versions.minor_version(seen) == minor


class TestSkew:
    def test_kubelet_newer_than_control_plane(self):
        found = versions.skew_violations(control_plane="1.30", node_versions={"a": "v1.31.0", "b": "v1.30.2"})
        assert found == ["node a: kubelet v1.31.0 is newer than control plane 1.30"]

    def test_kubelet_too_old(self):
        found = versions.skew_violations(control_plane="1.31", node_versions={"a": "v1.27.9", "b": "v1.28.0"})
        assert len(found) == 1 and found[0].startswith("node a")


def pdb(min_available=None, max_unavailable=None, expected=3, healthy=3) -> PdbState:
    return PdbState(namespace="shop", name="checkout-pdb", min_available=min_available, max_unavailable=max_unavailable,
                    expected_pods=expected, current_healthy=healthy, disruptions_allowed=0)


class TestDisruptionBudgets:
    @pytest.mark.parametrize(
        ("min_available", "max_unavailable", "expected", "healthy", "allowed"),
        [
            (2, None, 3, 3, 1),
            (2, None, 3, 2, 0),
            ("50%", None, 4, 4, 2),
            ("50%", None, 3, 3, 1),  # 50% of 3 rounds up to 2
            (None, 1, 4, 4, 1),
            (None, "25%", 4, 4, 1),
            (None, 0, 4, 4, 0),
            (None, None, 4, 4, 4),
        ],
    )
    def test_disruptions_allowed_matches_the_pdb_controller(self, min_available, max_unavailable, expected, healthy, allowed):
        assert disruption.pdb_disruptions_allowed(
            min_available=min_available, max_unavailable=max_unavailable, expected_pods=expected, current_healthy=healthy
        ) == allowed

    @pytest.mark.parametrize("spec", [{"min_available": 3}, {"min_available": "100%"}, {"max_unavailable": 0}, {"min_available": 5}])
    def test_budgets_that_can_never_allow_an_eviction_are_refused(self, spec):
        with pytest.raises(disruption.UnsatisfiablePdb, match="shop/checkout-pdb"):
            disruption.refuse_unsatisfiable_pdbs([pdb(**spec)])

    def test_budgets_that_merely_have_no_room_right_now_pass(self):
        disruption.refuse_unsatisfiable_pdbs([pdb(min_available=2, healthy=2), pdb(min_available=0, expected=0)])


class TestDrainPlanning:
    def nodes(self, *pods: int) -> list[NodeState]:
        return [NodeState(name=f"n{i}", pool="p", version="v1.30.1", ready=True, unschedulable=False, pods=n)
                for i, n in enumerate(pods)]

    def test_batches_hold_max_unavailable_nodes_emptiest_first(self):
        assert disruption.plan_drain_batches(self.nodes(5, 0, 3, 1), max_unavailable=2) == [["n1", "n3"], ["n2", "n0"]]

    def test_one_at_a_time(self):
        assert disruption.plan_drain_batches(self.nodes(1, 1, 1), max_unavailable=1) == [["n0"], ["n1"], ["n2"]]

    def test_max_unavailable_below_one_is_refused(self):
        with pytest.raises(refusals.Refusal):
            disruption.plan_drain_batches(self.nodes(1), max_unavailable=0)

    @pytest.mark.parametrize(
        ("owners", "annotations", "phase", "evictable"),
        [
            (["ReplicaSet"], {}, "Running", True),
            (["DaemonSet"], {}, "Running", False),
            ([], {"kubernetes.io/config.mirror": "x"}, "Running", False),
            (["Job"], {}, "Succeeded", False),
        ],
    )
    def test_what_a_drain_evicts(self, owners, annotations, phase, evictable):
        assert disruption.is_evictable(owner_kinds=owners, annotations=annotations, phase=phase) is evictable

    @pytest.mark.parametrize(("provider", "pool", "version", "name"), [
        ("eks", "general", "1.30", "general-v1-31"), ("eks", "general-v1-30", "1.30", "general-v1-31"),
        ("gke", "general", "1.30", "general-v1-31"), ("aks", "general", "1.30", "generalv31"),
        ("aks", "generalv30", "1.30", "generalv31"), ("aks", "pool0", "1.30", "pool0v31"),
        # AKS's own names may end like a replacement's: only the suffix of the version the pool runs is taken off.
        ("aks", "dev12", "1.30", "dev12v31"),
    ])
    def test_replacement_pool_names(self, provider, pool, version, name):
        assert pool_names.replacement_pool_name(pool, "1.31", provider=provider, pool_version=version) == name
        assert pool_names.name_problem(provider, name) is None

    @pytest.mark.parametrize("provider", ["eks", "gke", "aks"])
    def test_a_name_too_long_for_its_cloud_keeps_its_start_and_a_digest_of_the_whole(self, provider):
        limit = pool_names.RULES[provider].max_length  # two names as long as the cloud allows, apart in their last letter
        long_a, long_b = ("batchprocessing" + "x" * 60)[:limit - 1] + "a", ("batchprocessing" + "x" * 60)[:limit - 1] + "b"
        first = pool_names.replacement_pool_name(long_a, "1.31", provider=provider)
        second = pool_names.replacement_pool_name(long_b, "1.31", provider=provider)
        assert first != second
        assert first.startswith("bat") and len(first) <= pool_names.RULES[provider].max_length
        assert pool_names.name_problem(provider, first) is None and pool_names.name_problem(provider, second) is None

    def test_an_aks_windows_pool_keeps_to_six_characters(self):
        assert pool_names.replacement_pool_name("win", "1.31", provider="aks", windows=True) == "winv31"
        assert len(pool_names.replacement_pool_name("winpool", "1.31", provider="aks", windows=True)) == 6
        with pytest.raises(pool_names.UnnameablePool, match="surge"):
            pool_names.replacement_pool_name("win", "1.31", "AKSWindows-2022-202611.20.0", provider="aks", windows=True)

    @pytest.mark.parametrize(("provider", "name", "refused"), [
        ("aks", "general-v1-31", True), ("aks", "general131", False), ("aks", "General", True), ("aks", "1pool", True),
        ("aks", "abcdefghijklm", True), ("gke", "pool_1", True), ("gke", "pool-1", False), ("gke", "pool-", True),
        ("eks", "Pool_1-a", False), ("eks", "-pool", True), ("eks", "p" * 64, True),
    ])
    def test_each_clouds_name_rules(self, provider, name, refused):
        assert (pool_names.name_problem(provider, name) is not None) is refused

    def test_a_node_image_replacement_is_named_apart_from_the_pool_it_replaces_at_the_same_version(self):
        first = pool_names.replacement_pool_name("general-v1-31", "1.31", "1.31.2-20261101")
        assert first.startswith("general-v1-31-i") and first != "general-v1-31"
        second = pool_names.replacement_pool_name(first, "1.31", "1.31.3-20261201")
        assert second.startswith("general-v1-31-i") and second not in (first, "general-v1-31")
        assert pool_names.replacement_pool_name(first, "1.32") == "general-v1-32"
        on_aks = pool_names.replacement_pool_name("generalv31", "1.31", "AKSUbuntu-2204gen2containerd-202611.20.0",
                                                  provider="aks", pool_version="1.31")
        assert on_aks.startswith("gener") and "v31i" in on_aks and pool_names.name_problem("aks", on_aks) is None


def test_health_problems_ignore_cordoned_nodes_but_not_unready_ones():
    nodes = [
        NodeState(name="a", pool="p", version="v1.30.1", ready=True, unschedulable=True),
        NodeState(name="b", pool="p", version="v1.30.1", ready=False, unschedulable=False),
    ]
    problems = health.health_problems(nodes=nodes, deployments=[("shop/web", 3, 2), ("shop/api", 2, 2)], api_ready=False)
    assert problems == ["the API server does not answer /readyz", "node b is not Ready", "deployment shop/web has 2/3 replicas ready"]


def test_operation_ids_name_the_cluster():
    assert operation_ids.operation_id("eks-prod-use1") == "cluster-eks-prod-use1"


# --------------------------------------------------------------------------- disaster recovery


def node(name: str, *, pods: int, allocatable: int = 29, ready: bool = True, cordoned: bool = False) -> NodeState:
    return NodeState(name=name, pool="p", version="v1.30.1", ready=ready, unschedulable=cordoned, pods=pods,
                     allocatable_pods=allocatable)


def test_free_pod_slots_count_only_ready_schedulable_nodes():
    nodes = [node("a", pods=20), node("b", pods=30), node("c", pods=0, ready=False), node("d", pods=0, cordoned=True)]
    assert recovery.free_pod_slots(nodes) == 9


def test_pods_to_place_subtract_what_already_runs_except_in_a_drill():
    present = {"shop/web": WorkloadState(replicas=2, ready=2), "shop/db": WorkloadState(replicas=0, ready=0, dr_replicas=3)}
    wanted = {"shop/web": 3, "shop/db": 3, "kube-system/coredns": 2, "jobs/batch": 2}
    assert recovery.pods_to_place(wanted=wanted, present=present, drill=False) == 1 + 3 + 2
    assert recovery.pods_to_place(wanted=wanted, present=present, drill=True) == 3 + 3 + 2


def test_target_problems_name_health_version_and_missing_capacity_and_an_override_forgives_only_capacity():
    short = recovery.capacity_shortfall(needed=40, free=10, pods_per_node=29)
    assert short == "it has room for 10 more pods but the workloads need 40: short by 30 pods (about 2 more nodes of 29 pods)"
    assert recovery.capacity_shortfall(needed=10, free=10, pods_per_node=29) is None
    problems = recovery.target_problems(name="dr", health=["node n1 is not Ready"], source_version="1.31",
                                        target_version="1.29", shortfall=short, override_capacity=None)
    assert problems == [
        "dr is not healthy: node n1 is not Ready",
        "dr is not on a compatible version: it runs Kubernetes 1.29 and the workloads come from 1.31: more than 1 minor"
        " version apart; upgrade it first",
        f"dr is too small: {short}. Add nodes, or override with a reason (CLI: --override-capacity REASON)",
    ]
    assert recovery.target_problems(name="dr", health=[], source_version="1.31", target_version="1.30", shortfall=short,
                                    override_capacity="autoscaler") == []
    assert recovery.target_problems(name="dr", health=[], source_version="1.30", target_version="1.30", shortfall=short,
                                    override_capacity="  ") != []


def test_shifting_weights_moves_the_source_share_once():
    shifted = recovery.shifted_weights({"p": 80, "s": 20, "other": 5}, source="p", target="s")
    assert shifted == {"p": 0, "s": 100, "other": 5}
    assert recovery.shifted_weights(shifted, source="p", target="s") is None


def test_approval_is_required_in_prod_or_on_request_and_never_for_a_drill():
    assert recovery.dr_needs_approval("prod", requested=False)
    assert not recovery.dr_needs_approval("staging", requested=False)
    assert recovery.dr_needs_approval("staging", requested=True)
    assert not recovery.dr_needs_approval("prod", requested=True, drill=True)


def test_scale_up_plan_prefers_what_the_primary_ran_and_leaves_enough_alone():
    present = {"shop/web": WorkloadState(replicas=0, ready=0, dr_replicas=3),
               "shop/db": WorkloadState(replicas=0, ready=0, dr_replicas=2),
               "shop/cache": WorkloadState(replicas=5, ready=5, dr_replicas=5),
               "own/app": WorkloadState(replicas=1, ready=1)}
    assert recovery.scale_up_plan(wanted={"shop/web": 6}, present=present) == {"shop/web": 6, "shop/db": 2}


def test_warm_standby_plan_zeroes_copies_and_removes_what_restores_made():
    present = WorkloadInventory(deployments={
        "shop/web": WorkloadState(replicas=3, ready=3, dr_replicas=3, fenced_replicas=3),
        "shop/catalog": WorkloadState(replicas=0, ready=0, restored_by="failover-x"),
        "jobs/batch": WorkloadState(replicas=0, ready=0, restored_by="failover-x"),
        "own/app": WorkloadState(replicas=1, ready=1)}, restored_namespaces=["jobs"])
    assert recovery.warm_standby_plan(present) == ({"shop/web": 0}, ["jobs"], ["shop/catalog"])


def test_drills_restore_beside_the_real_namespaces():
    assert recovery.drill_namespaces(["shop", "kube-system", "jobs"]) == {"jobs": "dr-drill-jobs", "shop": "dr-drill-shop"}


def test_recovery_objectives_measure_from_start_and_from_when_writes_stopped():
    start = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    rto, rpo = recovery.recovery_objectives(started=start, verified=start + timedelta(seconds=95),
                                            backup_completed=start - timedelta(minutes=10),
                                            writes_stopped=start + timedelta(seconds=20))
    assert (rto, rpo) == (95.0, 620.0)
    assert recovery.recovery_objectives(started=start, verified=start, backup_completed=None) == (0.0, None)


# --------------------------------------------------------------------------- drain escalation

def test_a_blocked_drain_follows_the_first_policy_that_matches_its_pool_and_pods():
    from regatta.models import BlockedPod, DrainPolicy

    by_pool = DrainPolicy(node_pools=["batch"], delete_blocking_pods=True)
    by_label = DrainPolicy(workload_labels={"team": "payments"}, notify_owner_after_seconds=60)
    policies = [by_pool, by_label]
    payments = [BlockedPod(name="shop/checkout-1", labels={"app": "checkout", "team": "payments"})]
    others = [BlockedPod(name="shop/web-1", labels={"app": "web"})]
    assert disruption.drain_policy(policies, node_pool="batch", pods=payments) is by_pool
    assert disruption.drain_policy(policies, node_pool="general", pods=payments) is by_label
    assert disruption.drain_policy(policies, node_pool="general", pods=others) == DrainPolicy()  # the defaults


def test_the_escalation_ladder_moves_one_step_at_a_time_and_deletes_only_when_allowed_and_approved():
    from regatta.models import DrainPolicy

    may_delete = DrainPolicy(notify_owner_after_seconds=300, ask_approval_after_seconds=600, delete_blocking_pods=True)
    step = disruption.next_escalation_step
    assert step(may_delete, step="retrying", blocked_for=299, approved=False) is None
    assert step(may_delete, step="retrying", blocked_for=900, approved=False) == "owner_notified"  # never skips telling
    assert step(may_delete, step="owner_notified", blocked_for=599, approved=False) is None
    assert step(may_delete, step="owner_notified", blocked_for=600, approved=False) == "awaiting_approval"
    assert step(may_delete, step="awaiting_approval", blocked_for=10**6, approved=False) is None
    assert step(may_delete, step="awaiting_approval", blocked_for=601, approved=True) == "deleting_pods"
    never = DrainPolicy(notify_owner_after_seconds=300, ask_approval_after_seconds=600)
    assert step(never, step="owner_notified", blocked_for=10**6, approved=False) is None  # no approval without delete
    assert disruption.next_escalation_in(may_delete, step="retrying", blocked_for=100) == 200
    assert disruption.next_escalation_in(never, step="owner_notified", blocked_for=100) is None
