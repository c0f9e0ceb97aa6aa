"""The drift rules: only the fields Regatta set are compared, quantities the API server rewrites
are the same value, ignored paths and known noise are never drift, the manager that owns a
changed field is named, and a suppression covers only what it says, only until it ends."""

from __future__ import annotations

from datetime import UTC, datetime

from regatta.models.policy import BundleObjectKey, DriftIgnore, DriftSuppression
from regatta.rules import drift

KEY = BundleObjectKey(api_version="v1", kind="ConfigMap", namespace="kube-system", name="limits")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_only_what_regatta_set_is_compared_and_rewritten_quantities_are_the_same():
    applied = {"data": {"level": "low"}, "spec": {"cpu": "1000m", "memory": "1Gi", "replicas": 2, "ports": [80, 443]}}
    live = {"data": {"level": "low", "added": "by someone"}, "status": {"x": 1},
            "spec": {"cpu": "1", "memory": "1024Mi", "replicas": "2", "ports": [80, 443]}}
    assert drift.differences(applied, live) == []
    live["spec"]["ports"] = [80]
    live["data"]["level"] = "high"
    changed = {(f.path, str(f.before), str(f.after)) for f in drift.differences(applied, live)}
    assert changed == {("/data/level", "low", "high"), ("/spec/ports", "[80, 443]", "[80]")}
    assert not drift.same_value(True, 1) and not drift.same_value("1Gi", "1G")


def test_ignore_rules_match_their_objects_and_known_noise_is_always_ignored():
    rules = [DriftIgnore(match={"kind": "ConfigMap"}, paths=["/data/cache"])]
    assert drift.ignored("/data/cache", KEY, rules) and drift.ignored("/data/cache/x", KEY, rules)
    assert not drift.ignored("/data/cached", KEY, rules)
    other = KEY.model_copy(update={"kind": "Secret"})
    assert not drift.ignored("/data/cache", other, rules)
    assert drift.ignored("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration", other, [])


def test_the_changer_is_the_manager_other_than_regatta_owning_the_deepest_part_of_the_path():
    managed = [
        {"manager": "regatta", "operation": "Apply", "fieldsV1": {"f:data": {"f:level": {}}}, "time": "t0"},
        {"manager": "helm", "operation": "Update", "fieldsV1": {"f:data": {".": {}}}, "time": "t1"},
        {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:level": {}}}, "time": "t2"},
    ]
    assert drift.who_changed(managed, "/data/level") == ("kubectl-edit", "t2")
    assert drift.who_changed(managed, "/data/other") == ("helm", "t1")
    assert drift.who_changed(managed[:1], "/data/level") == (None, None)
    keyed = [{"manager": "hpa", "fieldsV1": {"f:metadata": {"f:annotations": {"f:a/b": {}}}}, "time": "t3"}]
    assert drift.who_changed(keyed, "/metadata/annotations/a~1b") == ("hpa", "t3")


def test_a_suppression_covers_only_its_object_and_paths_and_only_until_it_ends():
    def suppression(**fields):
        return DriftSuppression(**{"cluster": "c1", "bundle": "b", "reason": "load test", "ticket": "CHG-1",
                                   "until": datetime(2026, 12, 2, tzinfo=UTC), **fields})

    def covers(s, paths=("/data/level",), key=KEY, at=NOW):
        return drift.suppression_for([s], cluster="c1", bundle="b", key=key, paths=list(paths), at=at) is not None

    assert covers(suppression())
    assert covers(suppression(path="/data"))
    assert not covers(suppression(path="/data"), paths=("/data/level", "/metadata/labels/x"))
    assert not covers(suppression(match={"name": "other"}))
    assert not covers(suppression(), at=datetime(2026, 12, 3, tzinfo=UTC))
    assert not covers(suppression(cluster="c2"))
