"""Upgrade readiness (regatta/rules/readiness.py): what a target version would break, found before
anything moves. Expected values are written out by hand from the upstream Deprecated API Migration
Guide and the skew policy, not read back from the table or the code under test."""

from __future__ import annotations

from datetime import date

import pytest

from regatta.formats.fleet_data import api_removals
from regatta.models import ManagedAddon, NodePool, NodeState, PdbState, UpgradeInsight
from regatta.models.readiness import (
    AppliedObject,
    NodePoolRoom,
    RequestedDeprecatedApi,
    RoomPlace,
)
from regatta.rules import readiness, versions
from regatta.rules.versions import IllegalVersionJump, InvalidVersion

TABLE = api_removals()

FLOWSCHEMA_V1BETA3 = AppliedObject(group_version="flowcontrol.apiserver.k8s.io/v1beta3", kind="FlowSchema",
                                   name="platform-probes")


def report(**facts):
    return readiness.readiness_report(cluster="prod-eu-1", table=TABLE, **{"control_plane": "1.29", "target": "1.32", **facts})


class TestPath:
    def test_three_minors_are_three_steps_the_target_last(self):
        assert versions.upgrade_path("1.29", "1.32") == ["1.30", "1.31", "1.32"]

    def test_a_cloud_version_string_is_read_for_its_minor(self):
        assert versions.upgrade_path("v1.30.4-eks-a1b2c3", "1.31") == ["1.31"]

    def test_already_there_is_an_empty_path(self):
        assert versions.upgrade_path("1.31.2", "1.31") == []

    def test_a_downgrade_is_refused(self):
        with pytest.raises(IllegalVersionJump, match="cannot be downgraded"):
            versions.upgrade_path("1.31", "1.30")

    def test_a_target_outside_the_supported_range_is_refused(self):
        with pytest.raises(InvalidVersion, match="not supported"):
            versions.upgrade_path("1.29", "1.40")


class TestRemovalTable:
    # (group/version, kind) -> (removed in, use instead): from the guide, by hand.
    GUIDE = {
        ("policy/v1beta1", "PodDisruptionBudget"): ("1.25", "policy/v1"),
        ("policy/v1beta1", "PodSecurityPolicy"): ("1.25", None),
        ("batch/v1beta1", "CronJob"): ("1.25", "batch/v1"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("1.26", "autoscaling/v2"),
        ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): ("1.27", "storage.k8s.io/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema"): ("1.29", "flowcontrol.apiserver.k8s.io/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration"): ("1.32", "flowcontrol.apiserver.k8s.io/v1"),
    }

    def test_the_shipped_table_says_what_the_guide_says(self):
        table = {(r.group_version, r.kind): (r.removed_in, r.use_instead) for r in TABLE.removals}
        for key, expected in self.GUIDE.items():
            assert table[key] == expected, key

    def test_the_table_is_dated_and_each_successor_is_served_before_the_removal(self):
        assert TABLE.as_of >= date(2026, 12, 6)
        for removal in TABLE.removals:
            if removal.available_since is not None:
                served = tuple(map(int, removal.available_since.split(".")))
                gone = tuple(map(int, removal.removed_in.split(".")))
                assert served <= gone, removal

    def test_a_path_crosses_the_removals_of_its_own_steps_only(self):
        crossed = {(r.group_version, r.removed_in) for r in readiness.removals_crossed(TABLE, ["1.30", "1.31", "1.32"])}
        assert crossed == {("flowcontrol.apiserver.k8s.io/v1beta3", "1.32")}
        assert readiness.removals_crossed(TABLE, ["1.30", "1.31"]) == []


