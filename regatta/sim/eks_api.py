"""The EKS control plane in EKS's own REST-JSON wire format, so the real boto3 `eks` client
works against the simulator with only `endpoint_url` changed.

Served: list/describe/create/delete clusters, update_cluster_version, describe/list updates,
list/describe/create/delete node groups, update_nodegroup_version, upgrade insights, managed
add-ons (list, describe, supported versions, update). Every request is checked against botocore's
own service model first (regatta/sim/aws_model.py), then against the rules EKS's API reference and
user guide state for the operation: each is a row of docs/cloud-conformance.md with its source.
Mutations honour `clientRequestToken` the way EKS does, so a retried request returns the operation
it already started.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from regatta.formats.fleet_file import LaunchTemplateSpec
from regatta.sim import arithmetic, aws_model, eks_addons
from regatta.sim.world import Cluster, NodePool, SimError, Update, World

router = APIRouter()
ACCOUNT = "111122223333"
DEFAULT_AMI_TYPE = "AL2023_x86_64_STANDARD"
# CreateNodegroup: "If you don't specify an instance type in a launch template or for instanceTypes, then t3.medium is used".
DEFAULT_INSTANCE_TYPE = "t3.medium"
# "The rollback must be initiated within 7 days of the upgrade completing" (EKS user guide, rollback-cluster).
ROLLBACK_WINDOW = timedelta(days=7)
PAGE = 100  # every EKS list: "If you don't use this parameter, 100 results and a nextToken value ... are returned"


def invalid(message: str) -> SimError:
    return SimError(400, "InvalidParameterException", message)


async def _members(request: Request, operation: str, **path: str) -> dict[str, Any]:
    """The request's members as the service model places them, checked against the model."""
    body: dict[str, Any] = {}
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise SimError(400, "SerializationException", "Start of structure or map found where not expected.") from None
    query = {key: request.query_params.getlist(key) for key in request.query_params}
    members = aws_model.gather(operation, path=path, query=query, body=body if isinstance(body, dict) else {})
    aws_model.validate(operation, members)
    return members


def _eks_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="eks", operation=operation,
                                      missing=SimError(404, "ResourceNotFoundException", f"No cluster found for name: {name}."))


