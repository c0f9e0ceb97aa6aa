"""What keeps a cluster from being deleted, which workloads are the platform's own, and the baseline a new cluster
is born with: pure rules, with expectations written out."""

from __future__ import annotations

from regatta.rules import baseline, bundles, decommissioning


def test_a_cluster_that_serves_traffic_or_holds_a_dr_role_is_not_deleted_and_each_blocker_says_what_to_do():
    assert decommissioning.decommission_blockers({"env": "prod"}) == []
    assert decommissioning.decommission_blockers({"traffic": "draining"}) == []
    blockers = decommissioning.decommission_blockers({"traffic": "serving", "dr-role": "standby"})
    assert blockers == ["it serves traffic (label traffic=serving); shift its traffic away and relabel it first",
                        "it holds the DR role 'standby'; hand the role to another cluster first"]


def test_workloads_outside_the_platforms_namespaces_are_the_teams_and_only_running_ones_count():
    deployments = [("kube-system/coredns", 2, 2), ("velero/velero", 1, 1), ("shop/checkout", 3, 3),
                   ("shop/old", 0, 0), ("platform-team/tool", 1, 1)]
    assert decommissioning.non_system_workloads(deployments) == ["shop/checkout (3 replicas)",
                                                                 "platform-team/tool (1 replicas)"]
    assert decommissioning.is_system_workload("monitoring/prometheus")
    assert not decommissioning.is_system_workload("platform-team/tool")  # a prefix of a system namespace is not one


def test_the_baseline_is_a_bundle_of_namespaces_an_admin_binding_and_default_deny_with_its_own_revision():
    spec = baseline.baseline_bundle(namespaces=["platform", "monitoring"], admin_group="sre")
    kinds = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in spec.manifests]
    assert kinds == [("Namespace", None, "platform"), ("Namespace", None, "monitoring"),
                     ("ClusterRoleBinding", None, "regatta-platform-admins"),
                     ("NetworkPolicy", "platform", "default-deny-ingress"),
                     ("NetworkPolicy", "monitoring", "default-deny-ingress")]
    binding = spec.manifests[2]
    assert binding["roleRef"]["name"] == "cluster-admin" and binding["subjects"][0]["name"] == "sre"
    assert spec.name == "baseline" and spec.revision == bundles.revision(spec)
    # the same inputs give the same revision; another group another one
    assert baseline.baseline_bundle(namespaces=["platform", "monitoring"], admin_group="sre").revision == spec.revision
    assert baseline.baseline_bundle(namespaces=["platform", "monitoring"], admin_group="ops").revision != spec.revision