class TestRemovedApis:
    def test_an_object_last_applied_with_a_removed_version_blocks_and_says_where_to_go(self):
        found = report(applied=[FLOWSCHEMA_V1BETA3])
        assert not found.ready
        [finding] = found.findings
        assert finding.id == "removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"
        assert finding.severity == "blocking" and finding.version == "1.32"
        assert finding.objects == ["FlowSchema platform-probes"]
        assert "flowcontrol.apiserver.k8s.io/v1 (served since 1.29)" in finding.what_to_do

    def test_once_the_object_is_migrated_the_cluster_is_ready(self):
        migrated = FLOWSCHEMA_V1BETA3.model_copy(update={"group_version": "flowcontrol.apiserver.k8s.io/v1"})
        found = report(applied=[migrated])
        assert found.ready and found.findings == []

    def test_a_client_requesting_it_blocks_even_with_no_object_stored(self):
        asked = RequestedDeprecatedApi(group="flowcontrol.apiserver.k8s.io", version="v1beta3", resource="flowschemas",
                                       removed_release="1.32")
        [finding] = report(requested=[asked]).findings
        assert finding.severity == "blocking" and "clients still request" in finding.summary

    def test_the_same_client_before_the_removal_is_a_warning_only(self):
        asked = RequestedDeprecatedApi(group="flowcontrol.apiserver.k8s.io", version="v1beta3", resource="flowschemas",
                                       removed_release="1.32")
        found = report(target="1.31", requested=[asked])
        assert found.ready
        [finding] = found.findings
        assert (finding.check, finding.severity) == ("deprecated_api", "warning")
        assert "removed in 1.32" in finding.summary

    def test_a_removal_the_table_does_not_know_is_taken_from_the_api_server(self):
        asked = RequestedDeprecatedApi(group="example.io", version="v1alpha9", resource="widgets", removed_release="1.31")
        [finding] = report(requested=[asked]).findings
        assert finding.id == "removed_api:example.io/v1alpha9/widgets" and finding.severity == "blocking"

    def test_an_api_removed_before_the_cluster_s_version_is_not_crossed(self):
        old = AppliedObject(group_version="policy/v1beta1", kind="PodDisruptionBudget", namespace="shop", name="web")
        assert report(applied=[old]).findings == []


