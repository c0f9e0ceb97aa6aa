"""The bundle rules: rendering for one cluster (substitution, overrides, policy mode, the bundle's
label), the revision, every problem a bundle file can have, and where a bundle goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from regatta.models import ClusterRecord
from regatta.models.policy import BUNDLE_LABEL, REVISION_ANNOTATION, BundleSpec, PolicyClusterState, PolicyStageState
from regatta.rules import bundle_targets, bundles

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "kube-system"},
          "data": {"cluster": "{{ cluster.name }}", "team": "{{ cluster.labels.team }}", "size": "small"}}
KYVERNO = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "require-team"},
           "spec": {"rules": [{"name": "team", "validate": {"failureAction": "Audit", "message": "team label"}}]}}
CONSTRAINT = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
              "metadata": {"name": "need-owner"}, "spec": {"match": {}}}


def cluster(name: str, *, region: str = "us-east-1", env: str = "prod", team: str = "pay", version: str = "1.30",
            pods_free: int | None = 100, provider: str = "eks") -> ClusterRecord:
    return ClusterRecord(name=name, provider=provider, region=region, environment=env, labels={"team": team, "env": env},
                         control_plane_version=version, pods_free=pods_free)


def spec(**fields) -> BundleSpec:
    return BundleSpec.model_validate({"name": "base", "manifests": [CONFIG], **fields})


def test_rendering_substitutes_inventory_fields_labels_every_object_and_applies_matching_overrides():
    bundle = spec(overrides=[{"selector": {"environment": "prod"}, "target": {"kind": "ConfigMap"},
                              "patch": [{"op": "replace", "path": "/data/size", "value": "large"}]}])
    prod = bundles.render(bundle, cluster("p1"), mode=None)
    dev = bundles.render(bundle, cluster("d1", env="dev", team="web"), mode=None)
    assert prod.objects[0].body["data"] == {"cluster": "p1", "team": "pay", "size": "large"}
    assert dev.objects[0].body["data"] == {"cluster": "d1", "team": "web", "size": "small"}
    assert prod.overrides == [0] and dev.overrides == []
    body = prod.objects[0].body
    assert body["metadata"]["labels"][BUNDLE_LABEL] == "base"
    assert body["metadata"]["annotations"][REVISION_ANNOTATION] == bundles.revision(bundle) == prod.revision
    assert CONFIG["data"]["cluster"] == "{{ cluster.name }}"  # the bundle itself is not changed


def test_the_revision_is_the_content_and_nothing_else():
    assert bundles.revision(spec()) == bundles.revision(spec(description="other words", requested_by="bob"))
    changed = {**CONFIG, "data": {**CONFIG["data"], "size": "medium"}}
    assert bundles.revision(spec()) != bundles.revision(spec(manifests=[changed]))


def test_policy_mode_sets_each_engines_own_field():
    bundle = spec(manifests=[KYVERNO, CONSTRAINT])
    audit = {o.key.kind: o.body["spec"] for o in bundles.render(bundle, cluster("a"), mode="audit").objects}
    enforce = {o.key.kind: o.body["spec"] for o in bundles.render(bundle, cluster("a"), mode="enforce").objects}
    assert audit["ClusterPolicy"]["validationFailureAction"] == "Audit"
    assert audit["ClusterPolicy"]["rules"][0]["validate"]["failureAction"] == "Audit"
    assert enforce["ClusterPolicy"]["validationFailureAction"] == "Enforce"
    assert enforce["ClusterPolicy"]["rules"][0]["validate"]["failureAction"] == "Enforce"
    assert audit["K8sRequiredLabels"]["enforcementAction"] == "dryrun"
    assert enforce["K8sRequiredLabels"]["enforcementAction"] == "deny"
    assert bundles.fails_closed(KYVERNO)  # Kyverno's default failurePolicy is Fail
    assert not bundles.fails_closed({**KYVERNO, "spec": {"failurePolicy": "Ignore"}})
    assert not bundles.fails_closed(CONSTRAINT)


@pytest.mark.parametrize(("fields", "says"), [
    ({"manifests": []}, "the bundle has no objects"),
    ({"manifests": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]}, "manifests[0]: apiVersion is required"),
    ({"manifests": [CONFIG, CONFIG]}, "is also manifests[0]"),
    ({"manifests": [{**CONFIG, "data": {"x": "{{ secrets.token }}"}}]}, "may use only cluster.*"),
    ({"manifests": [{**CONFIG, "data": {"x": "{{ cluster.name"}}]}, "not a valid substitution"),
    ({"overrides": [{"target": {"kind": "Secret"}, "patch": [{"op": "add", "path": "/x", "value": 1}]}]},
     "overrides[0].target matches none"),
    ({"overrides": [{"patch": [{"op": "replace", "path": "/data/missing", "value": 1}]}]}, "overrides[0].patch"),
    ({"stages": [{"name": "a"}, {"name": "a"}]}, "stages[1].name: 'a' is used by an earlier stage"),
    ({"stages": [{"name": "a", "pick": {"count": 1, "spread_over": "colour"}}]}, "stages[0].pick.spread_over"),
    ({"drift": {"ignore": [{"paths": ["data.x"]}]}}, "is not a JSON pointer"),
    ({"failure_budget": "lots"}, "failure_budget"),
])
def test_every_problem_of_a_bundle_is_named(fields, says):
    problems = [message for _, message in bundles.bundle_problems(spec(**fields))]
    assert any(says in p for p in problems), problems
    with pytest.raises(bundles.InvalidBundle, match="."):
        bundles.check(spec(**fields))


def test_a_substitution_of_a_label_the_cluster_lacks_is_refused_naming_the_object():
    bundle = spec(manifests=[{**CONFIG, "data": {"x": "{{ cluster.labels.cost_centre }}"}}])
    with pytest.raises(bundles.InvalidBundle, match=r"manifests\[0\] \(ConfigMap kube-system/owner\).*cost_centre"):
        bundles.render(bundle, cluster("a"), mode=None)


def test_the_plan_names_every_cluster_in_or_out_and_defaults_to_one_canary_then_the_rest():
    fleet = [cluster("e1", region="eu-west-1"), cluster("u1"), cluster("u2"), cluster("dev1", env="dev"),
             cluster("old", version="1.28"), cluster("full", pods_free=2), cluster("never", pods_free=None),
             cluster("gone")]
    bundle = spec(targets={"selector": {"environment": "prod"}, "versions": ["1.30"], "exclude": ["gone"],
                           "min_pods_free": 10})
    plan = bundle_targets.plan_policy(bundle, fleet, now=NOW)
    why = {d.cluster: (d.included, d.stage, d.because) for d in plan.decisions}
    assert [d.cluster for d in plan.decisions] == sorted(c.name for c in fleet)  # every cluster, in or out
    assert why["dev1"][:2] == (False, None) and "environment prod (it is dev)" in why["dev1"][2]
    assert "runs 1.28" in why["old"][2] and "excluded" in why["gone"][2]
    assert "2 free pod slots" in why["full"][2] and "never swept" in why["never"][2]
    assert [(s.name, [c.name for c in s.clusters], s.concurrency) for s in plan.stages] == [
        ("canary", ["e1"], 1), ("rest", ["u1", "u2"], 5)]


def test_a_pick_spreads_over_the_field_one_per_value_first():
    fleet = [cluster(f"{r}-{i}", region=r) for r in ("a", "b", "c") for i in range(3)]
    picked = bundle_targets.pick_spread(fleet, 4, "region")
    assert [c.name for c in picked] == ["a-0", "b-0", "c-0", "a-1"]
    by_team = bundle_targets.pick_spread([cluster("x", team="t1"), cluster("y", team="t1"), cluster("z", team="t2")],
                                         2, "label:team")
    assert [c.name for c in by_team] == ["x", "z"]


def test_policy_objects_reach_every_stage_in_audit_before_any_is_enforced():
    bundle = spec(manifests=[KYVERNO], stages=[{"name": "canary", "selector": {"clusters": ["c1"]}},
                                               {"name": "prod", "approval_required": True}])
    plan = bundle_targets.plan_policy(bundle, [cluster("c1"), cluster("p1")], now=NOW)
    assert [(s.name, s.mode, s.approval_required) for s in plan.stages] == [
        ("canary-audit", "audit", False), ("prod-audit", "audit", False),
        ("canary-enforce", "enforce", False), ("prod-enforce", "enforce", True)]
    plain = bundle_targets.plan_policy(spec(stages=[{"name": "all"}]), [cluster("c1")], now=NOW)
    assert [(s.name, s.mode) for s in plain.stages] == [("all", None)]
    chosen = bundle_targets.plan_policy(spec(manifests=[KYVERNO], stages=[{"name": "all", "mode": "audit"}]),
                                        [cluster("c1")], now=NOW)
    assert [(s.name, s.mode) for s in chosen.stages] == [("all", "audit")]


def test_gates_guard_every_promotion_to_enforce_and_past_an_enforcing_stage():
    def stage(name, mode, *names, status="applied"):
        return PolicyStageState(name=name, mode=mode, concurrency=1, soak_seconds=0, approval_required=False,
                                max_violations=1, clusters=[PolicyClusterState(name=n, status=status) for n in names])
    stages = [stage("c-audit", "audit", "c1"), stage("p-audit", "audit", "p1"), stage("c-enforce", "enforce", "c1"),
              stage("p-enforce", "enforce", "p1")]
    assert bundle_targets.gates_before(stages, 1) == []  # audit blocks nothing
    assert bundle_targets.gates_before(stages, 2) == [(["c1"], 1, "enforcing stage c-enforce")]
    assert bundle_targets.gates_before(stages, 3) == [(["c1"], 1, "promotion past stage c-enforce"),
                                                      (["p1"], 1, "enforcing stage p-enforce")]
    assert bundle_targets.gates_before([stage("a", None, "x"), stage("b", None, "y")], 1) == []


def test_a_revision_given_with_the_bundle_is_worked_out_again_from_its_content():
    from regatta.formats.bundle_file import resolve

    resolved, origins = resolve(spec(revision="typed-by-hand"), base=None)
    assert resolved.revision == bundles.revision(spec()) and origins == [None]
