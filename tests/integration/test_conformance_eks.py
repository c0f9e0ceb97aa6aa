"""EKS as its own API reference describes it (docs/cloud-conformance.md, the EKS table): the simulated
EKS refuses what the real one refuses, asked through boto3 exactly as any client would ask it, and
Regatta's upgrades obey: a custom AMI moves by its launch template, a blue/green replacement is made
like the node group it replaces, upgrade insights are read and stop an upgrade unless accepted, node
groups behind the control plane are refused before anything changes, the managed add-ons follow the
control plane, and another update in progress is waited for."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from temporalio.client import WorkflowFailureError

from regatta.clouds.eks import EksProvider
from regatta.models import ClusterRef
from tests.conftest import set_faults, sim_report
from tests.integration.conftest import start_upgrade
from tests.shared_http import http

TEMPLATES = [
    {"id": "lt-0a1b2c3d4e5f60001", "name": "general-workers", "versions": {"1": {"instance_type": "m5.xlarge"}}},
    {"id": "lt-0a1b2c3d4e5f60002", "name": "hardened-ami", "versions": {
        "1": {"image_id": "ami-0aaa111122223333", "kubernetes_version": "1.30", "instance_type": "m5.large"},
        "2": {"image_id": "ami-0bbb444455556666", "kubernetes_version": "1.31", "instance_type": "m5.large"},
        "3": {"image_id": "ami-0ccc777788889999", "kubernetes_version": "1.30", "instance_type": "m5.large"}}},
]
ACCOUNTS = {"eks": {"launch_templates": TEMPLATES, "enforce_upgrade_insights": True}}
LOST_API = {"name": "Deprecated APIs removed in Kubernetes v1.31", "status": "ERROR", "kubernetes_version": "1.31",
            "reason": "flowcontrol.apiserver.k8s.io/v1beta3 was called in the last 30 days",
            "recommendation": "Move clients to flowcontrol.apiserver.k8s.io/v1",
            "resources": ["/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas/probes"]}


def cluster(name: str, *, pools: list[dict], version: str = "1.30", **extra) -> dict:
    return {"name": name, "provider": "eks", "region": "us-east-1", "version": version, "labels": {"env": "staging"},
            "node_pools": pools, **extra}


@pytest.fixture
def eks(simulator):
    return boto3.client("eks", endpoint_url=simulator.url, region_name="us-east-1", aws_access_key_id="sim",
                        aws_secret_access_key="sim")


def code_of(caught) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_the_service_model_is_enforced_where_botocore_leaves_it_to_the_server(eks, add_fleet):
    [name] = add_fleet(cluster("model", pools=[{"name": "general", "nodes": 1}]))
    with pytest.raises(ClientError) as too_many:  # botocore checks only minimums; the maximum is the server's
        eks.list_nodegroups(clusterName=name, maxResults=101)
    kind, message = code_of(too_many)
    assert kind == "InvalidParameterException" and "less than or equal to 100" in message
    with pytest.raises(ClientError) as wrong_effect:  # Kubernetes' spelling, not EKS's enum
        eks.create_nodegroup(clusterName=name, nodegroupName="tainted", subnets=["subnet-0a1b2c3d4e5f60001"],
                             nodeRole="arn:aws:iam::111122223333:role/eks-node",
                             taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert "Member must satisfy enum value set: [NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE]" in code_of(wrong_effect)[1]
    assert "tainted" not in sim_report_names(eks, name)


def test_a_replacement_node_group_carries_every_setting_eks_describes_and_create_takes():
    """What CreateNodegroup takes and DescribeNodegroup reports is copied to a blue/green replacement, or set by
    the adapter on purpose: a member botocore adds later fails here until it is one or the other."""
    import botocore.session

    from regatta.clouds import eks as adapter

    model = botocore.session.get_session().get_service_model("eks")
    both = set(model.operation_model("CreateNodegroup").input_shape.members) & set(model.shape_for("Nodegroup").members)
    set_on_purpose = {"clusterName", "nodegroupName", "scalingConfig", "launchTemplate", "instanceTypes", "diskSize",
                      "remoteAccess", "amiType", "version", "releaseVersion"}
    assert both - set_on_purpose == set(adapter._COPIED)


def sim_report_names(eks, name: str) -> list[str]:
    return eks.list_nodegroups(clusterName=name)["nodegroups"]


def test_launch_templates_by_id_or_by_name_and_a_custom_ami_moves_only_by_its_template(eks, add_fleet):
    [name] = add_fleet(cluster("lt", pools=[{"name": "general", "nodes": 1}]), accounts=ACCOUNTS)
    base = {"clusterName": name, "subnets": ["subnet-0a1b2c3d4e5f60001"], "nodeRole": "arn:aws:iam::111122223333:role/eks-node",
            "scalingConfig": {"minSize": 0, "maxSize": 2, "desiredSize": 1}}
    refusals = [
        ({"launchTemplate": {"id": "lt-0a1b2c3d4e5f60001", "name": "general-workers"}}, "not both"),
        ({"launchTemplate": {"name": "general-workers"}, "instanceTypes": ["m5.large"]}, "both in the launch template"),
        ({"launchTemplate": {"name": "general-workers"}, "diskSize": 50}, "diskSize can't be specified"),
        ({"launchTemplate": {"name": "hardened-ami"}, "version": "1.30"}, "You cannot specify the field kubernetesVersion"),
        ({"launchTemplate": {"name": "hardened-ami"}, "amiType": "AL2023_x86_64_STANDARD"}, "You cannot specify the field amiType"),
        ({"version": "1.29"}, "a node group is created at the cluster's version"),
        ({"scalingConfig": {"desiredSize": 1}}, "all of minSize, maxSize and desiredSize"),
    ]
    for extra, words in refusals:
        with pytest.raises(ClientError) as refused:
            eks.create_nodegroup(**{**base, "nodegroupName": "refused", **extra})
        assert code_of(refused)[0] == "InvalidParameterException" and words in code_of(refused)[1], (extra, code_of(refused))
    made = eks.create_nodegroup(**base, nodegroupName="hardened", launchTemplate={"id": "lt-0a1b2c3d4e5f60002"})["nodegroup"]
    assert made["amiType"] == "CUSTOM" and made["releaseVersion"] == "ami-0aaa111122223333" and "instanceTypes" not in made
    assert made["launchTemplate"] == {"id": "lt-0a1b2c3d4e5f60002", "name": "hardened-ami", "version": "1"}

    with pytest.raises(ClientError) as versioned:
        eks.update_nodegroup_version(clusterName=name, nodegroupName="hardened", version="1.30")
    assert "You cannot specify the field kubernetesVersion when using custom AMIs" in code_of(versioned)[1]
    with pytest.raises(ClientError) as bare:
        eks.update_nodegroup_version(clusterName=name, nodegroupName="hardened")
    assert "Launch template details can't be null for Custom ami type node group" in code_of(bare)[1]
    with pytest.raises(ClientError) as another:
        eks.update_nodegroup_version(clusterName=name, nodegroupName="hardened", launchTemplate={"name": "general-workers"})
    assert "must be the one the node group was created with" in code_of(another)[1]
    with pytest.raises(ClientError) as ahead:  # version 2 holds a 1.31 AMI; the control plane runs 1.30
        eks.update_nodegroup_version(clusterName=name, nodegroupName="hardened", launchTemplate={"name": "hardened-ami",
                                                                                               "version": "2"})
    assert "newer than the cluster version 1.30" in code_of(ahead)[1]
    update = eks.update_nodegroup_version(clusterName=name, nodegroupName="hardened",
                                          launchTemplate={"name": "hardened-ami", "version": "3"})["update"]
    assert update["status"] == "InProgress"


def test_update_cluster_version_refuses_a_skip_groups_behind_a_busy_cluster_and_error_insights_without_force(
        eks, add_fleet, simulator):
    behind, insightful = add_fleet(
        cluster("behind", pools=[{"name": "old", "nodes": 1, "version": "1.29"}, {"name": "new", "nodes": 1}]),
        cluster("insightful", pools=[{"name": "general", "nodes": 1}], insights=[LOST_API], time_scale=0.05),
        accounts=ACCOUNTS)
    with pytest.raises(ClientError) as skipped:
        eks.update_cluster_version(name=behind, version="1.32")
    assert code_of(skipped) == ("InvalidParameterException", "Unsupported Kubernetes minor version update from 1.30 to 1.32")
    with pytest.raises(ClientError) as lagging:
        eks.update_cluster_version(name=behind, version="1.31")
    assert code_of(lagging)[1] == "Nodegroups old must be updated to match cluster version 1.30 before updating cluster version"
    with pytest.raises(ClientError) as blocked:
        eks.update_cluster_version(name=insightful, version="1.31")
    assert code_of(blocked)[0] == "InvalidStateException" and "Pass the force flag" in code_of(blocked)[1]
    started = eks.update_cluster_version(name=insightful, version="1.31", force=True)["update"]
    assert started["status"] == "InProgress"
    with pytest.raises(ClientError) as busy:  # another update of the same cluster while the first runs
        eks.update_cluster_version(name=insightful, version="1.31", clientRequestToken="someone-else")
    assert code_of(busy)[0] == "ResourceInUseException"
    insights = eks.list_insights(clusterName=insightful, filter={"statuses": ["ERROR"]})["insights"]
    assert [i["name"] for i in insights] == [LOST_API["name"]]
    whole = eks.describe_insight(clusterName=insightful, id=insights[0]["id"])["insight"]
    assert whole["recommendation"] == LOST_API["recommendation"]


def test_node_groups_come_a_page_at_a_time_and_the_adapter_reads_every_page(eks, add_fleet, simulator):
    [name] = add_fleet(cluster("paged", pools=[{"name": f"group{i:03d}", "nodes": 0} for i in range(105)]))
    first = eks.list_nodegroups(clusterName=name)
    assert len(first["nodegroups"]) == 100 and first["nextToken"]
    rest = eks.list_nodegroups(clusterName=name, nextToken=first["nextToken"])
    assert len(rest["nodegroups"]) == 5 and "nextToken" not in rest
    pools = EksProvider(endpoint_url=simulator.url).list_node_pools(ClusterRef(name=name, provider="eks", region="us-east-1"))
    assert len(pools) == 105


def test_add_ons_stay_where_they_are_after_a_control_plane_upgrade_and_move_only_to_a_listed_version(eks, add_fleet):
    [name] = add_fleet(cluster("addons", version="1.31", pools=[{"name": "general", "nodes": 1}],
                               addons={"kube-proxy": "v1.30.3-eksbuild.2", "coredns": "v1.11.3-eksbuild.1"}))
    offered = eks.describe_addon_versions(kubernetesVersion="1.31", addonName="kube-proxy")["addons"][0]["addonVersions"]
    default = [v["addonVersion"] for v in offered if any(c["defaultVersion"] for c in v["compatibilities"])]
    assert default == ["v1.31.3-eksbuild.2"]
    assert eks.describe_addon(clusterName=name, addonName="kube-proxy")["addon"]["addonVersion"] == "v1.30.3-eksbuild.2"
    with pytest.raises(ClientError) as unlisted:
        eks.update_addon(clusterName=name, addonName="kube-proxy", addonVersion="v1.29.3-eksbuild.2")
    assert "is not supported for kube-proxy on Kubernetes 1.31" in code_of(unlisted)[1]
    addons = {a.name: a for a in EksProvider(endpoint_url=eks.meta.endpoint_url).managed_addons(
        ClusterRef(name=name, provider="eks", region="us-east-1"), version="1.31")}
    assert (addons["kube-proxy"].compatible, addons["kube-proxy"].default_version) == (False, "v1.31.3-eksbuild.2")
    assert addons["coredns"].compatible and addons["coredns"].default_version == "v1.11.3-eksbuild.1"


async def test_a_custom_ami_node_group_is_refused_until_its_template_version_is_named_then_moves_by_it(
        client, worker, task_queue, add_fleet, simulator, inventory):
    [name] = add_fleet(cluster("custom", pools=[
        {"name": "hardened", "nodes": 2, "cloud": {"launchTemplate": {"name": "hardened-ami", "version": "1"}}},
        {"name": "general", "nodes": 2}]), accounts=ACCOUNTS)
    before = len(http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"])
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, task_queue, name)).result()
    assert refused.value.cause.type == "CloudRuleViolation"
    assert "node group hardened runs an AMI of its own launch template" in refused.value.cause.message
    assert "launch_template_versions" in refused.value.cause.message
    assert len(http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"]) == before  # nothing asked

    result = await (await start_upgrade(client, task_queue, name, launch_template_versions={"hardened": "2"})).result()
    assert result.outcome == "succeeded"
    state = sim_report(simulator, name)["clusters"][name]
    hardened = [n for n in state["nodes"].values() if n["image"] == "ami-0bbb444455556666"]
    assert len(hardened) == 2 and all(n["version"].startswith("v1.31.") for n in hardened)
    assert state["node_pools"]["hardened"]["settings"]["launchTemplate"]["version"] == "2"
    assert state["addons"]["kube-proxy"] == "v1.31.3-eksbuild.2", "the add-ons follow the control plane"
    sent = http.get(f"{simulator.url}/sim/requests", params={"path_contains": f"{name}/node-groups/hardened/update-version"},
                     timeout=10).json()["requests"]
    # a custom AMI's group is sent no version, only its template's (asked again once done: the same token, one update)
    assert sent and all(r["body"].get("version") is None and r["body"]["launchTemplate"]["version"] == "2" for r in sent)
    assert len({r["body"]["clientRequestToken"] for r in sent}) == 1
    assert sim_report(simulator, name)["skew_violations"] == []


async def test_a_blue_green_replacement_is_made_like_the_node_group_it_replaces(
        client, worker, task_queue, add_fleet, simulator):
    settings = {"amiType": "AL2023_ARM_64_STANDARD", "capacityType": "SPOT", "diskSize": 100,
                "updateConfig": {"maxUnavailablePercentage": 25}, "scalingConfig": {"minSize": 1, "maxSize": 9},
                "tags": {"cost-centre": "search"}}
    [name] = add_fleet(cluster("likeness", pools=[
        {"name": "arm", "nodes": 2, "labels": {"arch": "arm64"}, "cloud": settings,
         "taints": [{"key": "arch", "value": "arm64", "effect": "NO_SCHEDULE"}]},
        {"name": "templated", "nodes": 1, "cloud": {"launchTemplate": {"name": "general-workers"}}}]), accounts=ACCOUNTS)
    result = await (await start_upgrade(client, task_queue, name, strategy="blue_green")).result()
    assert result.outcome == "succeeded"
    pools = sim_report(simulator, name)["clusters"][name]["node_pools"]
    assert set(pools) == {"arm-v1-31", "templated-v1-31"}
    arm = pools["arm-v1-31"]
    assert {key: arm["settings"][key] for key in settings} == {**settings, "scalingConfig": {"minSize": 1, "maxSize": 9}}
    assert arm["labels"] == {"arch": "arm64"} and arm["taints"] == [{"key": "arch", "value": "arm64", "effect": "NO_SCHEDULE"}]
    assert arm["nodes"] == 2
    templated = pools["templated-v1-31"]
    assert templated["settings"]["launchTemplate"] == {"id": "lt-0a1b2c3d4e5f60001", "name": "general-workers", "version": "1"}
    assert templated["size"] == "m5.xlarge"  # the template's instance type, not a default


async def test_an_error_upgrade_insight_stops_the_upgrade_unless_accepted_with_a_reason_that_is_audited(
        client, worker, task_queue, add_fleet, simulator, inventory):
    [name] = add_fleet(cluster("insights", pools=[{"name": "general", "nodes": 1}], insights=[LOST_API]), accounts=ACCOUNTS)
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, task_queue, name)).result()
    assert refused.value.cause.type == "UpgradeInsightsError"
    assert "Deprecated APIs removed in Kubernetes v1.31" in refused.value.cause.message
    assert "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas/probes" in refused.value.cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"

    handle = await start_upgrade(client, task_queue, name, accept_insights="the probes moved to v1 in CHG-88")
    assert (await handle.result()).outcome == "succeeded"
    accepted = [r for r in inventory.audit(operation_id=handle.id) if r.action == "insights"]
    assert [r.outcome for r in accepted] == ["accepted"] and "CHG-88" in accepted[0].detail
    sent = http.get(f"{simulator.url}/sim/requests", params={"path_contains": f"/clusters/{name}/updates"},
                     timeout=10).json()["requests"]
    posts = [r["body"] for r in sent if r["method"] == "POST"]
    assert posts and all(body.get("force") is True for body in posts) and len({b["clientRequestToken"] for b in posts}) == 1


async def test_node_groups_behind_the_control_plane_are_refused_before_anything_changes(
        client, worker, task_queue, add_fleet, simulator):
    [name] = add_fleet(cluster("lagging", pools=[{"name": "old", "nodes": 1, "version": "1.29"}, {"name": "new", "nodes": 1}]))
    with pytest.raises(WorkflowFailureError) as refused:
        await (await start_upgrade(client, task_queue, name)).result()
    assert refused.value.cause.type == "CloudRuleViolation"
    assert "EKS upgrades a control plane only when every managed node group runs its version (1.30)" in refused.value.cause.message
    assert "old (1.29)" in refused.value.cause.message
    assert sim_report(simulator, name)["clusters"][name]["control_plane_version"] == "1.30"


async def test_another_update_of_a_node_group_is_waited_for_then_the_upgrade_goes_on(
        client, worker, task_queue, add_fleet, simulator):
    # The control plane is at 1.31 already: the upgrade's first step is the node group someone else is updating.
    [name] = add_fleet(cluster("busy", version="1.31", time_scale=0.01, pools=[{"name": "general", "nodes": 1, "version": "1.30"}]))
    http.post(f"{simulator.url}/sim/busy", json={"cluster": name, "node_pool": "general", "seconds": 300},
               timeout=10).raise_for_status()
    handle = await start_upgrade(client, task_queue, name)
    assert (await handle.result()).outcome == "succeeded"
    history = await handle.fetch_history()
    assert any(e.HasField("timer_started_event_attributes") for e in history.events), "it never waited"
    ours = [o for o in http.get(f"{simulator.url}/sim/operations", timeout=10).json()["operations"]
            if o["cluster"] == name and o["node_pool"] == "general"]
    assert len(ours) == 2  # the outside update and Regatta's one, not a second attempt of ours
    assert sim_report(simulator, name)["clusters"][name]["node_pools"]["general"]["version"] == "1.31"


async def test_an_eks_surge_meeting_a_budget_fails_after_eks_gives_up_and_the_budget_holds(
        client, worker, task_queue, add_fleet, simulator):
    """EKS drains a node group through the eviction API and, without `force` (which Regatta never sends),
    fails the update with PodEvictionFailure after 15 minutes (here 1.8 s) rather than break a budget."""
    tight = [{"name": "ledger", "namespace": "shop", "replicas": 2, "pdb": {"min_available": 1}}]
    [name] = add_fleet(cluster("evict", version="1.31", time_scale=0.002, workloads=tight,
                               pools=[{"name": "general", "nodes": 1, "version": "1.30"}]))
    set_faults(simulator, name, blocking_pdbs=["shop/ledger-pdb"])
    with pytest.raises(WorkflowFailureError) as failed:
        await (await start_upgrade(client, task_queue, name)).result()
    assert failed.value.cause.type == "CloudOperationFailed"
    assert "PodEvictionFailure" in failed.value.cause.message and "shop/ledger-" in failed.value.cause.message
    assert sim_report(simulator, name)["pdb_violations"] == []
    sent = http.get(f"{simulator.url}/sim/requests", params={"path_contains": f"{name}/node-groups/general/update-version"},
                     timeout=10).json()["requests"]
    assert sent and all(not r["body"].get("force") for r in sent)