class TestOtherFindings:
    def test_a_budget_that_needs_every_pod_blocks(self):
        tight = PdbState(namespace="shop", name="db", min_available=3, expected_pods=3, current_healthy=3,
                         disruptions_allowed=0)
        loose = PdbState(namespace="shop", name="web", max_unavailable=1, expected_pods=3, current_healthy=3,
                         disruptions_allowed=1)
        [finding] = report(pdbs=[tight, loose]).findings
        assert finding.id == "budget:shop/db" and finding.severity == "blocking"

    def test_each_zone_must_hold_its_own_new_nodes(self):
        # an EKS node takes 30 addresses (itself and 29 pods) in one subnet of the zone it replaces a node in: plenty
        # of room in one zone does not make up for none in another
        def zone(name, free, surge=2):
            return RoomPlace(name=name, free_addresses=free, surge_nodes=surge)

        lopsided = NodePoolRoom(name="system", node_count=4, addresses_per_node=30,
                                places=[zone("us-east-1a", {"subnet-a": 0}), zone("us-east-1b", {"subnet-b": 300})])
        split = NodePoolRoom(name="apps", node_count=4, addresses_per_node=30,  # 59 and 29 hold one node, 60 two
                             places=[zone("us-east-1a", {"subnet-a": 59, "subnet-c": 29}), zone("us-east-1b", {"subnet-b": 60})])
        exact = NodePoolRoom(name="batch", node_count=4, addresses_per_node=30, places=[zone("us-east-1a", {"subnet-a": 60})])
        found = report(rooms=[lopsided, split, exact]).findings
        assert [f.id for f in found] == ["surge_room:apps", "surge_room:system"]
        assert all(f.severity == "blocking" and f.can_accept for f in found)
        assert "us-east-1a holds 0 of its 2 new nodes (subnet-a: 0 free)" in found[1].summary
        assert "us-east-1b" not in found[1].summary
        assert "us-east-1a holds 1 of its 2 new nodes (subnet-a: 59 free, subnet-c: 29 free)" in found[0].summary

    def test_a_pod_range_is_counted_in_whole_blocks(self):
        # a GKE node takes a /24 of the Pod range: 767 free addresses are two blocks, not three
        place = "Pod range 10.4.0.0/14"
        room = NodePoolRoom(name="web", node_count=6, addresses_per_node=256,
                            places=[RoomPlace(name=place, free_addresses={place: 767}, surge_nodes=3)])
        assert room.room(room.places[0]) == 2
        [finding] = report(rooms=[room]).findings
        assert f"{place} holds 2 of its 3 new nodes (767 free)" in finding.summary

    def test_a_blue_green_replacement_needs_room_for_the_whole_pool_in_each_place(self):
        room = NodePoolRoom(name="apps", node_count=5, addresses_per_node=30, places=[
            RoomPlace(name="us-east-1a", free_addresses={"subnet-a": 90}, surge_nodes=2),
            RoomPlace(name="us-east-1b", free_addresses={"subnet-b": 60}, surge_nodes=2)])
        assert not report(rooms=[room]).findings  # a surge of two in each zone fits
        [replacement] = readiness.blue_green_rooms([room])
        assert [place.surge_nodes for place in replacement.places] == [3, 3]  # five nodes over two zones
        assert [f.id for f in report(rooms=[replacement]).findings] == ["surge_room:apps"]

    def test_a_refused_read_is_a_warning_and_a_pools_only_upgrade_is_judged_on_room_alone(self):
        warned = readiness.room_report(cluster="c", control_plane="1.31", target="1.31", rooms=[],
                                       rooms_unread="EC2 refused subnets of c: UnauthorizedOperation")
        [finding] = warned.findings
        assert finding.id == "unreadable:surge_room" and finding.severity == "warning" and warned.ready

    def test_an_eks_nodes_addresses_are_its_kubelets_max_pods_and_itself(self):
        rooms = [NodePoolRoom(name="apps", node_count=2, places=[]), NodePoolRoom(name="unread", node_count=2, places=[])]
        nodes = [NodeState(name="n1", pool="apps", version="v1.31.1", ready=True, unschedulable=False, allocatable_pods=29),
                 NodeState(name="n2", pool="apps", version="v1.31.1", ready=True, unschedulable=False, allocatable_pods=17),
                 NodeState(name="n3", pool="batch", version="v1.31.1", ready=True, unschedulable=False, allocatable_pods=58)]
        # a pool none of whose nodes was read takes what the cluster's largest node takes, not one address
        assert [room.addresses_per_node for room in readiness.with_node_addresses(rooms, nodes)] == [30, 59]
        assert [room.addresses_per_node for room in readiness.with_node_addresses(rooms, [])] == [1, 1]

    def test_a_pool_that_surges_none_needs_no_room_but_its_blue_green_replacement_does(self):
        place = "Pod range 10.8.0.0/22"
        room = NodePoolRoom(name="batch", node_count=1, addresses_per_node=256,
                            places=[RoomPlace(name=place, free_addresses={place: 0}, surge_nodes=0)])
        assert not report(rooms=[room]).findings
        assert [f.id for f in report(rooms=readiness.blue_green_rooms([room])).findings] == ["surge_room:batch"]

    def test_cloud_insights_error_blocks_warning_warns_passing_is_silent(self):
        insights = [UpgradeInsight(name=name, status=status, kubernetes_version="1.30", reason=f"{name} says so")
                    for name, status in [("Deprecated APIs", "ERROR"), ("Kubelet skew", "WARNING"), ("Add-on", "PASSING")]]
        found = report(insights=insights)
        assert [(f.id, f.severity) for f in found.findings] == [("cloud_insight:Deprecated APIs", "blocking"),
                                                                ("cloud_insight:Kubelet skew", "warning")]

    def test_a_pool_four_minors_behind_the_first_step_blocks(self):
        pools = [NodePool(name="old", version="1.26", node_count=3), NodePool(name="ok", version="1.27", node_count=3)]
        [finding] = report(node_pools=pools).findings  # first step 1.30: 1.26 is 4 behind, 1.27 is 3
        assert finding.id == "skew:old" and "at least 1.27" in finding.what_to_do

    def test_managed_add_ons_with_no_version_for_the_target_block_and_the_ones_the_upgrade_moves_are_said(self):
        found = report(addons=[
            ManagedAddon(name="vpc-cni", version="v1.18.0", default_version="v1.19.0", compatible=False),
            ManagedAddon(name="coredns", version="v1.11.4", default_version="v1.11.4", compatible=True),
            ManagedAddon(name="vendor-mesh", version="2.1", default_version=None, compatible=False),
        ])
        assert [(f.id, f.severity) for f in found.findings] == [("addon:vendor-mesh", "blocking"), ("addon:vpc-cni", "info")]
        assert "moves it to v1.19.0" in found.findings[1].summary


