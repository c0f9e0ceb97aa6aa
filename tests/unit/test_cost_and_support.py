"""Cost from node pools and the price list (and a price file that overrides it), cost per
environment and per label, utilization, the end of standard support from the calendar (upstream
where a cloud has none), skew, and node image ages from the names the clouds give them."""

from __future__ import annotations

from datetime import date

import pytest

from regatta.formats import fleet_data
from regatta.models import ClusterRecord, NodePool
from regatta.rules import cost, support


def cluster(name: str, provider: str = "eks", *, env: str = "prod", version: str = "1.31", team: str = "shop",
            pools: list[tuple[str, int, str]] = (("m5.large", 3, "1.31"),), image: str | None = None) -> ClusterRecord:
    return ClusterRecord(name=name, provider=provider, region="r", environment=env, labels={"team": team},
                         control_plane_version=version,
                         node_pools=[NodePool(name=f"p{i}", version=v, node_count=n, node_size=size, node_image=image)
                                     for i, (size, n, v) in enumerate(pools)])


def test_a_cluster_costs_its_nodes_and_its_control_plane_and_says_what_it_could_not_price():
    prices = fleet_data.price_list("")
    three = cost.cluster_cost(cluster("a"), prices)
    assert three.hourly == pytest.approx(0.10 + 3 * 0.096) and three.monthly == pytest.approx(three.hourly * 730, abs=0.01)
    odd = cost.cluster_cost(cluster("b", pools=[("m5.large", 1, "1.31"), ("x9.huge", 2, "1.31")]), prices)
    assert odd.unpriced == ["p1 (x9.huge)"] and odd.hourly == pytest.approx(0.196)


def test_a_price_file_replaces_only_the_entries_it_gives(tmp_path):
    mine = tmp_path / "prices.yaml"
    mine.write_text("as_of: 2026-11-30\nclouds:\n  eks:\n    nodes:\n      m5.large: 0.05\n")
    prices = fleet_data.price_list(str(mine))
    assert prices.as_of == date(2026, 11, 30)
    assert prices.clouds["eks"].nodes["m5.large"] == 0.05 and prices.clouds["eks"].nodes["m5.xlarge"] == 0.192
    assert prices.clouds["eks"].control_plane_hourly == 0.10
    broken = tmp_path / "broken.yaml"
    broken.write_text("clouds:\n  eks:\n    nodes:\n      m5.large: cheap\n")
    with pytest.raises(fleet_data.FleetDataError, match=r"broken.yaml:4: clouds.eks.nodes.m5.large"):  # its line
        fleet_data.price_list(str(broken))
    with pytest.raises(fleet_data.FleetDataError, match="cannot be read"):
        fleet_data.price_list(str(tmp_path / "missing.yaml"))


def test_cost_per_environment_and_per_label_the_dearest_first():
    prices = fleet_data.price_list("")
    fleet = [cluster("a"), cluster("b", env="dev", team="web", pools=[("m5.large", 1, "1.31")]),
             cluster("c", team="web", pools=[("m5.2xlarge", 2, "1.31")])]
    by_env = cost.cost_by(fleet, prices, "environment")
    assert list(by_env) == ["prod", "dev"] and by_env["dev"] == pytest.approx((0.1 + 0.096) * 730, abs=0.01)
    assert list(cost.cost_by(fleet, prices, "label:team")) == ["web", "shop"]
    with pytest.raises(ValueError, match="label:<key>"):
        cost.grouping(fleet[0], "colour")


def test_utilization_is_requested_over_allocatable_from_the_last_sweep():
    swept = cluster("a").model_copy(update={"cpu_allocatable_m": 4000, "cpu_requested_m": 1000,
                                            "memory_allocatable_mi": 8000, "memory_requested_mi": 6000})
    assert cost.utilization(swept) == (0.25, 0.75)
    assert cost.utilization(cluster("never-swept")) == (None, None)


def test_end_of_support_comes_from_the_cloud_calendar_or_upstream():
    calendar = fleet_data.support_calendar()
    today = date(2026, 12, 1)
    assert support.end_of_support(cluster("a", "eks", version="1.31"), calendar) == (date(2025, 11, 26), "eks")
    assert support.support_words(cluster("a", "eks", version="1.31"), calendar, today=today) == "ended 2025-11-26"
    assert support.support_words(cluster("b", "eks", version="1.35"), calendar, today=today) == "until 2027-03-27, 116 days"
    assert support.end_of_support(cluster("c", "aks", version="1.33"), calendar) == (date(2026, 6, 28), "upstream")
    assert support.end_of_support(cluster("d", "gke", version="1.99"), calendar)[0] is None


def test_skew_and_the_age_of_the_oldest_node_image():
    today = date(2026, 12, 1)
    behind = cluster("a", version="1.31", pools=[("m5.large", 1, "1.31"), ("m5.large", 1, "1.29")])
    assert support.skew(behind) == 2 and support.skew(cluster("b")) == 0
    eks = cluster("e", image="1.31.2-20261101")
    assert support.oldest_image_age_days(eks, today=today) == 30
    aks = cluster("k", "aks", image="AKSUbuntu-2204gen2containerd-202611.20.0")
    assert support.image_built("aks", aks.node_pools[0].node_image) == date(2026, 11, 20)
    assert support.oldest_image_age_days(cluster("g", "gke", image="1.31.5-gke.1200"), today=today) is None
