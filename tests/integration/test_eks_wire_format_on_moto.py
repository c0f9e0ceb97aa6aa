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
