"""The fleet table's rules: what a query keeps, sorting by derived columns (cost, end of support,
the next window) with the unknown last, pages, and the next maintenance window from the
scheduled waves that take a cluster (outside their freezes)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from regatta.formats import fleet_data
from regatta.models import ClusterRecord, MaintenanceHold, NodePool, PatchWaveInput
from regatta.models.fleet_view import FleetQuery
from regatta.rules import fleet_view

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)  # a Tuesday


def cluster(name: str, *, env: str = "prod", nodes: int = 3, version: str = "1.31", team: str = "shop") -> ClusterRecord:
    return ClusterRecord(name=name, provider="eks", region="us-east-1", environment=env, labels={"team": team},
                         control_plane_version=version, health="healthy",
                         node_pools=[NodePool(name="p", version=version, node_count=nodes, node_size="m5.large")])


def facts(**more) -> fleet_view.FleetViewFacts:
    return fleet_view.FleetViewFacts(prices=fleet_data.price_list(""), calendar=fleet_data.support_calendar(),
                                     today=date(2026, 12, 1), now=NOW, **more)


def wave(name: str, *, team: str, days: list[str], start: str, freezes: list | None = None) -> PatchWaveInput:
    return PatchWaveInput.model_validate({
        "name": name, "target_version": "1.32", "selector": {"labels": {"team": team}}, "stages": [{"name": "all"}],
        "maintenance_windows": [{"days": days, "start": start, "duration_minutes": 120, "timezone": "UTC"}],
        "freezes": freezes or []})


def test_filters_sort_by_derived_columns_and_pages():
    fleet = [cluster("a", nodes=1), cluster("b", nodes=9, env="dev"), cluster("c", nodes=5, version="1.35", team="web")]
    rows, total = fleet_view.page_of(fleet, FleetQuery(sort="cost", descending=True), facts())
    assert [r.name for r in rows] == ["b", "c", "a"] and total == 3
    rows, total = fleet_view.page_of(fleet, FleetQuery(environment="prod", labels={"team": "web"}), facts())
    assert [r.name for r in rows] == ["c"] and total == 1
    rows, _ = fleet_view.page_of(fleet, FleetQuery(sort="end_of_support", descending=True), facts())
    assert rows[0].name == "c" and rows[0].support.startswith("until 2027-03-27")
    rows, total = fleet_view.page_of(fleet, FleetQuery(per_page=2, page=2), facts())
    assert [r.name for r in rows] == ["c"] and total == 3
    rows, _ = fleet_view.page_of(fleet, FleetQuery(compliance="non_compliant"),
                                 facts(compliance={"b": {"non_compliant": 1}}))
    assert [r.name for r in rows] == ["b"]
    with pytest.raises(ValueError, match="sort by one of"):
        fleet_view.sort_key("colour", facts())


def test_the_next_window_comes_from_the_scheduled_waves_that_take_the_cluster():
    scheduled = [("patch-shop-weekly", wave("w1", team="shop", days=["thu"], start="02:00")),
                 ("patch-shop-daily", wave("w2", team="shop", days=["wed"], start="01:00")),
                 ("patch-web", wave("w3", team="web", days=["tue", "wed"], start="03:00", freezes=[
                     {"name": "launch", "start": "2026-12-01T00:00:00Z", "end": "2026-12-04T00:00:00Z"}]))]
    known = facts(scheduled=scheduled)
    assert fleet_view.next_window(cluster("a"), known) == (datetime(2026, 12, 2, 1, tzinfo=UTC), "patch-shop-daily")
    # the web team's windows fall in the launch freeze until Friday: the next Tuesday's opens first after it
    assert fleet_view.next_window(cluster("c", team="web"), known) == (datetime(2026, 12, 8, 3, tzinfo=UTC), "patch-web")
    assert fleet_view.next_window(cluster("z", team="none"), known) == (None, "")
    rows, _ = fleet_view.page_of([cluster("z", team="none"), cluster("c", team="web"), cluster("a")],
                                 FleetQuery(sort="next_window"), known)
    assert [r.name for r in rows] == ["a", "c", "z"] and rows[0].next_window_schedule == "patch-shop-daily"


def test_no_window_is_named_for_a_cluster_the_scheduled_wave_would_not_upgrade():
    known = facts(scheduled=[("patch-shop", wave("w", team="shop", days=["wed"], start="01:00"))])
    assert fleet_view.next_window(cluster("at", version="1.32"), known) == (None, "")  # at the wave's target already
    staged = PatchWaveInput.model_validate({
        "name": "w", "target_version": "1.32", "selector": {"labels": {"team": "shop"}},
        "stages": [{"name": "canary", "selector": {"labels": {"tier": "canary"}}}],
        "maintenance_windows": [{"days": ["wed"], "start": "01:00", "duration_minutes": 120, "timezone": "UTC"}]})
    assert fleet_view.next_window(cluster("unstaged"), facts(scheduled=[("s", staged)])) == (None, "")  # no stage does
    held = cluster("held").model_copy(update={"hold": MaintenanceHold(
        reason="quarter end", held_by="alice", until=datetime(2026, 12, 3, tzinfo=UTC))})
    # the Wednesday window falls inside the hold: the wave would start it the Wednesday after
    assert fleet_view.next_window(held, known) == (datetime(2026, 12, 9, 1, tzinfo=UTC), "patch-shop")
