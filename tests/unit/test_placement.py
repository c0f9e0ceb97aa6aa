"""The placement rules: filters with their reasons, the score and its terms, pick all / N (spread
within a skew) / fixed, replicas divided by weight and by room, budgets scaled to a share, moves
that raise before they lower in steps the budget allows, and which shares are displaced (with
damping, and nothing moving back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import ClusterRecord, MaintenanceHold
from regatta.models.placement import Placement
from regatta.models.policy import BundleSpec
from regatta.rules import bundle_targets, bundles, placement

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
       "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "web:1",
                                                      "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]}}}}
BUDGET = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
          "spec": {"minAvailable": 5, "selector": {"matchLabels": {"app": "web"}}}}


def cluster(name: str, *, region: str = "us-east-1", cpu_free: int = 4000, memory_free: int = 8192, pods_free: int = 50,
            health: str = "healthy", labels: dict | None = None, provider: str = "eks") -> ClusterRecord:
    return ClusterRecord(name=name, provider=provider, region=region, environment="prod", labels=labels or {"team": "shop"},
                         control_plane_version="1.30", health=health, pods_free=pods_free,
                         cpu_allocatable_m=cpu_free + 1000, cpu_requested_m=1000,
                         memory_allocatable_mi=memory_free + 1024, memory_requested_mi=1024)


def decide(pick: dict, clusters: list[ClusterRecord], manifests=(WEB, BUDGET), previous=None):
    return placement.place(Placement.model_validate(pick), app="web", revision="r1", manifests=list(manifests),
                           candidates=clusters, left_out={}, now=NOW, previous=previous)


def shares(decision) -> dict[str, int]:
    return {s.cluster: s.replicas["Deployment/shop/web"] for s in decision.chosen}


def test_division_by_capacity_follows_the_room_each_cluster_has_and_never_exceeds_it():
    # a has room for 8 replicas (4000m / 500m), b for 4, c for 2 (memory: 1024Mi / 512Mi)
    fleet = [cluster("a"), cluster("b", cpu_free=2000), cluster("c", memory_free=1024)]
    decision = decide({"divide": "capacity"}, fleet)
    assert shares(decision) == {"a": 3, "b": 2, "c": 1}  # 6 × 8/14, 4/14, 2/14 = 3.4, 1.7, 0.9: remainders to c, b
    assert sum(shares(decision).values()) == 6
    small = [cluster("a", cpu_free=1000), cluster("b", cpu_free=1000)]  # room for 2 + 2 of 6
    with pytest.raises(placement.PlacementUnsatisfiable, match="room for 4 of 6 replicas of Deployment/shop/web"):
        decide({"divide": "capacity"}, small)


def test_division_by_weight_is_largest_remainder_and_a_weight_of_zero_takes_nothing():
    fleet = [cluster("a"), cluster("b", labels={"tier": "big"}), cluster("c", labels={"tier": "off"})]
    decision = decide({"divide": "weight", "weights": [{"selector": {"labels": {"tier": "big"}}, "weight": 3},
                                                       {"selector": {"labels": {"tier": "off"}}, "weight": 0}]}, fleet)
    assert shares(decision) == {"a": 1, "b": 5, "c": 0}  # 6 × 1/4 = 1.5, 6 × 3/4 = 4.5: the tie goes to the heavier
    assert placement.divide(7, {"x": 1, "y": 1, "z": 1}) == {"x": 3, "y": 2, "z": 2}
    assert placement.divide(5, {"x": 1, "y": 1}, {"x": 1}) == {"x": 1, "y": 4}
    with pytest.raises(placement.PlacementUnsatisfiable, match="weighs 0"):
        placement.divide(3, {"x": 0, "y": 0})


def test_filters_leave_out_with_reasons_a_person_can_read():
    fleet = [cluster("ok"), cluster("sick", health="degraded: 1 of 3 nodes are Ready"), cluster("new", health="unknown"),
             cluster("gpu", labels={"team": "ml"}), cluster("full", cpu_free=100),
             cluster("held"), cluster("banned", labels={"team": "shop", "pci": "no"})]
    fleet[5].hold = MaintenanceHold(until=NOW + timedelta(days=1), reason="launch", held_by="ann")
    decision = decide({"affinity": {"labels": {"team": "shop"}}, "anti_affinity": [{"labels": {"pci": "no"}}]}, fleet)
    assert [s.cluster for s in decision.chosen] == ["ok"]
    why = decision.not_chosen
    assert why["sick"] == "not healthy: degraded: 1 of 3 nodes are Ready"
    assert why["new"].startswith("never swept")
    assert why["gpu"] == "affinity needs label team=shop (it has team=ml)"
    assert why["full"].startswith("no room for one replica of Deployment/shop/web (needs 500m CPU, 512Mi")
    assert why["held"].startswith("held until 2026-12-02 12:00 UTC by ann: launch")
    assert why["banned"] == "anti-affinity: pci=no"


def test_pick_count_takes_the_best_scores_spread_within_the_skew_and_says_why_others_lost():
    fleet = [cluster("e1", region="us-east-1", cpu_free=8000), cluster("e2", region="us-east-1", cpu_free=7000),
             cluster("e3", region="us-east-1", cpu_free=6000), cluster("w1", region="us-west-2", cpu_free=3000),
             cluster("u1", region="eu-west-1", cpu_free=2000)]
    plain = decide({"pick": "count", "count": 3, "divide": "weight"}, fleet)
    assert [s.cluster for s in plain.chosen] == ["e1", "e2", "e3"]
    spread = decide({"pick": "count", "count": 3, "divide": "weight", "spread": {"over": "region", "max_skew": 1}}, fleet)
    assert [s.cluster for s in spread.chosen] == ["e1", "u1", "w1"]
    assert spread.not_chosen["e2"] == "spread over region: us-east-1 already has 1, max skew 1"
    top = next(s for s in spread.chosen if s.cluster == "e1")
    assert top.terms["free CPU"] == 40.0 and top.score == sum(top.terms.values())
    with pytest.raises(placement.PlacementUnsatisfiable, match="2 of the 3 clusters asked for can run it"):
        decide({"pick": "count", "count": 3, "divide": "weight"}, fleet[:2])


def test_preferences_add_to_the_score_and_what_runs_now_stays_put():
    fleet = [cluster("a", cpu_free=8000), cluster("b", cpu_free=4000, labels={"team": "shop", "ssd": "yes"})]
    preferred = decide({"pick": "count", "count": 1, "divide": "weight",
                        "prefer": [{"selector": {"labels": {"ssd": "yes"}}, "weight": 30}]}, fleet)
    assert [s.cluster for s in preferred.chosen] == ["b"]  # 20 + 40·(memory equal) + 30 beats 40 + 40
    fresh = decide({"pick": "count", "count": 1, "divide": "weight"}, fleet, previous=preferred)
    assert [s.cluster for s in fresh.chosen] == ["b"]  # steady: running there is worth more than room
    assert fresh.chosen[0].terms["steady: runs it now"] == placement.STEADY_POINTS


def test_pick_fixed_refuses_when_a_named_cluster_cannot_run_it():
    fleet = [cluster("a"), cluster("b", health="unreachable: timed out"), cluster("c")]
    decision = decide({"pick": "fixed", "clusters": ["a", "c"], "divide": "weight"}, fleet)
    assert shares(decision) == {"a": 3, "c": 3} and decision.not_chosen["b"] == "not in the placement's fixed list"
    with pytest.raises(placement.PlacementUnsatisfiable, match="b: not healthy: unreachable"):
        decide({"pick": "fixed", "clusters": ["a", "b"], "divide": "weight"}, fleet)


def test_a_share_is_rendered_into_the_workload_and_an_absolute_budget_is_scaled_to_it():
    bundle = BundleSpec.model_validate({"name": "web", "manifests": [WEB, BUDGET], "placement": {"divide": "weight"}})
    rendering = bundles.render(bundle, cluster("a"), mode=None, replicas={"Deployment/shop/web": 2})
    bodies = {o.key.kind: o.body for o in rendering.objects}
    assert bodies["Deployment"]["spec"]["replicas"] == 2
    assert bodies["PodDisruptionBudget"]["spec"]["minAvailable"] == 2  # ceil(5 × 2/6)
    assert WEB["spec"]["replicas"] == 6 and BUDGET["spec"]["minAvailable"] == 5
    nothing = bundles.render(bundle, cluster("b"), mode=None, replicas={})  # never the whole total by mistake
    assert {o.key.kind: o.body for o in nothing.objects}["Deployment"]["spec"]["replicas"] == 0


def test_the_plan_of_an_application_bundle_takes_only_the_chosen_clusters_with_their_shares():
    bundle = BundleSpec.model_validate({"name": "web", "manifests": [WEB, BUDGET],
                                        "placement": {"pick": "count", "count": 2, "divide": "weight"}})
    fleet = [cluster("a", cpu_free=8000), cluster("b", cpu_free=6000), cluster("c", cpu_free=1000)]
    plan = bundle_targets.plan_policy(bundle, fleet, now=NOW)
    assert plan.placement is not None and [s.cluster for s in plan.placement.chosen] == ["a", "b"]
    members = {c.name: c.replicas for s in plan.stages for c in s.clusters}
    assert members == {"a": {"Deployment/shop/web": 3}, "b": {"Deployment/shop/web": 3}}
    out = {d.cluster: d.because for d in plan.decisions if not d.included}
    assert out["c"].startswith("not placed: score")
    assert "chosen: score" in next(d.because for d in plan.decisions if d.cluster == "a")


def test_placement_problems_are_found_before_anything_runs():
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    no_workload = BundleSpec.model_validate({"name": "x", "manifests": [config], "placement": {}})
    assert any("has none" in m for _, m in bundles.bundle_problems(no_workload))
    replicas_override = BundleSpec.model_validate({"name": "x", "manifests": [WEB], "placement": {}, "overrides": [
        {"patch": [{"op": "replace", "path": "/spec/replicas", "value": 1}]}]})
    assert any("sets /spec/replicas" in m for _, m in bundles.bundle_problems(replicas_override))
    bad = BundleSpec.model_validate({"name": "x", "manifests": [WEB], "placement": {"min_free": {"cpu": "lots"},
                                                                                    "spread": {"over": "planet"}}})
    words = " ".join(m for _, m in bundles.bundle_problems(bad))
    assert "min_free.cpu: 'lots' is not a Kubernetes quantity" in words and "spread.over: 'planet'" in words
    with pytest.raises(ValueError, match="pick: count needs count"):
        Placement.model_validate({"pick": "count"})


def test_a_move_raises_the_others_before_it_lowers_the_leaving_cluster_in_steps_the_budget_allows():
    one_at_a_time = {**BUDGET, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
    fleet = [cluster("a"), cluster("b"), cluster("c")]
    rule = Placement(divide="weight")
    decision = decide(rule.model_dump(), fleet, manifests=(WEB, one_at_a_time))
    assert shares(decision) == {"a": 2, "b": 2, "c": 2}
    plan = placement.plan_move(rule, decision, leaving=["b"], clusters=fleet, now=NOW)
    assert shares(plan.decision) == {"a": 3, "c": 3}
    assert plan.withdraw == ["b"]
    # Each step raises one replica somewhere, then lowers b by one: the total never drops below 6.
    total = {"a": 2, "b": 2, "c": 2}
    for step in plan.steps:
        for name, share in step.raise_to.items():
            total[name] = share["Deployment/shop/web"]
        assert sum(total.values()) >= 6
        for name, share in step.lower_to.items():
            total[name] = share["Deployment/shop/web"]
        assert sum(total.values()) >= 6
        assert sum(len(s) for s in step.raise_to.values()) <= 1
    assert total == {"a": 3, "b": 0, "c": 3} and len(plan.steps) == 2


def test_a_move_for_pick_count_finds_a_replacement_and_keeps_the_rest_where_they_are():
    fleet = [cluster("a", cpu_free=8000), cluster("b", cpu_free=7000), cluster("c", cpu_free=2000)]
    rule = Placement(pick="count", count=2, divide="weight")
    decision = decide(rule.model_dump(), fleet)
    assert shares(decision) == {"a": 3, "b": 3}
    plan = placement.plan_move(rule, decision, leaving=["a"], clusters=fleet, now=NOW)
    assert shares(plan.decision) == {"b": 3, "c": 3}
    assert plan.decision.not_chosen["a"] == "moved off"
    # its budget (minAvailable 5 of 6) lets one go at a time: c up by one, then a down by one, three times
    assert [(s.raise_to, s.lower_to) for s in plan.steps] == [
        ({"c": {"Deployment/shop/web": n}}, {"a": {"Deployment/shop/web": 3 - n}}) for n in (1, 2, 3)]
    alone = decide({"pick": "fixed", "clusters": ["a"], "divide": "weight"}, fleet)
    with pytest.raises(placement.PlacementUnsatisfiable, match="would run nowhere"):
        placement.plan_move(Placement(pick="fixed", clusters=["a"]), alone, leaving=["a"], clusters=fleet, now=NOW)


def test_displaced_waits_out_the_damping_and_never_moves_back_a_cluster_that_recovered():
    rule = Placement(divide="weight", damping_seconds=600)
    fleet = [cluster("a"), cluster("b")]
    decision = decide(rule.model_dump(), fleet)
    flapping = cluster("b", health="unreachable: timed out")
    flapping.unhealthy_since = NOW - timedelta(seconds=300)
    assert placement.displaced([(decision, rule)], [fleet[0], flapping], now=NOW) == []
    flapping.unhealthy_since = NOW - timedelta(seconds=601)
    found = placement.displaced([(decision, rule)], [fleet[0], flapping], now=NOW)
    assert [(d.cluster, d.because.split(" (")[0]) for d in found] == [("b", "unhealthy for 601s")]
    assert placement.displaced([(decision, rule)], fleet, now=NOW) == []  # healthy again: stays as it is
    gone = placement.displaced([(decision, rule)], [fleet[0]], now=NOW)
    assert [(d.cluster, d.because) for d in gone] == [("b", "left the fleet (not in the inventory)")]
    evacuating = cluster("b")
    evacuating.hold = MaintenanceHold(until=NOW + timedelta(hours=4), reason="blue/green", held_by="ann", evacuate=True)
    assert [d.cluster for d in placement.displaced([(decision, rule)], [fleet[0], evacuating], now=NOW)] == ["b"]
    assert [d.app for d in placement.placed_on([decision], "b")] == ["web"]


def test_a_placement_and_a_stages_pick_spread_over_the_same_fields_read_the_same_way():
    old, new = cluster("a-old"), cluster("b-new")
    old.control_plane_version, new.control_plane_version = "1.30", "1.31"
    assert [placement.spread_value(c, "version") for c in (old, new)] == ["1.30", "1.31"]
    assert placement.placement_problems(Placement.model_validate({"spread": {"over": "version"}}), [WEB], []) == []
    said = placement.placement_problems(Placement.model_validate({"spread": {"over": "zone"}}), [WEB], [])
    assert [message for _, message in said] == ["placement.spread.over: 'zone'; use region, provider, environment,"
                                                " version or label:<key>"]
    assert [c.name for c in bundle_targets.pick_spread([old, new, cluster("c-old")], 2, "version")] == ["a-old", "b-new"]
