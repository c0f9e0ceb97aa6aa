"""The GKE control plane in the Container API v1 REST wire format, so the real
`google-cloud-container` client (transport="rest") works with only its api_endpoint changed.

Served: get/list clusters, updateMaster, list/get/create/delete/update (nodeVersion) node
pools, get operations. Enums travel as integers, as the client asks (`enum-encoding=int`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from regatta.sim.world import Cluster, NodePool, SimError, Update, World

router = APIRouter(prefix="/v1/projects/{project}/locations/{location}")

# google.container.v1 enum numbers
CLUSTER_RUNNING, CLUSTER_RECONCILING = 2, 3
POOL_STATUS = {"ACTIVE": 2, "UPDATING": 4, "CREATING": 1, "DELETING": 5, "CREATE_FAILED": 6}
OP_TYPE = {"CreateCluster": 1, "DeleteCluster": 2, "CreateNodePool": 7, "DeleteNodePool": 8}  # VersionUpdate: UPGRADE_MASTER 3 or UPGRADE_NODES 4
OP_RUNNING, OP_DONE = 2, 3



def _gke_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="gke", operation=operation,
                                      missing=SimError(404, "NotFound", f"Not found: projects/-/locations/-/clusters/{name}."))


def _gke_version(version: str) -> str:
    return f"{version}.5-gke.1200"


def _node_image(version: str | None) -> str | None:
    """GKE's node image is its full node version (1.31.6-gke.1500); a bare minor (1.31) asks for the newest."""
    return version if version and version.count(".") >= 2 else None


def _pool_json(project: str, location: str, cluster: Cluster, pool: NodePool) -> dict:
    return {
        "name": pool.name,
        "version": pool.image or _gke_version(pool.version),
        "initialNodeCount": pool.desired,
        "status": POOL_STATUS.get(pool.status, 2),
        "config": {"machineType": pool.size, "labels": dict(pool.labels)},
        "selfLink": f"/v1/projects/{project}/locations/{location}/clusters/{cluster.name}/nodePools/{pool.name}",
        "upgradeSettings": {"maxSurge": 1, "maxUnavailable": 0},
    }


def _cluster_json(request: Request, project: str, location: str, cluster: Cluster) -> dict:
    versions = sorted({p.version for p in cluster.pools.values()}) or [cluster.version]
    return {
        "name": cluster.name,
        "location": location,
        "zone": location,
        "currentMasterVersion": _gke_version(cluster.version),
        "currentNodeVersion": _gke_version(versions[0]),
        "status": CLUSTER_RECONCILING if cluster.status == "UPDATING" else CLUSTER_RUNNING,
        "endpoint": (world.api_server(cluster.name).removeprefix("https://") if (world := request.app.state.world).kube_url
                     else f"{request.url.hostname}:{request.url.port}"),
        "masterAuth": {"clusterCaCertificate": world.ca_data or ""},
        "resourceLabels": dict(cluster.labels),
        "nodePools": [_pool_json(project, location, cluster, p) for p in cluster.pools.values()],
        "selfLink": f"/v1/projects/{project}/locations/{location}/clusters/{cluster.name}",
    }


def _operation_json(project: str, location: str, update: Update | None) -> dict:
    assert update is not None, "every change the simulator makes has its operation"
    body = {
        "name": update.id,
        "operationType": OP_TYPE[update.type] if update.type != "VersionUpdate" else (4 if update.nodegroup else 3),
        "status": OP_RUNNING if update.status == "InProgress" else OP_DONE,
        "location": location,
        "selfLink": f"/v1/projects/{project}/locations/{location}/operations/{update.id}",
        "targetLink": f"/v1/projects/{project}/locations/{location}/clusters/{update.cluster}"
        + (f"/nodePools/{update.nodegroup}" if update.nodegroup else ""),
    }
    if update.status == "Failed":
        message = "; ".join(f"{e['errorCode']}: {e['errorMessage']} {e.get('resourceIds') or ''}".strip() for e in update.errors)
        body["error"] = {"code": 9, "message": message}
        body["statusMessage"] = message
    return body


@router.get("/clusters")
async def list_clusters(request: Request, project: str, location: str):
    world: World = request.app.state.world
    return {"clusters": [_cluster_json(request, project, location, c) for c in world.clusters.values()
                         if c.provider == "gke" and c.region == location]}


@router.get("/clusters/{name}")
async def get_cluster(request: Request, project: str, location: str, name: str):
    _, cluster = _gke_cluster(request, name, "GetCluster")
    return _cluster_json(request, project, location, cluster)


@router.post("/clusters/{name}:updateMaster")
async def update_master(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "UpdateMaster")
    body = await request.json()
    update = world.start_control_plane_upgrade(cluster, body["masterVersion"], None)
    return _operation_json(project, location, update)


@router.get("/clusters/{name}/nodePools")
async def list_node_pools(request: Request, project: str, location: str, name: str):
    _, cluster = _gke_cluster(request, name, "ListNodePools")
    return {"nodePools": [_pool_json(project, location, cluster, p) for p in cluster.pools.values()]}


@router.get("/clusters/{name}/nodePools/{pool}")
async def get_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    world, cluster = _gke_cluster(request, name, "GetNodePool")
    return _pool_json(project, location, cluster, world.pool(cluster, pool))


@router.post("/clusters/{name}/nodePools")
async def create_node_pool(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "CreateNodePool")
    spec = (await request.json())["nodePool"]
    pool = world.create_node_pool(
        cluster, name=spec["name"], version=spec.get("version"), size=(spec.get("config") or {}).get("machineType", "e2-standard-4"),
        desired=int(spec.get("initialNodeCount", 1)), labels=(spec.get("config") or {}).get("labels") or {}, token=None,
        image=_node_image(spec.get("version")),
    )
    return _operation_json(project, location, pool.operation)


@router.put("/clusters/{name}/nodePools/{pool}")
async def update_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    world, cluster = _gke_cluster(request, name, "UpdateNodePool")
    body = await request.json()
    update = world.start_node_pool_upgrade(cluster, pool, body.get("nodeVersion"), None, False,
                                           image=_node_image(body.get("nodeVersion")))
    return _operation_json(project, location, update)


@router.delete("/clusters/{name}/nodePools/{pool}")
async def delete_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    world, cluster = _gke_cluster(request, name, "DeleteNodePool")
    return _operation_json(project, location, world.delete_node_pool(cluster, pool).operation)


@router.get("/operations/{operation}")
async def get_operation(request: Request, project: str, location: str, operation: str):
    world: World = request.app.state.world
    return _operation_json(project, location, world.cloud_operation(operation, operation="GetOperation"))


@router.post("/clusters")
async def create_cluster(request: Request, project: str, location: str):
    world: World = request.app.state.world
    spec = (await request.json())["cluster"]
    world.check_faults(spec["name"], api="cloud", operation="CreateCluster")
    world.check_account("gke", network=spec.get("network") or None, subnetwork=spec.get("subnetwork") or None)
    cluster = world.create_cluster(name=spec["name"], provider="gke", region=location,
                                   version=spec.get("initialClusterVersion") or "1.30",
                                   labels=spec.get("resourceLabels") or {}, token=None)
    return _operation_json(project, location, world.cluster_operation(cluster, "CreateCluster"))


@router.delete("/clusters/{name}")
async def delete_cluster(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "DeleteCluster")
    return _operation_json(project, location, world.delete_cluster(cluster, with_pools=True))


@router.get("/operations")
async def list_operations(request: Request, project: str, location: str):
    world: World = request.app.state.world
    return {"operations": [_operation_json(project, location, u) for u in world.updates.values()]}
