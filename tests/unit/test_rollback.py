"""The way back from an upgrade, as each cloud allows it: pure rules, each refusal saying why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from regatta.models import NodePool, UpgradeInsight, VersionChange
from regatta.rules import rollback

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def pools(*versions: str) -> list[NodePool]:
    return [NodePool(name=f"p{i}", version=v, node_count=2) for i, v in enumerate(versions)]


def upgraded(to: str = "1.31", *, ago: timedelta = timedelta(days=1), kind: str = "upgrade") -> VersionChange:
    return VersionChange(kind=kind, version=to, started_at=NOW - ago)


class TestPlanRollback:
    def test_an_eks_upgrade_within_its_window_goes_back_one_minor_pools_ahead_first(self):
        scope = rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31", "1.30", "1.31"),
                                       last_change=upgraded(), now=NOW)
        assert (scope.from_version, scope.to_version, scope.node_pools) == ("1.31", "1.30", ("p0", "p2"))
        assert scope.window_ends == NOW - timedelta(days=1) + timedelta(days=7)

    def test_the_window_is_seven_days_from_when_the_upgrade_began(self):
        just = rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"),
                                      last_change=upgraded(ago=timedelta(days=7)), now=NOW)
        assert just.window_ends == NOW
        with pytest.raises(rollback.CannotRollBack, match="window closed 2026-12-06 11:59Z"):
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"),
                                   last_change=upgraded(ago=timedelta(days=7, minutes=1)), now=NOW)

    def test_a_cluster_created_at_its_version_has_nothing_to_go_back_to(self):
        with pytest.raises(rollback.CannotRollBack, match="created at 1.31"):
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"), last_change=None,
                                   now=NOW)

    def test_no_second_rollback_in_a_row(self):
        with pytest.raises(rollback.CannotRollBack, match="already a rollback to 1.30"):
            rollback.plan_rollback(provider="eks", control_plane="1.30", node_pools=pools("1.30"),
                                   last_change=upgraded("1.30", kind="rollback"), now=NOW)

    def test_a_last_change_to_another_minor_is_not_taken_back(self):
        with pytest.raises(rollback.CannotRollBack, match="moved it to 1.30"):
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"),
                                   last_change=upgraded("1.30"), now=NOW)

    def test_a_node_group_on_its_own_ami_is_refused_before_any_group_moves(self):
        groups = [NodePool(name="general", version="1.31", node_count=2),
                  NodePool(name="hardened", version="1.31", node_count=2, image_type="CUSTOM")]
        with pytest.raises(rollback.CannotRollBack, match="hardened run an AMI of their own launch template"):
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=groups, last_change=upgraded(),
                                   now=NOW)

    def test_ekss_rollback_insights_that_say_error_or_unknown_stop_it_unless_accepted(self):
        insights = [UpgradeInsight(name="skew", status="UNKNOWN", kubernetes_version="1.30", reason="not read yet"),
                    UpgradeInsight(name="apis", status="ERROR", kubernetes_version="1.31", reason="another minor"),
                    UpgradeInsight(name="fine", status="WARNING", kubernetes_version="1.30")]
        with pytest.raises(rollback.RollbackInsights, match="2 problems for 1.30: .*skew.*apis") as stopped:
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"), last_change=upgraded(),
                                   now=NOW, insights=insights)
        assert "fine" not in str(stopped.value)
        with pytest.raises(rollback.RollbackInsights):  # a blank reason is no reason
            rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"), last_change=upgraded(),
                                   now=NOW, insights=insights, accept_insights="  ")
        scope = rollback.plan_rollback(provider="eks", control_plane="1.31", node_pools=pools("1.31"),
                                       last_change=upgraded(), now=NOW, insights=insights, accept_insights="checked")
        assert [insight.name for insight in scope.accepted_insights] == ["skew", "apis"]

    @pytest.mark.parametrize(("provider", "says"), [("gke", "two-step rollback-safe upgrade"),
                                                     ("aks", "never rolls a control plane back"),
                                                     ("kubeconfig", "own hardware")])
    def test_clouds_without_a_way_back_say_so(self, provider, says):
        with pytest.raises(rollback.CannotRollBack, match=says):
            rollback.plan_rollback(provider=provider, control_plane="1.31", node_pools=pools("1.31"),
                                   last_change=upgraded(), now=NOW)
        assert says in rollback.way_back(provider)

    def test_the_plan_says_what_eks_leaves_where_the_upgrade_moved_it(self):
        said = rollback.way_back("eks")
        assert "within 7 days" in said and "add-ons stay" in said
