"""Room for a surge, read from the clouds: an EKS node group whose subnets in a zone have no addresses left
for the nodes its update adds there (EC2 DescribeSubnets), and a GKE pool whose cluster's Pod range has no
blocks left (NodeNetworkConfig.podIpv4RangeUtilization), are blocking readiness findings, and the upgrade a
finding warns of fails there on the simulated cloud as it would on the real one. Pools that remove a node
before they add one need no room; a blue/green replacement needs room for the whole pool; a read the cloud
refuses is a warning, never a stop."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from regatta.clouds.eks import EksProvider
from regatta.clouds.gke import GkeProvider
from regatta.formats.fleet_file import FleetSpec
from regatta.inventory import readiness_check
from regatta.inventory.sweep import records_from_fleet
from regatta.kube.connect import ClusterConnections
from regatta.models import CloudOperation
from regatta.rules import readiness
from tests.conftest import sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http

DEFAULT_SUBNETS = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"]


def tight_subnets() -> list[str]:
    """Two subnets of the test's own (zones a and b, after the three defaults): what earlier tests' nodes hold in
    theirs is not counted against them."""
    return [f"subnet-{uuid.uuid4().hex[:17]}" for _ in range(2)]


def load(simulator, inventory, clusters: list[dict], accounts: dict | None = None) -> None:
    fleet = FleetSpec.model_validate({"clusters": clusters, **({"accounts": accounts} if accounts else {})})
    http.post(f"{simulator.url}/sim/clusters", json=fleet.model_dump(), timeout=30).raise_for_status()
    for record in records_from_fleet(fleet):
        inventory.upsert_cluster(record)


def eks_with(tight: list[str], *pools: dict, sizes: tuple[int, int] = (50, 50), version: str = "1.32") -> tuple[dict, dict]:
    name = f"room-{uuid.uuid4().hex[:6]}"
    return ({"name": name, "provider": "eks", "region": "us-east-1", "version": version, "labels": {"env": "staging"},
             "node_pools": list(pools)},
            {"eks": {"subnets": DEFAULT_SUBNETS + tight, "subnet_addresses": dict(zip(tight, sizes, strict=True))}})


def pool(name: str, nodes: int, **more) -> dict:
    return {"name": name, "nodes": nodes, "node_size": more.pop("node_size", "m5.large"), **more}


def surge_findings(report) -> dict[str, str]:
    return {finding.id: finding.summary for finding in report.findings if finding.check == "surge_room"}


def finish(provider, ref, started: CloudOperation) -> CloudOperation:
    deadline = time.monotonic() + 60
    while (polled := provider.poll_operation(ref, started)).status == "in_progress":
        assert time.monotonic() < deadline, polled
        time.sleep(0.2)
    return polled


def test_an_eks_group_whose_zones_are_full_blocks_and_its_update_fails_there(simulator, inventory):
    tight = tight_subnets()
    # Two subnets of 50 addresses in two zones: each m5.large node holds 30 (itself and 29 pods under the VPC CNI), so
    # the group's two nodes, one a zone, leave 20 in each; its update adds up to two nodes in each zone.
    cluster, accounts = eks_with(tight, pool("tight", 2, version="1.31", subnets=tight), pool("roomy", 2, version="1.31"))
    load(simulator, inventory, [cluster], accounts)
    record = inventory.get_cluster(cluster["name"])
    connections = ClusterConnections(sim_url=simulator.url)

    ec2 = boto3.client("ec2", endpoint_url=simulator.url, region_name="us-east-1",
                       aws_access_key_id="regatta-sim", aws_secret_access_key="regatta-sim")
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=tight + DEFAULT_SUBNETS[:1])["Subnets"]}
    assert [subnets[s]["AvailableIpAddressCount"] for s in tight] == [20, 20]
    assert subnets[DEFAULT_SUBNETS[0]]["AvailableIpAddressCount"] == 8187  # not sized: not counted
    assert [subnets[s]["AvailabilityZone"] for s in tight] == ["us-east-1a", "us-east-1b"]

    report = readiness_check.check_one(connections, record, "1.33")
    found = surge_findings(report)
    assert list(found) == ["surge_room:tight"], report.findings
    assert f"us-east-1a holds 0 of its 2 new nodes ({tight[0]}: 20 free)" in found["surge_room:tight"]
    assert "a node takes 30 addresses" in found["surge_room:tight"] and not report.ready

    # The finding is what EKS would do: the group's update fails for want of addresses before a node moves.
    eks = EksProvider(endpoint_url=simulator.url)
    failed = finish(eks, record.ref, eks.start_node_pool_upgrade(record.ref, node_pool="tight", version="1.32",
                                                                  request_token=f"t-{record.name}"))
    assert failed.status == "failed" and "InsufficientFreeAddresses" in failed.errors[0]
    assert {p.name: p.version for p in eks.list_node_pools(record.ref)}["tight"] == "1.31"
    assert [s["AvailableIpAddressCount"] for s in ec2.describe_subnets(SubnetIds=tight)["Subnets"]] == [20, 20]


def test_room_for_one_node_a_zone_is_not_room_for_two(simulator, inventory):
    tight = tight_subnets()
    cluster, accounts = eks_with(tight, pool("apps", 2, version="1.31", subnets=tight), sizes=(60, 60))
    load(simulator, inventory, [cluster], accounts)
    record = inventory.get_cluster(cluster["name"])
    found = surge_findings(readiness_check.check_one(ClusterConnections(sim_url=simulator.url), record, "1.33"))
    assert "us-east-1a holds 1 of its 2 new nodes" in found["surge_room:apps"]
    eks = EksProvider(endpoint_url=simulator.url)
    failed = finish(eks, record.ref, eks.start_node_pool_upgrade(record.ref, node_pool="apps", version="1.32",
                                                                  request_token=f"t-{record.name}"))
    assert failed.status == "failed" and "InsufficientFreeAddresses" in failed.errors[0]


def test_a_group_that_terminates_first_needs_no_room_and_upgrades_in_full_subnets(simulator, inventory):
    tight = tight_subnets()
    cluster, accounts = eks_with(tight, pool("minimal", 2, version="1.31", subnets=tight,
                                             cloud={"updateConfig": {"maxUnavailable": 1, "updateStrategy": "MINIMAL"}}),
                                 sizes=(30, 30))  # each subnet holds exactly its one node
    load(simulator, inventory, [cluster], accounts)
    record = inventory.get_cluster(cluster["name"])
    assert not surge_findings(readiness_check.check_one(ClusterConnections(sim_url=simulator.url), record, "1.33"))
    eks = EksProvider(endpoint_url=simulator.url)
    done = finish(eks, record.ref, eks.start_node_pool_upgrade(record.ref, node_pool="minimal", version="1.32",
                                                                request_token=f"t-{record.name}"))
    assert done.status == "succeeded", done.errors
    assert {p.name: p.version for p in eks.list_node_pools(record.ref)}["minimal"] == "1.32"


def test_the_simulated_ec2_refuses_what_ec2_refuses(simulator, inventory):
    tight = tight_subnets()
    load(simulator, inventory, [], accounts={"eks": {"subnets": DEFAULT_SUBNETS}})
    ec2 = boto3.client("ec2", endpoint_url=simulator.url, region_name="eu-west-1",
                       aws_access_key_id="regatta-sim", aws_secret_access_key="regatta-sim")
    with pytest.raises(ClientError) as missing:
        ec2.describe_subnets(SubnetIds=["subnet-0ffffffffffffffff"])
    assert missing.value.response["Error"]["Code"] == "InvalidSubnetID.NotFound"
    assert "subnet-0ffffffffffffffff" in missing.value.response["Error"]["Message"]
    filtered = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [DEFAULT_SUBNETS[1], "subnet-0fffffffffffff"]}])
    assert [s["SubnetId"] for s in filtered["Subnets"]] == [DEFAULT_SUBNETS[1]]  # a filter leaves out, never refuses
    with pytest.raises(ClientError) as unserved:  # not served: said, never ignored
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": ["vpc-1"]}])
    assert "does not serve the filter vpc-id" in unserved.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as other:
        ec2.describe_instances()
    assert other.value.response["Error"]["Code"] == "InvalidAction"
    every = ec2.describe_subnets()["Subnets"]
    assert [s["SubnetId"] for s in every] == DEFAULT_SUBNETS and every[0]["AvailabilityZone"] == "eu-west-1a"
    asked = http.get(f"{simulator.url}/sim/requests", params={"cloud": "ec2"}, timeout=10).json()["requests"]
    assert asked and all(entry["path"] == "/" for entry in asked)
    changes = http.get(f"{simulator.url}/sim/requests", params={"changes": "true"}, timeout=10).json()["requests"]
    assert not [entry for entry in changes if entry["cloud"] == "ec2"]  # EC2's reads are POSTs, never changes
    with pytest.raises(ValueError, match="subnet_addresses names subnets the account does not have"):
        FleetSpec.model_validate({"clusters": [], "accounts": {"eks": {"subnet_addresses": {tight[0]: 5}}}})


def test_a_network_the_cloud_will_not_describe_is_a_warning_not_a_stop(simulator, inventory):
    tight = tight_subnets()
    cluster, accounts = eks_with(tight, pool("apps", 1, subnets=tight), sizes=(251, 251))
    load(simulator, inventory, [cluster], accounts)
    # the role may not read subnets: EC2 says UnauthorizedOperation to every DescribeSubnets until it may again
    http.post(f"{simulator.url}/sim/ec2-denied", json={"denied": True}, timeout=10).raise_for_status()
    try:
        report = readiness_check.check_one(ClusterConnections(sim_url=simulator.url), inventory.get_cluster(cluster["name"]),
                                           "1.33")
    finally:
        http.post(f"{simulator.url}/sim/ec2-denied", json={"denied": False}, timeout=10).raise_for_status()
    [unread] = [finding for finding in report.findings if finding.id == "unreadable:surge_room"]
    assert unread.severity == "warning" and "UnauthorizedOperation" in unread.summary, unread
    assert "ec2:DescribeSubnets" in unread.what_to_do
    assert report.ready and not surge_findings(report)


def test_a_gke_pool_whose_pod_range_is_full_blocks_and_its_upgrade_fails_there(simulator, inventory):
    name = f"range-{uuid.uuid4().hex[:6]}"
    # A /22 Pod range holds four /24 blocks (110 pods a node): the four nodes take them all.
    load(simulator, inventory, [{
        "name": name, "provider": "gke", "region": "us-central1", "version": "1.32", "labels": {"env": "staging"},
        "cloud": {"clusterIpv4Cidr": "10.8.0.0/22"},
        "node_pools": [pool("web", 3, version="1.31", node_size="e2-standard-4"),
                       pool("batch", 1, version="1.31", node_size="e2-standard-4",  # maxSurge 0, left out as proto3 JSON does
                            cloud={"upgradeSettings": {"maxUnavailable": 1}})]}])
    record = inventory.get_cluster(name)
    report = readiness_check.check_one(ClusterConnections(sim_url=simulator.url), record, "1.33")
    found = surge_findings(report)
    assert list(found) == ["surge_room:web"], report.findings  # batch removes before it adds: it needs no room
    assert "Pod range 10.8.0.0/22 holds 0 of its 3 new nodes (0 free)" in found["surge_room:web"]
    assert "a node takes 256 addresses" in found["surge_room:web"]
    gke = GkeProvider(endpoint_url=simulator.url)
    rooms = {room.name: room for room in gke.surge_room(record.ref, gke.list_node_pools(record.ref))}
    assert [place.surge_nodes for place in rooms["batch"].places] == [0]  # judged, and needs none for its own surge
    assert [p.id for p in readiness.room_report(cluster=name, control_plane="1.32", target="1.32",
                                                rooms=readiness.blue_green_rooms([rooms["batch"]])).findings] == [
        "surge_room:batch"]  # a blue/green replacement of it would need a block

    failed = finish(gke, record.ref, gke.start_node_pool_upgrade(record.ref, node_pool="web", version="1.32",
                                                                  request_token=f"t-{name}"))
    assert failed.status == "failed" and "IP_SPACE_EXHAUSTED" in failed.errors[0]
    done = finish(gke, record.ref, gke.start_node_pool_upgrade(record.ref, node_pool="batch", version="1.32",
                                                                request_token=f"b-{name}"))
    assert done.status == "succeeded", done.errors


def test_pools_with_room_have_no_finding(simulator, inventory):
    tight = tight_subnets()
    eks_cluster, accounts = eks_with(tight, pool("apps", 3, subnets=tight), sizes=(251, 251))
    gke_name = f"roomy-{uuid.uuid4().hex[:6]}"
    load(simulator, inventory, [eks_cluster, {
        "name": gke_name, "provider": "gke", "region": "us-central1", "version": "1.32", "labels": {"env": "staging"},
        "node_pools": [pool("web", 3, version="1.32", node_size="e2-standard-4")]}], accounts)
    connections = ClusterConnections(sim_url=simulator.url)
    for name, pool_name in ((eks_cluster["name"], "apps"), (gke_name, "web")):
        record = inventory.get_cluster(name)
        provider = connections.provider(record.ref)
        [room] = provider.surge_room(record.ref, provider.list_node_pools(record.ref))
        assert room.name == pool_name and all(room.room(place) >= place.surge_nodes > 0 for place in room.places)
        assert not surge_findings(readiness_check.check_one(connections, record, "1.33"))


async def test_an_upgrade_is_refused_before_it_moves_and_accepted_it_fails_where_the_finding_said(
        client, worker, task_queue, simulator, inventory):
    tight = tight_subnets()
    cluster, accounts = eks_with(tight, pool("tight", 2, subnets=tight), version="1.31")
    load(simulator, inventory, [cluster], accounts)
    name = cluster["name"]

    refused = await start_upgrade(client, task_queue, name, target_version="1.32")
    with pytest.raises(WorkflowFailureError) as caught:
        await refused.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotReadyForUpgrade"
    assert "surge_room:tight" in cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.31"  # nothing moved

    accepted = await start_upgrade(client, task_queue, name, target_version="1.32",
                                   accept_findings={"surge_room:tight": "CHG-7 frees the subnet during the window"})
    with pytest.raises(WorkflowFailureError) as failed:
        await accepted.result()
    assert "InsufficientFreeAddresses" in str(failed.value.cause), failed.value.cause
    assert [line.outcome for line in inventory.audit(operation_id=accepted.id) if line.action == "readiness"] == ["accepted"]


async def test_pools_only_and_blue_green_upgrades_are_judged_on_the_room_they_take(
        client, worker, task_queue, simulator, inventory):
    tight = tight_subnets()
    # Six nodes, three a zone, hold 90 of each zone's 160 addresses: 70 hold two more nodes, the surge's two a zone,
    # but not the three a zone a blue/green replacement of six launches beside the old pool.
    cluster, accounts = eks_with(tight, pool("apps", 6, version="1.31", subnets=tight), sizes=(160, 160))
    load(simulator, inventory, [cluster], accounts)
    name = cluster["name"]
    assert not surge_findings(readiness_check.check_one(ClusterConnections(sim_url=simulator.url),
                                                        inventory.get_cluster(name), "1.33"))
    blue_green = await start_upgrade(client, task_queue, name, target_version="1.32", strategy="blue_green")
    with pytest.raises(WorkflowFailureError) as caught:
        await blue_green.result()
    assert caught.value.cause.type == "NotReadyForUpgrade" and "surge_room:apps" in caught.value.cause.message
    assert "holds 2 of its 3 new nodes" in caught.value.cause.message
    nodes = sim_report(simulator, name)["clusters"][name]["nodes"].values()
    assert len(nodes) == 6 and all(node["version"].startswith("v1.31.") for node in nodes)  # nothing moved

    full = tight_subnets()  # the control plane at 1.32 already: an upgrade of the pools alone is judged too
    cluster, accounts = eks_with(full, pool("apps", 2, version="1.31", subnets=full), sizes=(30, 30))
    load(simulator, inventory, [cluster], accounts)
    pools_only = await start_upgrade(client, task_queue, cluster["name"], target_version="1.32")
    with pytest.raises(WorkflowFailureError) as caught:
        await pools_only.result()
    assert caught.value.cause.type == "NotReadyForUpgrade" and "surge_room:apps" in caught.value.cause.message