def _page(items: list[Any], members: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page of a list and the opaque token of the next (absent on the last page)."""
    start = 0
    if members.get("nextToken"):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(members["nextToken"].encode()))["offset"])
        except (ValueError, KeyError, TypeError):
            raise invalid("The nextToken provided is invalid.") from None
    size = members.get("maxResults") or PAGE
    page = items[start:start + size]
    following = start + size
    token = base64.urlsafe_b64encode(json.dumps({"offset": following}).encode()).decode() if following < len(items) else None
    return page, token


def _signed_region(request: Request) -> str:
    """The region a SigV4 request was signed for: Credential=KEY/DATE/REGION/eks/aws4_request."""
    scope = request.headers.get("authorization", "").partition("Credential=")[2].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _cluster_json(request: Request, cluster: Cluster) -> dict:
    base = str(request.base_url).rstrip("/")
    world: World = request.app.state.world
    return {
        "name": cluster.name,
        "arn": f"arn:aws:eks:{cluster.region}:{ACCOUNT}:cluster/{cluster.name}",
        "createdAt": cluster.created,
        "version": cluster.version,
        "endpoint": world.api_server(cluster.name) if world.kube_url else f"{base}/k8s/{cluster.name}",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        "status": cluster.status,
        "platformVersion": "eks.8",
        "certificateAuthority": {"data": world.ca_data or ""},
        "tags": dict(cluster.labels),
    }


def _launch_template(world: World, spec: dict[str, Any]) -> tuple[LaunchTemplateSpec, str]:
    """The account's launch template a request names (by id or by name, never both) and the version it uses."""
    if ("id" in spec) == ("name" in spec):
        raise invalid("You must specify either the launch template ID or the launch template name in the request, but not both.")
    found = next((t for t in world.accounts.eks.launch_templates if t.id == spec.get("id") or t.name == spec.get("name")), None)
    if found is None:
        raise invalid(f"The launch template {spec.get('id') or spec.get('name')} does not exist"
                      " (Service: AmazonEC2; Status Code: 400; Error Code: InvalidLaunchTemplateId.NotFound)")
    version = str(spec.get("version") or found.default_version)
    if version not in found.versions:
        raise invalid(f"The specified launch template version {version} of {found.id} does not exist"
                      " (Service: AmazonEC2; Status Code: 400; Error Code: InvalidLaunchTemplateId.VersionNotFound)")
    return found, version


def _nodegroup_json(world: World, cluster: Cluster, pool: NodePool) -> dict:
    settings = pool.settings
    template = settings.get("launchTemplate")
    custom = settings.get("amiType") == "CUSTOM"
    scaling = settings.get("scalingConfig") or {}
    return {
        "nodegroupName": pool.name,
        "nodegroupArn": f"arn:aws:eks:{cluster.region}:{ACCOUNT}:nodegroup/{cluster.name}/{pool.name}/sim",
        "clusterName": cluster.name,
        "version": pool.version,
        # "If the node group was deployed using a launch template with a custom AMI, then this is the AMI ID".
        "releaseVersion": pool.image,
        "createdAt": pool.created,
        "modifiedAt": pool.modified,
        "status": pool.status,
        "capacityType": settings.get("capacityType", "ON_DEMAND"),
        "scalingConfig": {"minSize": scaling.get("minSize", 0), "maxSize": scaling.get("maxSize", max(pool.desired * 2, 1)),
                          "desiredSize": pool.desired},
        # Documented as null for launch template node groups (instanceTypes, diskSize, remoteAccess).
        **({"instanceTypes": [pool.size]} if not template or "instanceTypes" in settings else {}),
        **({"diskSize": settings.get("diskSize", 20)} if not template else {}),
        **({"remoteAccess": settings["remoteAccess"]} if "remoteAccess" in settings else {}),
        "subnets": list(pool.subnets),
        "amiType": "CUSTOM" if custom else settings.get("amiType", DEFAULT_AMI_TYPE),
        "nodeRole": pool.node_role or "",
        "labels": dict(pool.labels),
        "taints": [dict(t) for t in pool.taints],
        **({"launchTemplate": dict(template)} if template else {}),
        "health": {"issues": list(pool.health_issues)},
        "updateConfig": settings.get("updateConfig") or {"maxUnavailable": 1},
        "tags": dict(settings.get("tags") or {}),
        **{key: settings[key] for key in ("nodeRepairConfig", "warmPoolConfig") if key in settings},
    }


def _update_json(update: Update) -> dict:
    return {"update": {"id": update.id, "status": update.status, "type": update.type, "params": update.params,
                       "createdAt": (update.created_at.timestamp() if update.created_at else update.created),
                       "errors": update.errors}}


@router.get("/clusters")
async def list_clusters(request: Request):
    world: World = request.app.state.world
    members = await _members(request, "ListClusters")
    names, token = _page(sorted(c.name for c in world.clusters.values() if c.provider == "eks"), members)
    return {"clusters": names, **({"nextToken": token} if token else {})}


@router.get("/clusters/{name}")
async def describe_cluster(request: Request, name: str):
    await _members(request, "DescribeCluster", name=name)
    _, cluster = _eks_cluster(request, name, "DescribeCluster")
    return {"cluster": _cluster_json(request, cluster)}


@router.post("/clusters")
async def create_cluster(request: Request):
    world: World = request.app.state.world
    body = await _members(request, "CreateCluster")
    world.check_faults(body["name"], api="cloud", operation="CreateCluster")
    subnets = body["resourcesVpcConfig"].get("subnetIds") or []
    if len(subnets) < 2:  # resourcesVpcConfig: "You must specify at least two subnets."
        raise invalid("Subnets specified must be in at least two different AZs")
    world.check_account("eks", cluster_role=body["roleArn"], subnets=subnets)
    region = _signed_region(request)
    cluster = world.create_cluster(name=body["name"], provider="eks", region=region, version=body.get("version") or "1.30",
                                   labels=body.get("tags") or {}, token=body.get("clientRequestToken"))
    cluster.addons = eks_addons.installed_by_default(cluster.version)
    return {"cluster": _cluster_json(request, cluster)}


@router.delete("/clusters/{name}")
async def delete_cluster(request: Request, name: str):
    await _members(request, "DeleteCluster", name=name)
    world, cluster = _eks_cluster(request, name, "DeleteCluster")
    world.delete_cluster(cluster, with_pools=False)
    return {"cluster": _cluster_json(request, cluster)}


def _refuse_a_busy_cluster(cluster: Cluster) -> None:
    """Another update of the cluster is in progress: `ResourceInUseException`, as UpdateClusterVersion lists it."""
    running = [u for u in cluster.updates.values() if u.status == "InProgress" and u.nodegroup is None
               and u.type in ("VersionUpdate", "AddonUpdate")]
    if running or cluster.status != "ACTIVE":
        raise SimError(409, "ResourceInUseException", f"Cluster {cluster.name} has an update in progress"
                       + (f" ({running[0].id})." if running else f" (status {cluster.status})."))


@router.post("/clusters/{name}/updates")
async def update_cluster_version(request: Request, name: str):
    world, cluster = _eks_cluster(request, name, "UpdateClusterVersion")
    body = await _members(request, "UpdateClusterVersion", name=name)
    if (existing := cluster.tokens.get(body.get("clientRequestToken") or "")) is not None:
        return _update_json(cluster.updates[existing])
    _refuse_a_busy_cluster(cluster)
    version = body["version"]
    try:
        wanted, current = arithmetic.minor(version), arithmetic.minor(cluster.version)
    except ValueError:
        raise invalid(f"Unsupported Kubernetes version {version}") from None
    if wanted < current:  # "Use the existing update-cluster-version command with the previous (N-1) Kubernetes version"
        _refuse_a_rollback_outside_its_rules(world, cluster, version)
        stopping = [i for i in cluster.insights if i.get("category") == "ROLLBACK_READINESS"
                    and i["status"] in ("ERROR", "UNKNOWN")]
        if stopping and not body.get("force"):  # "Insights with ERROR or UNKNOWN status block the rollback"
            raise SimError(400, "InvalidStateException", "Rollback readiness issues detected. Call the EKS ListInsights API"
                           " to view rollback blocking issues detected by EKS. Pass the force flag to override rollback"
                           " readiness errors and proceed with rollback.")
        return _update_json(world.start_control_plane_rollback(cluster, arithmetic.minor_text(version),
                                                               body.get("clientRequestToken")))
    if wanted[0] != current[0] or wanted[1] != current[1] + 1:
        # "you can update only one minor version at a time"; "you can't downgrade to a previous version".
        raise invalid(f"Unsupported Kubernetes minor version update from {cluster.version} to {version}")
    behind = sorted(p.name for p in cluster.pools.values() if arithmetic.minor(p.version) != current)
    if behind:
        # "all of your node groups' Kubernetes versions must match the cluster's Kubernetes version".
        raise invalid(f"Nodegroups {', '.join(behind)} must be updated to match cluster version {cluster.version}"
                      " before updating cluster version")
    blocking = [i for i in cluster.insights if i["status"] == "ERROR" and arithmetic.minor_text(i["kubernetes_version"])
                == arithmetic.minor_text(version) and i.get("category", "UPGRADE_READINESS") == "UPGRADE_READINESS"]
    if blocking and world.accounts.eks.enforce_upgrade_insights and not body.get("force"):
        raise SimError(400, "InvalidStateException", "Upgrade readiness issues detected. Call the EKS ListInsights API to"
                       " view upgrade blocking issues detected by EKS. Pass the force flag to override upgrade readiness"
                       " errors and proceed with upgrade.")
    update = world.start_control_plane_upgrade(cluster, version, body.get("clientRequestToken"))
    return _update_json(update)


def _refuse_a_rollback_outside_its_rules(world: World, cluster: Cluster, version: str) -> None:
    """EKS version rollback (docs/cloud-conformance.md, "Version rollback"): one minor back, to the version an in-place
    upgrade came from, within 7 days of that upgrade completing, with every managed node group already back. `force`
    bypasses only insight checks, none of these."""
    wanted, current = arithmetic.minor(version), arithmetic.minor(cluster.version)
    if wanted != (current[0], current[1] - 1):
        raise invalid(f"Unsupported Kubernetes version rollback from {cluster.version} to {version}: a rollback goes back"
                      " one minor version only (N to N-1)")
    if cluster.previous_version is None or arithmetic.minor(cluster.previous_version) != wanted:
        raise SimError(400, "InvalidRequestException", f"Cluster {cluster.name} cannot be rolled back to {version}: it was"
                       f" not upgraded in place from {version} (a cluster created at its current version, or rolled back"
                       " already, has no previous version to return to)")
    changed = cluster.version_changed_at
    if changed is None or world.calendar_now() - changed > ROLLBACK_WINDOW:
        raise SimError(400, "InvalidRequestException", f"Cluster {cluster.name} cannot be rolled back: the rollback must"
                       f" be initiated within 7 days of the upgrade completing (it completed {changed:%Y-%m-%dT%H:%MZ})")
    ahead = sorted(p.name for p in cluster.pools.values() if arithmetic.minor(p.version) > wanted)
    if ahead:
        raise SimError(400, "InvalidRequestException", f"Managed node groups {', '.join(ahead)} must be rolled back to"
                       f" {version} before the cluster's control plane")


def in_rollback_window(world: World, cluster: Cluster, version: str) -> bool:
    """Whether a node group may go back to `version`: the first part of the cluster's version rollback ("You must roll
    back your managed node groups to the previous version before rolling back the control plane")."""
    changed = cluster.version_changed_at
    return (cluster.previous_version is not None and changed is not None
            and arithmetic.minor(cluster.previous_version) == arithmetic.minor(version)
            and world.calendar_now() - changed <= ROLLBACK_WINDOW)


@router.get("/clusters/{name}/updates")
async def list_updates(request: Request, name: str):
    members = await _members(request, "ListUpdates", name=name)
    _, cluster = _eks_cluster(request, name, "ListUpdates")
    ids = [u.id for u in cluster.updates.values() if u.type in ("VersionUpdate", "VersionRollback", "AddonUpdate")
           and u.nodegroup == members.get("nodegroupName") and u.addon == members.get("addonName")]
    page, token = _page(ids, members)
    return {"updateIds": page, **({"nextToken": token} if token else {})}


@router.get("/clusters/{name}/updates/{update_id}")
async def describe_update(request: Request, name: str, update_id: str):
    members = await _members(request, "DescribeUpdate", name=name, updateId=update_id)
    _, cluster = _eks_cluster(request, name, "DescribeUpdate")
    update = cluster.updates.get(update_id)
    # nodegroupName "is required if the update is a node group update"; addonName likewise for add-ons.
    if update is None or update.nodegroup != members.get("nodegroupName") or update.addon != members.get("addonName"):
        raise SimError(404, "ResourceNotFoundException", f"No update found for ID: {update_id}.")
    return _update_json(update)


@router.get("/clusters/{name}/node-groups")
async def list_nodegroups(request: Request, name: str):
    members = await _members(request, "ListNodegroups", name=name)
    _, cluster = _eks_cluster(request, name, "ListNodegroups")
    names, token = _page(sorted(cluster.pools), members)
    return {"nodegroups": names, **({"nextToken": token} if token else {})}


def _check_scaling(scaling: dict[str, Any] | None, *, creating: bool) -> None:
    if not scaling:
        return
    given = [key for key in ("minSize", "maxSize", "desiredSize") if key in scaling]
    if creating and len(given) != 3:  # "When creating a node group, you must specify all or none of the properties."
        raise invalid("When creating a node group, scalingConfig needs all of minSize, maxSize and desiredSize, or none")
    if all(key in scaling for key in given) and len(given) == 3 and not (
            scaling["minSize"] <= scaling["desiredSize"] <= scaling["maxSize"]):
        raise invalid("Minimum capacity must be less than or equal to desired capacity, and desired capacity less than or"
                      " equal to maximum capacity")


def _check_update_config(update_config: dict[str, Any] | None) -> None:
    """NodegroupUpdateConfig: maxUnavailable or maxUnavailablePercentage, one of them."""
    if update_config is not None and ("maxUnavailable" in update_config) == ("maxUnavailablePercentage" in update_config):
        raise invalid("updateConfig needs exactly one of maxUnavailable and maxUnavailablePercentage")


@router.post("/clusters/{name}/node-groups")
async def create_nodegroup(request: Request, name: str):
    world, cluster = _eks_cluster(request, name, "CreateNodegroup")
    body = await _members(request, "CreateNodegroup", name=name)
    existing = cluster.pools.get(body["nodegroupName"])
    if existing is not None and body.get("clientRequestToken") and existing.token == body["clientRequestToken"]:
        return {"nodegroup": _nodegroup_json(world, cluster, existing)}  # the same request again
    if body.get("version") and arithmetic.minor_text(body["version"]) != cluster.version:
        # version: "By default, the Kubernetes version of the cluster is used, and this is the only accepted specified value."
        raise invalid(f"Requested Nodegroup version {body['version']} is invalid: a node group is created at the"
                      f" cluster's version, {cluster.version}")
    scaling = body.get("scalingConfig")
    _check_scaling(scaling, creating=True)
    _check_update_config(body.get("updateConfig"))
    settings: dict[str, Any] = {key: body[key] for key in ("amiType", "capacityType", "diskSize", "updateConfig", "tags",
                                                           "remoteAccess", "nodeRepairConfig", "warmPoolConfig") if key in body}
    if scaling:
        settings["scalingConfig"] = {"minSize": scaling["minSize"], "maxSize": scaling["maxSize"]}
    size = (body.get("instanceTypes") or [None])[0]
    kubelet = None
    image = body.get("releaseVersion")
    if "launchTemplate" in body:
        template, version = _launch_template(world, body["launchTemplate"])
        for member in ("diskSize", "remoteAccess"):  # "If you specify launchTemplate, then don't specify diskSize ..."
            if member in body:
                raise invalid(f"{member} can't be specified when a launch template is used: set it in the launch template")
        lt_version = template.versions[version]
        if lt_version.instance_type and body.get("instanceTypes"):
            raise invalid("Instance type can't be specified both in the launch template and in instanceTypes")
        if lt_version.image_id:  # a custom AMI: no amiType, version or releaseVersion
            for member in ("amiType", "version", "releaseVersion"):
                if member in body:
                    field = "kubernetesVersion" if member == "version" else member
                    raise invalid(f"You cannot specify the field {field} when using custom AMIs")
            settings["amiType"] = "CUSTOM"
            image, kubelet = lt_version.image_id, lt_version.kubernetes_version or cluster.version
        size = size or lt_version.instance_type
        settings["launchTemplate"] = {"id": template.id, "name": template.name, "version": version}
        if body.get("instanceTypes"):
            settings["instanceTypes"] = body["instanceTypes"]
    elif image and not image.startswith(f"{cluster.version}."):
        raise invalid(f"Requested release version {image} is not valid for kubernetes version {cluster.version}.")
    for required in ("nodeRole", "subnets"):  # required members, also in the model; empty lists too
        if not body.get(required):
            raise invalid(f"{required} is required to create a node group")
    pool = world.create_node_pool(
        cluster,
        name=body["nodegroupName"],
        version=cluster.version,
        size=size or DEFAULT_INSTANCE_TYPE,
        desired=int((scaling or {}).get("desiredSize", 2)),
        labels=body.get("labels") or {},
        token=body.get("clientRequestToken"),
        image=image,
        subnets=list(body["subnets"]), node_role=body["nodeRole"], taints=list(body.get("taints") or []),
        settings=settings, kubelet=kubelet,
    )
    return {"nodegroup": _nodegroup_json(world, cluster, pool)}


@router.get("/clusters/{name}/node-groups/{nodegroup}")
async def describe_nodegroup(request: Request, name: str, nodegroup: str):
    await _members(request, "DescribeNodegroup", name=name, nodegroupName=nodegroup)
    world, cluster = _eks_cluster(request, name, "DescribeNodegroup")
    return {"nodegroup": _nodegroup_json(world, cluster, world.pool(cluster, nodegroup))}


@router.delete("/clusters/{name}/node-groups/{nodegroup}")
async def delete_nodegroup(request: Request, name: str, nodegroup: str):
    await _members(request, "DeleteNodegroup", name=name, nodegroupName=nodegroup)
    world, cluster = _eks_cluster(request, name, "DeleteNodegroup")
    pool = world.delete_node_pool(cluster, nodegroup)
    return {"nodegroup": _nodegroup_json(world, cluster, pool)}


@router.post("/clusters/{name}/node-groups/{nodegroup}/update-version")
async def update_nodegroup_version(request: Request, name: str, nodegroup: str):
    world, cluster = _eks_cluster(request, name, "UpdateNodegroupVersion")
    body = await _members(request, "UpdateNodegroupVersion", name=name, nodegroupName=nodegroup)
    pool = world.pool(cluster, nodegroup)
    if (existing := cluster.tokens.get(body.get("clientRequestToken") or "")) is not None:
        return _update_json(cluster.updates[existing])
    custom = pool.settings.get("amiType") == "CUSTOM"
    created_with = pool.settings.get("launchTemplate")
    target = body.get("version") or cluster.version
    kubelet, image = None, body.get("releaseVersion")
    settings: dict[str, Any] = {}
    if custom:
        for member in ("version", "releaseVersion"):
            if member in body:
                field = "kubernetesVersion" if member == "version" else member
                raise invalid(f"You cannot specify the field {field} when using custom AMIs")
        if "launchTemplate" not in body:
            raise invalid("Launch template details can't be null for Custom ami type node group")
    if "launchTemplate" in body:
        if created_with is None:
            raise invalid("You can update a node group using a launch template only if the node group was originally"
                          " deployed with a launch template.")
        template, version = _launch_template(world, body["launchTemplate"])
        if template.id != created_with["id"]:
            # "the launch template ID or name must match what was used when the node group was created"
            raise invalid(f"The launch template must be the one the node group was created with: {created_with['id']}"
                          f" ({created_with['name']}), not {template.id} ({template.name})")
        lt_version = template.versions[version]
        settings["launchTemplate"] = {"id": template.id, "name": template.name, "version": version}
        if custom:
            image, kubelet = lt_version.image_id, lt_version.kubernetes_version or cluster.version
            target = pool.version if lt_version.kubernetes_version is None else arithmetic.minor_text(lt_version.kubernetes_version)
    if arithmetic.minor(target) < arithmetic.minor(pool.version) and not in_rollback_window(world, cluster, target):
        raise invalid("You cannot roll back a node group to an earlier Kubernetes version or AMI version.")
    if image and not custom and not image.startswith(f"{arithmetic.minor_text(target)}."):
        raise invalid(f"Requested release version {image} is not valid for kubernetes version {arithmetic.minor_text(target)}.")
    update = world.start_node_pool_upgrade(cluster, nodegroup, target, body.get("clientRequestToken"), bool(body.get("force")),
                                           image=image, kubelet=kubelet, settings=settings)
    return _update_json(update)


# ------------------------------------------------------------------ upgrade insights


def _insight_json(cluster: Cluster, index: int, insight: dict, *, whole: bool) -> dict:
    summary = {
        "id": f"{cluster.name}-insight-{index}", "name": insight["name"], "category": insight.get("category", "UPGRADE_READINESS"),
        "kubernetesVersion": insight["kubernetes_version"], "lastRefreshTime": cluster.created,
        "lastTransitionTime": cluster.created, "description": insight["description"],
        "insightStatus": {"status": insight["status"], "reason": insight["reason"]},
    }
    if whole:
        summary["recommendation"] = insight["recommendation"]
        summary["resources"] = [{"insightStatus": {"status": insight["status"], "reason": insight["reason"]},
                                 "kubernetesResourceUri": uri} for uri in insight["resources"]]
    return summary


@router.post("/clusters/{name}/insights")
async def list_insights(request: Request, name: str):
    members = await _members(request, "ListInsights", name=name)
    _, cluster = _eks_cluster(request, name, "ListInsights")
    wanted = members.get("filter") or {}
    found = [_insight_json(cluster, i, insight, whole=False) for i, insight in enumerate(cluster.insights)
             if ("categories" not in wanted or insight.get("category", "UPGRADE_READINESS") in wanted["categories"])
             and ("statuses" not in wanted or insight["status"] in wanted["statuses"])
             and ("kubernetesVersions" not in wanted or insight["kubernetes_version"] in wanted["kubernetesVersions"])]
    page, token = _page(found, members)
    return {"insights": page, **({"nextToken": token} if token else {})}


@router.get("/clusters/{name}/insights/{insight_id}")
async def describe_insight(request: Request, name: str, insight_id: str):
    await _members(request, "DescribeInsight", name=name, id=insight_id)
    _, cluster = _eks_cluster(request, name, "DescribeInsight")
    for index, insight in enumerate(cluster.insights):
        if f"{cluster.name}-insight-{index}" == insight_id:
            return {"insight": _insight_json(cluster, index, insight, whole=True)}
    raise SimError(404, "ResourceNotFoundException", f"No insight found for id: {insight_id}.")


# ------------------------------------------------------------------ managed add-ons


def _addon_json(cluster: Cluster, addon: str) -> dict:
    running = next((u for u in cluster.updates.values() if u.addon == addon and u.status == "InProgress"), None)
    return {"addonName": addon, "clusterName": cluster.name, "status": "UPDATING" if running else "ACTIVE",
            "addonVersion": cluster.addons[addon],
            "addonArn": f"arn:aws:eks:{cluster.region}:{ACCOUNT}:addon/{cluster.name}/{addon}/sim",
            "health": {"issues": []}}


@router.get("/clusters/{name}/addons")
async def list_addons(request: Request, name: str):
    members = await _members(request, "ListAddons", name=name)
    _, cluster = _eks_cluster(request, name, "ListAddons")
    page, token = _page(sorted(cluster.addons), members)
    return {"addons": page, **({"nextToken": token} if token else {})}


@router.get("/clusters/{name}/addons/{addon}")
async def describe_addon(request: Request, name: str, addon: str):
    await _members(request, "DescribeAddon", name=name, addonName=addon)
    _, cluster = _eks_cluster(request, name, "DescribeAddon")
    if addon not in cluster.addons:
        raise SimError(404, "ResourceNotFoundException", f"No addon: {addon} found in cluster: {name}")
    return {"addon": _addon_json(cluster, addon)}


@router.get("/addons/supported-versions")
async def describe_addon_versions(request: Request):
    members = await _members(request, "DescribeAddonVersions")
    version = members.get("kubernetesVersion")
    names = [members["addonName"]] if members.get("addonName") else sorted(eks_addons.catalogue())
    found = []
    for addon in names:
        versions = eks_addons.versions_for(addon, version) if version else eks_addons.catalogue().get(addon, [])
        if versions:
            found.append({"addonName": addon, "type": "networking", "owner": "aws", "publisher": "eks",
                          "addonVersions": [{"addonVersion": v["addonVersion"], "architecture": ["amd64", "arm64"],
                                             "compatibilities": [{**c, "platformVersions": ["*"]} for c in v["compatibilities"]],
                                             "requiresConfiguration": False} for v in versions]})
    page, token = _page(found, members)
    return {"addons": page, **({"nextToken": token} if token else {})}


@router.post("/clusters/{name}/addons/{addon}/update")
async def update_addon(request: Request, name: str, addon: str):
    world, cluster = _eks_cluster(request, name, "UpdateAddon")
    body = await _members(request, "UpdateAddon", name=name, addonName=addon)
    if (existing := cluster.tokens.get(body.get("clientRequestToken") or "")) is not None:
        return _update_json(cluster.updates[existing])
    if addon not in cluster.addons:
        raise SimError(404, "ResourceNotFoundException", f"No addon: {addon} found in cluster: {name}")
    wanted = body.get("addonVersion")
    if wanted is not None and wanted not in [v["addonVersion"] for v in eks_addons.versions_for(addon, cluster.version)]:
        # addonVersion: "The version must match one of the versions returned by DescribeAddonVersions."
        raise invalid(f"Addon version {wanted} is not supported for {addon} on Kubernetes {cluster.version}")
    if any(u.addon == addon and u.status == "InProgress" for u in cluster.updates.values()):
        raise SimError(409, "ResourceInUseException", f"Addon {addon} is already being updated")
    target = wanted or eks_addons.default_version(addon, cluster.version) or cluster.addons[addon]
    update = world.start_addon_update(cluster, addon, target, body.get("clientRequestToken"))
    return _update_json(update)

