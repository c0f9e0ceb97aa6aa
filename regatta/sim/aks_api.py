"""The AKS control plane in Azure Resource Manager's wire format, so the real
`azure-mgmt-containerservice` client works with only its base_url and credential replaced.

Served: managedClusters get/list/PUT (a changed kubernetesVersion upgrades the control plane
only, as when the agent pools' orchestratorVersion is left as it is), agentPools list/get/
PUT (create, or upgrade by surge when orchestratorVersion changes)/DELETE, upgradeNodeImageVersion
(surge onto AKS's newest node image) and upgradeProfiles/default. Every mutation is
a long-running operation reported ARM's way: an `Azure-AsyncOperation` header to poll, and a
`Location` header on deletes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from regatta.sim.world import AKS_NEWEST_NODE_IMAGE, Cluster, NodePool, SimError, Update, World

BASE = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters"
router = APIRouter()
STATE = {"ACTIVE": "Succeeded", "UPDATING": "Upgrading", "CREATING": "Creating", "DELETING": "Deleting", "CREATE_FAILED": "Failed"}


def _aks_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="aks", operation=operation,
                                      missing=SimError(404, "ResourceNotFound", f"The Resource 'Microsoft.ContainerService/managedClusters/{name}' was not found."))


def _pool_props(pool: NodePool, index: int) -> dict:
    return {
        "count": pool.desired,
        "vmSize": pool.size,
        **({"vnetSubnetID": pool.subnets[0]} if pool.subnets else {}),
        "orchestratorVersion": pool.version,
        "currentOrchestratorVersion": f"{pool.version}.5",
        "provisioningState": STATE.get(pool.status, "Succeeded"),
        "mode": "System" if index == 0 else "User",
        "type": "VirtualMachineScaleSets",
        "osType": "Linux",
        "nodeLabels": dict(pool.labels),
        "nodeImageVersion": pool.image,
    }


def _pool_json(subscription: str, group: str, cluster: Cluster, pool: NodePool, index: int) -> dict:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster.name}/agentPools/{pool.name}",
        "name": pool.name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": _pool_props(pool, index),
    }


def _cluster_json(subscription: str, group: str, cluster: Cluster) -> dict:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster.name}",
        "name": cluster.name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "location": cluster.region,
        "tags": dict(cluster.labels),
        "properties": {
            "provisioningState": STATE.get(cluster.status, "Succeeded"),
            "kubernetesVersion": cluster.version,
            "currentKubernetesVersion": f"{cluster.version}.5",
            "dnsPrefix": cluster.name,
            "fqdn": f"{cluster.name}.hcp.{cluster.region}.azmk8s.io",
            "powerState": {"code": "Running"},
            "agentPoolProfiles": [{"name": p.name, **_pool_props(p, i)} for i, p in enumerate(cluster.pools.values())],
        },
    }


def _async_headers(request: Request, subscription: str, cluster: Cluster, update: Update | None) -> dict[str, str]:
    assert update is not None, "every change the simulator makes has its operation"
    base = str(request.base_url).rstrip("/")
    status = f"{base}/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{cluster.region}/operations/{update.id}?api-version=2017-08-31"
    return {"Azure-AsyncOperation": status, "Retry-After": "0"}


def _index(cluster: Cluster, name: str) -> int:
    return list(cluster.pools).index(name)


@router.get(BASE)
async def list_clusters(request: Request, subscription: str, group: str):
    world: World = request.app.state.world
    return {"value": [_cluster_json(subscription, group, c) for c in world.clusters.values() if c.provider == "aks"]}


@router.get(BASE + "/{name}")
async def get_cluster(request: Request, subscription: str, group: str, name: str):
    _, cluster = _aks_cluster(request, name, "GetManagedCluster")
    return _cluster_json(subscription, group, cluster)


@router.put(BASE + "/{name}")
async def put_cluster(request: Request, subscription: str, group: str, name: str):
    world: World = request.app.state.world
    body = await request.json()
    if name not in world.clusters:
        world.check_faults(name, api="cloud", operation="PutManagedCluster")
        created = world.create_cluster(name=name, provider="aks", region=body.get("location", "eastus"),
                                       version=(body.get("properties") or {}).get("kubernetesVersion") or "1.30",
                                       labels=body.get("tags") or {}, token=None)
        return JSONResponse(_cluster_json(subscription, group, created), status_code=201,
                            headers=_async_headers(request, subscription, created, world.cluster_operation(created, "CreateCluster")))
    world, cluster = _aks_cluster(request, name, "PutManagedCluster")
    wanted = (body.get("properties") or {}).get("kubernetesVersion")
    if not wanted or wanted == cluster.version:
        return _cluster_json(subscription, group, cluster)
    update = world.start_control_plane_upgrade(cluster, wanted, None)
    return JSONResponse(_cluster_json(subscription, group, cluster), headers=_async_headers(request, subscription, cluster, update))


@router.delete(BASE + "/{name}")
async def delete_cluster(request: Request, subscription: str, group: str, name: str):
    world: World = request.app.state.world
    if name not in world.clusters:
        return Response(status_code=204)
    world, cluster = _aks_cluster(request, name, "DeleteManagedCluster")
    headers = _async_headers(request, subscription, cluster, world.delete_cluster(cluster, with_pools=True))
    headers["Location"] = headers["Azure-AsyncOperation"]
    return Response(status_code=202, headers=headers)


@router.get(BASE + "/{name}/agentPools")
async def list_pools(request: Request, subscription: str, group: str, name: str):
    _, cluster = _aks_cluster(request, name, "ListAgentPools")
    return {"value": [_pool_json(subscription, group, cluster, p, i) for i, p in enumerate(cluster.pools.values())]}


@router.get(BASE + "/{name}/agentPools/{pool}")
async def get_pool(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "GetAgentPool")
    return _pool_json(subscription, group, cluster, world.pool(cluster, pool), _index(cluster, pool))


@router.put(BASE + "/{name}/agentPools/{pool}")
async def put_pool(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "PutAgentPool")
    props = (await request.json()).get("properties") or {}
    if pool not in cluster.pools:
        created = world.create_node_pool(
            cluster, name=pool, version=props.get("orchestratorVersion"), size=props.get("vmSize", "Standard_D4s_v5"),
            subnets=[props["vnetSubnetID"]] if props.get("vnetSubnetID") else None,
            desired=int(props.get("count", 1)), labels=props.get("nodeLabels") or {}, token=None,
        )
        return JSONResponse(_pool_json(subscription, group, cluster, created, _index(cluster, pool)), status_code=201,
                            headers=_async_headers(request, subscription, cluster, created.operation))
    existing = cluster.pools[pool]
    wanted = props.get("orchestratorVersion")
    if not wanted or wanted == existing.version:
        return _pool_json(subscription, group, cluster, existing, _index(cluster, pool))
    update = world.start_node_pool_upgrade(cluster, pool, wanted, None, False)
    return JSONResponse(_pool_json(subscription, group, cluster, existing, _index(cluster, pool)),
                        headers=_async_headers(request, subscription, cluster, update))


@router.post(BASE + "/{name}/agentPools/{pool}/upgradeNodeImageVersion")
async def upgrade_node_image(request: Request, subscription: str, group: str, name: str, pool: str):
    """AKS moves a pool to its newest node image only; there is no asking for another one."""
    world, cluster = _aks_cluster(request, name, "UpgradeNodeImageVersion")
    existing = world.pool(cluster, pool)
    if existing.image == AKS_NEWEST_NODE_IMAGE and existing.status == "ACTIVE":
        return _pool_json(subscription, group, cluster, existing, _index(cluster, pool))
    update = world.start_node_pool_upgrade(cluster, pool, existing.version, None, False, image=AKS_NEWEST_NODE_IMAGE)
    return JSONResponse(_pool_json(subscription, group, cluster, existing, _index(cluster, pool)), status_code=202,
                        headers=_async_headers(request, subscription, cluster, update))


@router.get(BASE + "/{name}/agentPools/{pool}/upgradeProfiles/default")
async def pool_upgrade_profile(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "GetAgentPoolUpgradeProfile")
    existing = world.pool(cluster, pool)
    return {"id": f"{BASE.format(subscription=subscription, group=group)}/{name}/agentPools/{pool}/upgradeProfiles/default",
            "name": "default", "type": "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
            "properties": {"kubernetesVersion": existing.version, "osType": "Linux", "upgrades": [],
                           "latestNodeImageVersion": AKS_NEWEST_NODE_IMAGE}}


@router.delete(BASE + "/{name}/agentPools/{pool}")
async def delete_pool(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "DeleteAgentPool")
    if pool not in cluster.pools:
        return Response(status_code=204)
    deleting = world.delete_node_pool(cluster, pool)
    headers = _async_headers(request, subscription, cluster, deleting.operation)
    headers["Location"] = headers["Azure-AsyncOperation"]
    return Response(status_code=202, headers=headers)


@router.get("/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{location}/operations/{operation}")
async def operation_status(request: Request, subscription: str, location: str, operation: str):
    world: World = request.app.state.world
    update = world.cloud_operation(operation, operation="GetOperationStatus")
    body: dict[str, Any] = {"id": operation, "name": operation,
            "status": {"InProgress": "InProgress", "Successful": "Succeeded"}.get(update.status, "Failed")}
    if update.status == "Failed":
        body["error"] = {"code": update.errors[0]["errorCode"],
                         "message": "; ".join(f"{e['errorMessage']} {e.get('resourceIds') or ''}".strip() for e in update.errors)}
    return body
