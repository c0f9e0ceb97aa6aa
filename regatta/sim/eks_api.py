"""The EKS control plane in EKS's own REST-JSON wire format, so the real boto3 `eks` client
works against the simulator with only `endpoint_url` changed.

Served: list/describe clusters, update_cluster_version, describe/list updates, list/describe/
create/delete node groups, update_nodegroup_version. Mutations honour `clientRequestToken`
the way EKS does, so a retried request returns the operation it already started.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from regatta.sim.world import Cluster, NodePool, SimError, Update, World

router = APIRouter()
ACCOUNT = "111122223333"


def _eks_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="eks", operation=operation,
                                      missing=SimError(404, "ResourceNotFoundException", f"No cluster found for name: {name}."))


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


def _nodegroup_json(world: World, cluster: Cluster, pool: NodePool) -> dict:
    return {
        "nodegroupName": pool.name,
        "nodegroupArn": f"arn:aws:eks:{cluster.region}:{ACCOUNT}:nodegroup/{cluster.name}/{pool.name}/sim",
        "clusterName": cluster.name,
        "version": pool.version,
        "releaseVersion": pool.image,
        "createdAt": pool.created,
        "modifiedAt": pool.modified,
        "status": pool.status,
        "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 0, "maxSize": max(pool.desired * 2, 1), "desiredSize": pool.desired},
        "instanceTypes": [pool.size],
        "subnets": list(pool.subnets),
        "amiType": "AL2023_x86_64_STANDARD",
        "nodeRole": pool.node_role or "",
        "labels": dict(pool.labels),
        "taints": [dict(t) for t in pool.taints],
        **({"launchTemplate": dict(pool.launch_template)} if pool.launch_template else {}),
        "health": {"issues": list(pool.health_issues)},
        "updateConfig": {"maxUnavailable": 1},
    }


def _update_json(update: Update) -> dict:
    return {"update": {"id": update.id, "status": update.status, "type": update.type, "params": update.params,
                       "createdAt": update.created, "errors": update.errors}}


@router.get("/clusters")
async def list_clusters(request: Request):
    world: World = request.app.state.world
    return {"clusters": sorted(c.name for c in world.clusters.values() if c.provider == "eks")}


@router.get("/clusters/{name}")
async def describe_cluster(request: Request, name: str):
    _, cluster = _eks_cluster(request, name, "DescribeCluster")
    return {"cluster": _cluster_json(request, cluster)}


@router.post("/clusters")
async def create_cluster(request: Request):
    world: World = request.app.state.world
    body = await request.json()
    world.check_faults(body["name"], api="cloud", operation="CreateCluster")
    if not body.get("roleArn") or not (body.get("resourcesVpcConfig") or {}).get("subnetIds"):
        raise SimError(400, "InvalidParameterException", "roleArn and resourcesVpcConfig.subnetIds are required")
    world.check_account("eks", cluster_role=body["roleArn"], subnets=body["resourcesVpcConfig"]["subnetIds"])
    region = _signed_region(request)
    cluster = world.create_cluster(name=body["name"], provider="eks", region=region, version=body.get("version") or "1.30",
                                   labels=body.get("tags") or {}, token=body.get("clientRequestToken"))
    return {"cluster": _cluster_json(request, cluster)}


@router.delete("/clusters/{name}")
async def delete_cluster(request: Request, name: str):
    world, cluster = _eks_cluster(request, name, "DeleteCluster")
    world.delete_cluster(cluster, with_pools=False)
    return {"cluster": _cluster_json(request, cluster)}


@router.post("/clusters/{name}/updates")
async def update_cluster_version(request: Request, name: str):
    world, cluster = _eks_cluster(request, name, "UpdateClusterVersion")
    body = await request.json()
    if "version" not in body:
        raise SimError(400, "InvalidParameterException", "Only version updates are simulated; the request carries no version.")
    update = world.start_control_plane_upgrade(cluster, body["version"], body.get("clientRequestToken"))
    return _update_json(update)


@router.get("/clusters/{name}/updates")
async def list_updates(request: Request, name: str, nodegroupName: str | None = None):
    _, cluster = _eks_cluster(request, name, "ListUpdates")
    return {"updateIds": [u.id for u in cluster.updates.values() if u.nodegroup == nodegroupName]}


@router.get("/clusters/{name}/updates/{update_id}")
async def describe_update(request: Request, name: str, update_id: str, nodegroupName: str | None = None):
    _, cluster = _eks_cluster(request, name, "DescribeUpdate")
    update = cluster.updates.get(update_id)
    if update is None or update.nodegroup != nodegroupName:
        raise SimError(404, "ResourceNotFoundException", f"No update found for ID: {update_id}.")
    return _update_json(update)


@router.get("/clusters/{name}/node-groups")
async def list_nodegroups(request: Request, name: str):
    _, cluster = _eks_cluster(request, name, "ListNodegroups")
    return {"nodegroups": sorted(cluster.pools)}


@router.post("/clusters/{name}/node-groups")
async def create_nodegroup(request: Request, name: str):
    world, cluster = _eks_cluster(request, name, "CreateNodegroup")
    body = await request.json()
    scaling = body.get("scalingConfig") or {}
    for required in ("nodeRole", "subnets"):  # what CreateNodegroup cannot do without
        if not body.get(required):
            raise SimError(400, "InvalidParameterException", f"{required} is required to create a node group")
    pool = world.create_node_pool(
        cluster,
        name=body["nodegroupName"],
        version=body.get("version"),
        size=(body.get("instanceTypes") or ["m5.large"])[0],
        desired=int(scaling.get("desiredSize", 1)),
        labels=body.get("labels") or {},
        token=body.get("clientRequestToken"),
        image=body.get("releaseVersion"),
        subnets=list(body["subnets"]), node_role=body["nodeRole"], taints=list(body.get("taints") or []),
        launch_template=body.get("launchTemplate"),
    )
    return {"nodegroup": _nodegroup_json(world, cluster, pool)}


@router.get("/clusters/{name}/node-groups/{nodegroup}")
async def describe_nodegroup(request: Request, name: str, nodegroup: str):
    world, cluster = _eks_cluster(request, name, "DescribeNodegroup")
    return {"nodegroup": _nodegroup_json(world, cluster, world.pool(cluster, nodegroup))}


@router.delete("/clusters/{name}/node-groups/{nodegroup}")
async def delete_nodegroup(request: Request, name: str, nodegroup: str):
    world, cluster = _eks_cluster(request, name, "DeleteNodegroup")
    pool = world.delete_node_pool(cluster, nodegroup)
    return {"nodegroup": _nodegroup_json(world, cluster, pool)}


@router.post("/clusters/{name}/node-groups/{nodegroup}/update-version")
async def update_nodegroup_version(request: Request, name: str, nodegroup: str):
    world, cluster = _eks_cluster(request, name, "UpdateNodegroupVersion")
    body = await request.json()
    update = world.start_node_pool_upgrade(
        cluster, nodegroup, body.get("version"), body.get("clientRequestToken"), bool(body.get("force", False)),
        image=body.get("releaseVersion"),
    )
    return _update_json(update)