class TestGate:
    def test_blocking_findings_refuse_by_id_and_say_what_to_do(self):
        found = report(applied=[FLOWSCHEMA_V1BETA3])
        with pytest.raises(readiness.NotReady) as refused:
            readiness.refuse_unless_ready(found)
        assert "[removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema]" in str(refused.value)
        assert refused.value.error_type == "NotReadyForUpgrade"

    def test_an_accepted_finding_lets_the_upgrade_through_and_is_returned_for_the_audit(self):
        found = report(applied=[FLOWSCHEMA_V1BETA3])
        accepted = readiness.refuse_unless_ready(found, ["removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"])
        assert [f.id for f in accepted] == ["removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"]

    def test_accepting_one_finding_does_not_accept_another(self):
        tight = PdbState(namespace="shop", name="db", min_available=1, expected_pods=1, current_healthy=1,
                         disruptions_allowed=0)
        found = report(applied=[FLOWSCHEMA_V1BETA3], pdbs=[tight])
        with pytest.raises(readiness.NotReady, match=r"\[budget:shop/db\]"):
            readiness.refuse_unless_ready(found, ["removed_api:flowcontrol.apiserver.k8s.io/v1beta3/FlowSchema"])

    def test_a_finding_that_is_not_for_accepting_refuses_even_when_named(self):
        tight = PdbState(namespace="shop", name="db", min_available=1, expected_pods=1, current_healthy=1,
                         disruptions_allowed=0)
        with pytest.raises(readiness.NotReady, match=r"\[budget:shop/db\].*not one to accept"):
            readiness.refuse_unless_ready(report(pdbs=[tight]), ["budget:shop/db"])

    def test_a_cluster_whose_api_usage_could_not_be_read_is_warned_about_not_refused(self):
        found = readiness.readiness_report(cluster="c", control_plane="1.31", target="1.32", table=api_removals(),
                                           usage_unread="403 Forbidden: may not GET /metrics")
        assert [(f.id, f.severity) for f in found.findings] == [("unreadable:api_usage", "warning")]
        assert found.ready and "403 Forbidden" in found.findings[0].summary

    def test_warnings_never_refuse(self):
        found = report(insights=[UpgradeInsight(name="x", status="WARNING", kubernetes_version="1.32")])
        assert found.ready and readiness.refuse_unless_ready(found) == []


class TestWhatTheClusterSays:
    """What Regatta reads from a cluster's API server (regatta/kube/api_usage.py), including what a
    hostile or broken one sends."""

    METRICS = """# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1
apiserver_requested_deprecated_apis{group="",removed_release="",resource="componentstatuses",subresource="",version="v1"} 1
apiserver_request_total{code="200",verb="GET"} 123456
apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 0
"""

    def test_the_gauge_s_series_at_one_are_read_and_every_other_metric_passed_over(self):
        from regatta.kube.api_usage import deprecated_series

        found = deprecated_series(self.METRICS.splitlines())
        assert [(s.group_version, s.resource, s.removed_release) for s in found] == [
            ("flowcontrol.apiserver.k8s.io/v1beta3", "flowschemas", "1.32"), ("v1", "componentstatuses", "")]

    def test_a_hostile_label_is_cut_short(self):
        from regatta.kube.api_usage import MAX_LABEL, deprecated_series

        [series] = deprecated_series([f'apiserver_requested_deprecated_apis{{group="g",resource="{"x" * 5000}",'
                                      'version="v1beta1",removed_release="1.32",subresource=""} 1'])
        assert len(series.resource) == MAX_LABEL

    def test_a_garbled_line_costs_only_itself(self):
        from regatta.kube.api_usage import deprecated_series

        garbled = ['apiserver_requested_deprecated_apis{group="x" 1 oops {{',
                   'apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",'
                   'subresource="",version="v1beta1"} 1']
        assert [s.resource for s in deprecated_series(garbled)] == ["cronjobs"]

    def test_what_a_manifest_was_applied_with_and_what_does_not_count(self):
        from regatta.kube.api_usage import LAST_APPLIED, written_with

        item = {"metadata": {"managedFields": [
            {"manager": "helm", "operation": "Apply", "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3"},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta2"},
        ], "annotations": {LAST_APPLIED: '{"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler"}'}}}
        assert written_with(item) == {"flowcontrol.apiserver.k8s.io/v1beta3", "autoscaling/v2beta2"}

    def test_a_malformed_object_says_nothing_rather_than_failing_the_read(self):
        from regatta.kube.api_usage import LAST_APPLIED, written_with

        nested = "[" * 100_000 + "]" * 100_000
        for item in ("not an object", {"metadata": "x"}, {"metadata": {"managedFields": "x", "annotations": []}},
                     {"metadata": {"managedFields": [1, None, {"operation": "Apply"}], "annotations": {LAST_APPLIED: nested}}},
                     {"metadata": {"annotations": {LAST_APPLIED: "{not json"}}}):
            assert written_with(item) == set(), item
