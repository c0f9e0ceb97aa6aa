"""Which worker runs an activity for a cluster in a private network's site, and how long an
operation waits for an absent agent before it says so again."""

from __future__ import annotations

import pytest

from regatta.rules.sites import (
    AGENT_ANSWER_CAP_SECONDS,
    SiteNameRefused,
    agent_wait_seconds,
    check_site_name,
    reaches_cloud_and_cluster,
    runs_at_site,
    site_task_queue,
    waiting_for_agent,
)


def test_calls_to_the_clusters_own_api_run_at_the_site_and_a_managed_clouds_api_stays_central():
    assert runs_at_site("kube.drain_nodes", provider="eks")
    assert runs_at_site("kube.health_gate", provider=None)
    assert not runs_at_site("cloud.start_node_pool_upgrade", provider="eks")
    assert not runs_at_site("inventory.get_cluster", provider="kubeconfig")
    # on your own hardware the "cloud" is the cluster's API server
    assert runs_at_site("cloud.describe_cluster", provider="kubeconfig")


def test_one_call_may_reach_the_cloud_and_the_cluster_unless_a_managed_cluster_sits_behind_a_site():
    assert reaches_cloud_and_cluster(provider="eks", site=None)
    assert reaches_cloud_and_cluster(provider="kubeconfig", site="dc1")  # both at the site
    assert not reaches_cloud_and_cluster(provider="eks", site="dc1")  # the cloud centrally, the API at the site
    assert not reaches_cloud_and_cluster(provider="gke", site="factory-berlin")


def test_a_sites_queue_sits_beside_the_main_one():
    assert site_task_queue("regatta", "dc1") == "regatta-site-dc1"


def test_the_wait_for_an_absent_agent_doubles_up_to_a_cap():
    waits = [agent_wait_seconds(n) for n in range(12)]
    assert waits[:3] == [10.0, 20.0, 40.0]
    assert waits == sorted(waits) and waits[-1] == AGENT_ANSWER_CAP_SECONDS
    assert agent_wait_seconds(10_000) == AGENT_ANSWER_CAP_SECONDS
    assert "waiting for the agent of site dc1" in waiting_for_agent("dc1", 30)


@pytest.mark.parametrize("name", ["DC1", "dc_1", "-dc1", "", "x" * 41])
def test_a_site_name_the_inventory_could_not_hold_is_refused(name: str):
    with pytest.raises(SiteNameRefused, match="lowercase letters, digits and dashes"):
        check_site_name(name)


def test_clusters_named_by_name_are_grouped_by_the_worker_that_reaches_them():
    from regatta.models.policy import DriftTarget
    from regatta.rules.bundle_targets import by_site, drift_batches

    sites = {"b": "dc2", "c": "dc1", "e": "dc1"}
    assert by_site(["a", "b", "c", "d", "e"], sites) == [(None, ["a", "d"]), ("dc1", ["c", "e"]), ("dc2", ["b"])]
    assert by_site(["a", "d"], {}) == [(None, ["a", "d"])]  # a fleet without sites: one call, as before
    targets = [DriftTarget(cluster=name, bundle="x", revision="r", site=sites.get(name)) for name in "abcde"]
    batches = drift_batches(targets, 1)
    assert [(site, [t.cluster for t in batch]) for site, batch in batches] == [
        (None, ["a"]), (None, ["d"]), ("dc1", ["c"]), ("dc1", ["e"]), ("dc2", ["b"])]
    plain = [DriftTarget(cluster=name, bundle="x", revision="r") for name in "abc"]
    assert [[t.cluster for t in batch] for _, batch in drift_batches(plain, 2)] == [["a", "b"], ["c"]]
    # a target reached centrally is written as before: no `site` key an older worker would refuse
    assert "site" not in plain[0].model_dump() and targets[1].model_dump()["site"] == "dc2"
