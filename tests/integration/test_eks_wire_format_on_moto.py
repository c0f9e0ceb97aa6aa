"""A second opinion on the EKS wire format: the same EKS adapter (boto3, endpoint overridden) that
drives the simulator creates, describes, polls and deletes a cluster and a node group on moto's EKS
server. moto cannot stand in for upgrades (no UpdateClusterVersion or DescribeUpdate), which is
why the simulator exists; what both serve must agree."""

from __future__ import annotations

import pytest
from moto import server as moto_server

from regatta.clouds.eks import EksProvider
from regatta.models import ClusterNetwork, ClusterRef, LaunchTemplate, NodePool, NodeTaint

NETWORK = ClusterNetwork(subnets=["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                         cluster_role="arn:aws:iam::123456789012:role/eks-cluster",
                         node_role="arn:aws:iam::123456789012:role/eks-node")


@pytest.fixture(scope="module")
def moto_eks():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_the_eks_adapter_speaks_moto_as_it_speaks_the_simulator(moto_eks, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    eks = EksProvider(endpoint_url=moto_eks)
    ref = ClusterRef(name="moto-eks", provider="eks", region="us-east-1")

    created = eks.create_cluster(ref, version="1.31", labels={"team": "search"}, request_token="tok-1", network=NETWORK)
    assert created.kind == "cluster_create"
    assert eks.poll_operation(ref, created).status == "succeeded"  # moto makes clusters ACTIVE at once
    plane = eks.describe_control_plane(ref)
    assert (plane.name, plane.version, plane.status) == ("moto-eks", "1.31", "ACTIVE")

    pool = NodePool(name="general", version="1.31", node_count=2, node_size="m5.large", labels={"role": "general"},
                    subnets=NETWORK.subnets, node_role=NETWORK.node_role,
                    taints=[NodeTaint(key="dedicated", value="search", effect="NO_SCHEDULE")])
    made = eks.create_node_pool(ref, node_pool=pool, request_token="tok-2")
    assert eks.poll_operation(ref, made).status == "succeeded"
    [described] = eks.list_node_pools(ref)
    assert (described.name, described.node_count, described.node_size) == ("general", 2, "m5.large")
    assert described.subnets == NETWORK.subnets and described.node_role == NETWORK.node_role
    assert described.labels == {"role": "general"}
    # What a blue/green replacement sends: the described pool under a new name, launch template and all.
    replacement = described.model_copy(update={"name": "general-v1-31",
                                               "launch_template": LaunchTemplate(name="general-lt", version="3")})
    assert eks.poll_operation(ref, eks.create_node_pool(ref, node_pool=replacement, request_token="tok-3")).status == "succeeded"
    assert sorted(p.name for p in eks.list_node_pools(ref)) == ["general", "general-v1-31"]

    for name in ("general", "general-v1-31"):
        gone = eks.delete_node_pool(ref, node_pool=name, request_token=f"del-{name}")
        assert eks.poll_operation(ref, gone).status == "succeeded"
    assert eks.list_node_pools(ref) == []
    deleted = eks.delete_cluster(ref, request_token="del-cluster")
    assert eks.poll_operation(ref, deleted).status == "succeeded"
    again = eks.delete_cluster(ref, request_token="del-cluster")  # idempotent: already gone is done
    assert again.status == "succeeded"


def test_moto_agrees_on_launch_templates_by_id_ami_and_capacity_types_and_a_replacement_made_like_its_group(moto_eks, monkeypatch):
    """A second opinion on what a blue/green replacement sends: moto resolves a launch template named by id
    through its own EC2, describes it by id and name (as the simulator does), refuses diskSize beside a
    template, and keeps the AMI type, capacity type and sizes the replacement copied."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2 = boto3.client("ec2", endpoint_url=moto_eks, region_name="us-east-1")
    template = ec2.create_launch_template(LaunchTemplateName="arm-workers",
                                          LaunchTemplateData={"InstanceType": "m6g.large"})["LaunchTemplate"]
    eks = EksProvider(endpoint_url=moto_eks)
    ref = ClusterRef(name="moto-lt", provider="eks", region="us-east-1")
    eks.poll_operation(ref, eks.create_cluster(ref, version="1.31", labels={}, request_token="c", network=NETWORK))
    client = boto3.client("eks", endpoint_url=moto_eks, region_name="us-east-1")
    client.create_nodegroup(clusterName="moto-lt", nodegroupName="arm", subnets=NETWORK.subnets, nodeRole=NETWORK.node_role,
                            launchTemplate={"id": template["LaunchTemplateId"], "version": "1"},
                            amiType="AL2023_ARM_64_STANDARD", capacityType="SPOT",
                            scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 2})
    described = client.describe_nodegroup(clusterName="moto-lt", nodegroupName="arm")["nodegroup"]
    assert described["launchTemplate"]["id"] == template["LaunchTemplateId"]
    assert described["launchTemplate"]["name"] == "arm-workers"

    replacement = eks.list_node_pools(ref)[0].model_copy(update={"name": "arm-v1-31", "version": "1.31"})
    eks.poll_operation(ref, eks.create_node_pool(ref, node_pool=replacement, request_token="r", like="arm"))
    made = client.describe_nodegroup(clusterName="moto-lt", nodegroupName="arm-v1-31")["nodegroup"]
    assert (made["amiType"], made["capacityType"]) == ("AL2023_ARM_64_STANDARD", "SPOT")
    assert made["scalingConfig"] == {"minSize": 1, "maxSize": 6, "desiredSize": 2}
    assert made["launchTemplate"]["id"] == template["LaunchTemplateId"]
    with pytest.raises(Exception, match="Disk size must be specified within the launch template"):  # as EKS does
        client.create_nodegroup(clusterName="moto-lt", nodegroupName="refused", subnets=NETWORK.subnets,
                                nodeRole=NETWORK.node_role, launchTemplate={"id": template["LaunchTemplateId"]}, diskSize=50)


def test_moto_agrees_on_the_subnets_a_surge_takes_its_addresses_from(moto_eks, monkeypatch):
    """The same adapter reads a node group's subnets from moto's EC2 DescribeSubnets as from the simulator's:
    each subnet's free addresses, and its zone (EKS adds up to twice the group's zones at once)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=moto_eks, region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    eks = EksProvider(endpoint_url=moto_eks)
    ref = ClusterRef(name="moto-room", provider="eks", region="us-east-1")
    network = NETWORK.model_copy(update={"subnets": subnets})
    eks.poll_operation(ref, eks.create_cluster(ref, version="1.31", labels={}, request_token="room-1", network=network))
    pool = NodePool(name="apps", version="1.31", node_count=5, node_size="m5.large", subnets=subnets, node_role=NETWORK.node_role)
    eks.poll_operation(ref, eks.create_node_pool(ref, node_pool=pool, request_token="room-2"))

    [described] = eks.list_node_pools(ref)
    assert described.surge == 1  # moto's default updateConfig, as EKS's: maxUnavailable 1
    [room] = eks.surge_room(ref, [described])
    found = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
    assert [(place.name, place.free_addresses) for place in room.places] == [
        (found[subnet]["AvailabilityZone"], {subnet: found[subnet]["AvailableIpAddressCount"]}) for subnet in subnets]
    assert [place.name for place in room.places] == ["us-east-1a", "us-east-1b"]
    assert all(0 < count <= 251 for place in room.places for count in place.free_addresses.values())
    assert [place.surge_nodes for place in room.places] == [2, 2]  # up to two a zone: more than maxUnavailable 1
