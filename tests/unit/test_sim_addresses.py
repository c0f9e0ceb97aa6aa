"""How the simulated clouds count addresses (regatta/sim/addresses.py), against the clouds' own tables:
GKE's Pod block per node by max pods, and where an EKS node of a group lands."""

from __future__ import annotations

import pytest

from regatta.clouds.eks import group_surge as eks_surge
from regatta.sim import addresses


@pytest.mark.parametrize(("max_pods", "prefix"), [(110, 24), (64, 25), (65, 24), (32, 26), (8, 28), (256, 23)])
def test_a_gke_node_takes_the_smallest_block_with_twice_its_pods(max_pods, prefix):
    # GKE's table of max pods per node against the node's Pod CIDR block
    assert addresses.gke_pod_cidr_size(max_pods) == prefix


def test_an_eks_node_goes_to_the_roomiest_subnet_of_its_group_or_nowhere():
    assert addresses.pick_subnet(["a", "b"], {"a": 40, "b": 70}, 30) == "b"
    assert addresses.pick_subnet(["a", "b"], {"a": 29, "b": 10}, 30) is None
    assert addresses.pick_subnet(["a", "b"], {"a": 0, "b": None}, 30) == "b"  # a subnet not counted always has room
    assert addresses.subnet_available(251, 260) == 0 and addresses.subnet_available(None, 10_000) == 8187


def test_an_eks_update_adds_its_max_unavailable_or_none_under_minimal():
    group = {"scalingConfig": {"desiredSize": 10}}
    assert eks_surge({**group}) == 1  # maxUnavailable's default
    assert eks_surge({**group, "updateConfig": {"maxUnavailable": 3}}) == 3
    assert eks_surge({**group, "updateConfig": {"maxUnavailablePercentage": 25}}) == 3  # a quarter of 10, rounded up
    assert eks_surge({**group, "updateConfig": {"maxUnavailable": 3, "updateStrategy": "MINIMAL"}}) == 0


@pytest.mark.parametrize(("given", "says"), [("banana", "is not an IPv4 block"), ("10.0.0.0/28", "must be a /9 to a /24"),
                                             ("10.0.0.0/8", "must be a /9 to a /24")])
def test_a_gke_pod_range_the_fleet_file_gives_is_checked_before_it_loads(given, says):
    from regatta.formats.fleet_file import FleetSpec

    cluster = {"name": "g", "provider": "gke", "region": "us-central1", "version": "1.32",
               "node_pools": [{"name": "p", "nodes": 1}], "cloud": {"clusterIpv4Cidr": given}}
    with pytest.raises(ValueError, match=says):
        FleetSpec.model_validate({"clusters": [cluster]})
