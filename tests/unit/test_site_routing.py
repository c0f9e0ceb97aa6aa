"""Routing by the target: every activity that may run at a site's agent takes a request that says where the clusters it
acts on are reached, and the call goes where that says, whatever the request's shape. (The bug this holds off: a
bundle given to a site's cluster by a request that named the cluster by name alone went to the central queue, where
the cluster's credentials are refused.)"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing

import pytest

import activities
from regatta.models import Activity, ClusterRef, SweepClusters
from regatta.models.fleet import Targeted, TargetsAtSite, TargetsByRef
from regatta.models.policy import GiveBundle, SweepDrift, WithdrawBundle
from regatta.rules.sites import runs_at_site
from workflows.pieces.calls import site_of

# Request shapes an activity still accepts from runs recorded before their requests named their target, and the patch
# after which no run sends them.
RECORDED_BEFORE = {Activity.SWEEP_CLUSTERS.value: (list[str], "sweep-batch-targeted")}


def activity_requests() -> dict[str, object]:
    """Every activity's name → the type of the one argument it takes."""
    found: dict[str, object] = {}
    for module in pkgutil.iter_modules(activities.__path__):
        for host in vars(importlib.import_module(f"activities.{module.name}")).values():
            if not inspect.isclass(host) or not host.__module__.startswith("activities."):
                continue
            for function in vars(host).values():
                definition = getattr(function, "__temporal_activity_definition", None)
                if definition is None:
                    continue
                hints = typing.get_type_hints(function)
                parameters = [name for name in inspect.signature(function).parameters if name != "self"]
                found[definition.name] = hints[parameters[0]] if parameters else None
    return found


def test_every_activity_that_runs_at_a_site_takes_a_request_that_names_its_target():
    requests = activity_requests()
    at_sites = {name: request for name, request in requests.items() if runs_at_site(name, provider="kubeconfig")}
    assert Activity.GIVE_BUNDLE.value in at_sites and Activity.DRAIN_NODES.value in at_sites  # the walk found them
    assert len(at_sites) >= 40, sorted(at_sites)
    untargeted = {}
    for name, request in at_sites.items():
        shapes = typing.get_args(request) if isinstance(request, types.UnionType) else (request,)
        recorded_before = RECORDED_BEFORE.get(name, (None, ""))[0]
        if not all((inspect.isclass(shape) and issubclass(shape, Targeted)) or shape == recorded_before
                   for shape in shapes) or not any(inspect.isclass(s) and issubclass(s, Targeted) for s in shapes):
            untargeted[name] = request
    assert not untargeted, f"these take a request that does not say where its cluster is reached: {untargeted}"


def test_each_shape_of_target_reads_the_field_it_names():
    def subclasses(base: type) -> set[type]:
        return {sub for direct in base.__subclasses__() for sub in {direct, *subclasses(direct)}}

    by_ref, at_site = subclasses(TargetsByRef), subclasses(TargetsAtSite)
    assert by_ref and at_site
    for model in by_ref:
        assert model.model_fields["cluster"].annotation is ClusterRef, model  # type: ignore[attr-defined]
    for model in at_site:
        assert "site" in model.model_fields, model  # type: ignore[attr-defined]


def ref(provider: str, site: str | None) -> ClusterRef:
    return ClusterRef(name="c1", provider=provider, region="r1", site=site)  # type: ignore[arg-type]


@pytest.mark.parametrize(("activity", "request_", "site"), [
    (Activity.DRAIN_NODES, ref("eks", "dc5"), "dc5"),             # the cluster's API: at its site
    (Activity.DESCRIBE_CLUSTER, ref("eks", "dc5"), None),         # EKS's own API is public: centrally
    (Activity.DESCRIBE_CLUSTER, ref("kubeconfig", "dc5"), "dc5"),  # own hardware: its "cloud" is its API server
    (Activity.DRAIN_NODES, ref("eks", None), None),
    (Activity.GIVE_BUNDLE, GiveBundle(bundle="b", revision="r1", cluster="c1", site="dc5", mode="enforce"), "dc5"),
    (Activity.GIVE_BUNDLE, GiveBundle(bundle="b", revision="r1", cluster="c1", mode="enforce"), None),
    (Activity.WITHDRAW_BUNDLE, WithdrawBundle(bundle="b", cluster="c1", site="factory-berlin"), "factory-berlin"),
    (Activity.SWEEP_DRIFT, SweepDrift(targets=[], site="dc5"), "dc5"),
    (Activity.SWEEP_CLUSTERS, SweepClusters(names=["c1", "c2"], site="dc5"), "dc5"),
    (Activity.SWEEP_CLUSTERS, SweepClusters(names=["c1"]), None),
    (Activity.SWEEP_CLUSTERS, ["c1", "c2"], None),                 # recorded before: routed by its caller
    (Activity.GET_CLUSTER, "c1", None),                            # the inventory: centrally
])
def test_a_call_goes_where_its_request_says_the_cluster_is_reached(activity, request_, site):
    assert site_of(activity, request_) == site
