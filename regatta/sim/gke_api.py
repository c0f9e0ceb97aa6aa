"""The GKE control plane in the Container API v1 REST wire format, so the real
`google-cloud-container` client (transport="rest") works with only its api_endpoint changed.

Served: get/list/create/delete clusters, updateMaster, list/get/create/delete/update node pools,
get/list operations. Enums travel as integers, as the client asks (`enum-encoding=int`). What GKE
refuses is refused here in GKE's words and error envelope (docs/cloud-conformance.md, GKE table):
one operation at a time per cluster (HTTP 400 FAILED_PRECONDITION naming the operation in flight,
GKE's own auto-upgrades included), the control plane one minor at a time, node pools at most two
minors behind it (one with auto-upgrade on) and never ahead, GKE's name rules, a cluster born with
nodes. Operations name the project by its number and zonal clusters by `zones/`, as GKE's do.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request

from regatta.sim import addresses, arithmetic
from regatta.sim.world import Cluster, NodePool, SimError, Update, World

router = APIRouter(prefix="/v1/projects/{project}/locations/{location}")

# google.container.v1 enum numbers
CLUSTER_STATUS = {"CREATING": 1, "ACTIVE": 2, "UPDATING": 3, "DELETING": 4, "FAILED": 5}
POOL_STATUS = {"CREATING": 1, "ACTIVE": 2, "UPDATING": 4, "DELETING": 5, "CREATE_FAILED": 6}
OP_TYPE = {"CreateCluster": 1, "DeleteCluster": 2, "CreateNodePool": 7, "DeleteNodePool": 8}  # VersionUpdate: 3 or 4
OP_PENDING, OP_RUNNING, OP_DONE = 1, 2, 3
TAINT_EFFECT = {"NO_SCHEDULE": 1, "PREFER_NO_SCHEDULE": 2, "NO_EXECUTE": 3}
TAINT_EFFECT_NAME = {number: name for name, number in TAINT_EFFECT.items()}
STRATEGY_SURGE, STRATEGY_BLUE_GREEN = 3, 2
DEFAULT_IMAGE_TYPE = "COS_CONTAINERD"
SUPPORTED_MINORS = range(27, 36)  # what the simulated GKE offers, 2026-12
DEFAULT_MINOR = 33  # `-` for a master: the default version
HOST = "https://container.googleapis.com/v1"
# NodePool.name: "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)'".
POOL_NAME = re.compile(r"(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)")
CLUSTER_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?")
_VERSION = re.compile(r"^1\.(\d+)(?:\.\d+(?:-.+)?)?$")


def refused(status: int, canonical: str, message: str) -> SimError:
    """A refusal in Google's terms: its HTTP status and its canonical code (FAILED_PRECONDITION, ...)."""
    return SimError(status, canonical, message)


def _gke_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="gke", operation=operation,
                                      missing=refused(404, "NOT_FOUND", f"Not found: projects/-/locations/-/clusters/{name}."))


def _zonal(location: str) -> bool:
    return re.fullmatch(r"[a-z]+-[a-z]+\d+-[a-z]", location) is not None


def _link(world: World, location: str, tail: str) -> str:
    """A self or target link as GKE writes it: the project's number, `zones/` for a zonal cluster."""
    return f"{HOST}/projects/{world.accounts.gke.project_number}/{'zones' if _zonal(location) else 'locations'}/{location}/{tail}"


def _gke_version(version: str) -> str:
    return f"{version}.5-gke.1200"


def _resolve(world: World, cluster: Cluster, version: str, *, master: bool) -> tuple[str, str | None]:
    """A version a request names, as GKE reads it: (the minor, the full node version it picks when one was
    named exactly). Aliases: `latest`, `1.X`, `1.X.Y`, `1.X.Y-gke.N`, and `-` (the default version for a
    master, the master's version for nodes)."""
    if version == "-":
        return (f"1.{DEFAULT_MINOR}" if master else cluster.version), None
    if version == "latest":
        return f"1.{SUPPORTED_MINORS.stop - 1}", None
    match = _VERSION.match(version)
    if match is None:
        raise refused(400, "INVALID_ARGUMENT", f'Version "{version}" is invalid. It should have the form 1.X, 1.X.Y,'
                      " 1.X.Y-.*, 'latest'")
    if int(match[1]) not in SUPPORTED_MINORS:
        raise refused(400, "INVALID_ARGUMENT", f'{"Master" if master else "Node"} version "{version}" is unsupported.')
    return f"1.{match[1]}", version if version.count(".") >= 2 and "-gke." in version else None


def _busy(world: World, cluster: Cluster) -> None:
    """GKE runs one operation at a time on a cluster, its own auto-upgrades included: HTTP 400 FAILED_PRECONDITION."""
    running = world.running_operations(cluster)
    if running:
        first = running[0]
        doing = ("upgrading" if first.type == "VersionUpdate" else "creating a node pool for" if first.type == "CreateNodePool"
                 else "deleting a node pool for" if first.type == "DeleteNodePool" else "operating on")
        raise refused(400, "FAILED_PRECONDITION", f"Operation {_operation_name(first)} is currently {doing} cluster"
                      f" {cluster.name}. Please wait and try again once it is done.")


def _pool_skew(cluster: Cluster, minor: str, *, auto_upgrade: bool, pool: str) -> None:
    """Node pools may trail the master by two minors (one with auto-upgrade on), never lead it (GKE versioning)."""
    master = arithmetic.minor(cluster.version)
    wanted = arithmetic.minor(minor)
    if wanted > master:
        raise refused(400, "INVALID_ARGUMENT", f'desired node version "{_gke_version(minor)}" cannot be greater than'
                      f' current master version "{_gke_version(cluster.version)}".')
    allowed = 1 if auto_upgrade else 2
    if master[1] - wanted[1] > allowed:
        if auto_upgrade:
            raise refused(400, "INVALID_ARGUMENT", f'Auto-upgrade is enabled, node version "{_gke_version(minor)}" must be'
                          f' within one minor version of master version "{_gke_version(cluster.version)}".')
        raise refused(400, "INVALID_ARGUMENT", f'Node pool {pool}: node version "{_gke_version(minor)}" must be within'
                      f' two minor versions of master version "{_gke_version(cluster.version)}".')


def _auto_upgrade(spec: dict[str, Any]) -> bool:
    return bool((spec.get("management") or {}).get("autoUpgrade"))


def _config(pool: NodePool) -> dict[str, Any]:
    config = dict(pool.settings.get("config") or {})
    config.update({"machineType": pool.size, "labels": dict(pool.labels),
                   "imageType": config.get("imageType", DEFAULT_IMAGE_TYPE)})
    if pool.taints:
        config["taints"] = [{"key": t["key"], "value": t.get("value", ""), "effect": TAINT_EFFECT.get(t.get("effect", ""), 1)}
                            for t in pool.taints]
    return config


def _cluster_locations(cluster: Cluster) -> list[str]:
    """Cluster.locations: a zonal cluster's nodes live in its zone; a regional one's in three zones of its region
    unless the cluster was created with others ("By default, GKE replicates each node pool across three zones")."""
    given = cluster.settings.get("locations")
    if given:
        return list(given)
    return [cluster.region] if _zonal(cluster.region) else [f"{cluster.region}-{zone}" for zone in "abc"]


def _per_zone(pool: NodePool) -> int:
    zones = max(1, len(pool.settings.get("locations") or []))
    return max(0, -(-pool.desired // zones))


def _pool_json(world: World, location: str, cluster: Cluster, pool: NodePool) -> dict:
    settings = pool.settings
    return {
        "name": pool.name,
        "version": pool.image or _gke_version(pool.version),
        "initialNodeCount": _per_zone(pool),
        "status": POOL_STATUS.get(pool.status, 2),
        "config": _config(pool),
        **{key: settings[key] for key in ("locations", "autoscaling", "management", "maxPodsConstraint",
                                          "placementPolicy", "nodeDrainConfig") if key in settings},
        "upgradeSettings": settings.get("upgradeSettings") or {"maxSurge": 1, "maxUnavailable": 0},
        "podIpv4CidrSize": world.gke_pod_cidr_size(pool),
        "networkConfig": _pool_network(world, cluster, pool),
        "selfLink": _link(world, location, f"clusters/{cluster.name}/nodePools/{pool.name}"),
        "etag": f"{int(pool.modified * 1000):x}",
    }


def _pool_network(world: World, cluster: Cluster, pool: NodePool) -> dict:
    """NodeNetworkConfig: what the pool was given, and where its nodes' Pod blocks come from (the cluster's Pod
    range, which every pool of the sim shares) with its output-only utilization: Usage/[the range's addresses],
    Usage = the blocks the nodes hold (regatta/sim/addresses.py)."""
    pod_range = world.gke_pod_range(cluster)
    total = addresses.range_addresses(pod_range)
    return {**(pool.settings.get("networkConfig") or {}), "podRange": f"gke-{cluster.name}-pods",
            "podIpv4CidrBlock": pod_range, "podIpv4RangeUtilization": (total - world.gke_pod_range_free(cluster)) / total}


def _cluster_json(request: Request, location: str, cluster: Cluster) -> dict:
    world: World = request.app.state.world
    versions = sorted({p.version for p in cluster.pools.values()}) or [cluster.version]
    return {
        "name": cluster.name,
        "location": location,
        "zone": location,
        "currentMasterVersion": _gke_version(cluster.version),
        "currentNodeVersion": _gke_version(versions[0]),
        "status": CLUSTER_STATUS.get(cluster.status, 2),
        "endpoint": (world.api_server(cluster.name).removeprefix("https://") if world.kube_url
                     else f"{request.url.hostname}:{request.url.port}"),
        "masterAuth": {"clusterCaCertificate": world.ca_data or ""},
        "resourceLabels": dict(cluster.labels),
        "locations": _cluster_locations(cluster),
        "clusterIpv4Cidr": world.gke_pod_range(cluster),
        "ipAllocationPolicy": {"useIpAliases": True, "clusterIpv4CidrBlock": world.gke_pod_range(cluster),
                               "clusterSecondaryRangeName": f"gke-{cluster.name}-pods"},
        "nodePools": [_pool_json(world, location, cluster, p) for p in cluster.pools.values()],
        "selfLink": _link(world, location, f"clusters/{cluster.name}"),
    }


def _operation_name(update: Update) -> str:
    """GKE names operations `operation-<epoch ms>-<hex>`; the hex is the simulator's own id."""
    return f"operation-{int(update.created * 1000)}-{update.id.removeprefix('upd-')}"


def _update_of(world: World, name: str) -> Update:
    found = re.fullmatch(r"operation-\d+-([0-9a-f]+)", name)
    if found is None:
        raise refused(404, "NOT_FOUND", f"Not found: operation {name}.")
    return world.cloud_operation(f"upd-{found[1]}", operation="GetOperation")


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e9):09d}Z"


def _operation_json(world: World, location: str, update: Update | None) -> dict:
    assert update is not None, "every change the simulator makes has its operation"
    target = f"clusters/{update.cluster}" + (f"/nodePools/{update.nodegroup}" if update.nodegroup else "")
    body: dict[str, Any] = {
        "name": _operation_name(update),
        "zone": location,
        "operationType": OP_TYPE[update.type] if update.type != "VersionUpdate" else (4 if update.nodegroup else 3),
        "status": OP_RUNNING if update.status == "InProgress" else OP_DONE,
        "location": location,
        "selfLink": _link(world, location, f"operations/{_operation_name(update)}"),
        "targetLink": _link(world, location, target),
        "startTime": _rfc3339(update.created),
    }
    if update.finished is not None:
        body["endTime"] = _rfc3339(update.finished)
    if update.status == "Failed":
        message = "; ".join(f"{e['errorCode']}: {e['errorMessage']} {e.get('resourceIds') or ''}".strip() for e in update.errors)
        body["error"] = {"code": 9, "message": message}
        body["statusMessage"] = message
    return body


@router.get("/clusters")
async def list_clusters(request: Request, project: str, location: str):
    world: World = request.app.state.world
    return {"clusters": [_cluster_json(request, location, c) for c in world.clusters.values()
                         if c.provider == "gke" and (location == "-" or c.region == location)]}


@router.get("/clusters/{name}")
async def get_cluster(request: Request, project: str, location: str, name: str):
    _, cluster = _gke_cluster(request, name, "GetCluster")
    return _cluster_json(request, location, cluster)


@router.post("/clusters/{name}:updateMaster")
async def update_master(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "UpdateMaster")
    body = await request.json()
    if not body.get("masterVersion"):
        raise refused(400, "INVALID_ARGUMENT", "Required field masterVersion is missing.")
    _busy(world, cluster)
    wanted, _ = _resolve(world, cluster, body["masterVersion"], master=True)
    current = arithmetic.minor(cluster.version)
    target = arithmetic.minor(wanted)
    if target < current:
        raise refused(400, "INVALID_ARGUMENT", f"Master version {_gke_version(cluster.version)} cannot be downgraded to"
                      f" {body['masterVersion']}.")
    if target[1] > current[1] + 1:
        raise refused(400, "INVALID_ARGUMENT", f"Master version {_gke_version(cluster.version)} cannot be upgraded to"
                      f" {body['masterVersion']}: cannot upgrade the master more than a minor version at a time.")
    for pool in cluster.pools.values():
        if target[1] - arithmetic.minor(pool.version)[1] > (1 if _auto_upgrade(pool.settings) else 2):
            raise refused(400, "INVALID_ARGUMENT", f"Node pool {pool.name} runs {_gke_version(pool.version)}, which would"
                          f" fall more than {'one minor version' if _auto_upgrade(pool.settings) else 'two minor versions'}"
                          f" behind master version {_gke_version(wanted)}; upgrade the node pool first.")
    if target == current:  # "this includes upgrades to the same version, which are simply a recreation"
        update = world.start_outside_operation(cluster, node_pool=None, seconds=60)
        update.outside = False
        return _operation_json(world, location, update)
    return _operation_json(world, location, world.start_control_plane_upgrade(cluster, wanted, None))


@router.get("/clusters/{name}/nodePools")
async def list_node_pools(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "ListNodePools")
    return {"nodePools": [_pool_json(world, location, cluster, p) for p in cluster.pools.values()]}


@router.get("/clusters/{name}/nodePools/{pool}")
async def get_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    world, cluster = _gke_cluster(request, name, "GetNodePool")
    if pool not in cluster.pools:
        raise refused(404, "NOT_FOUND", f"Not found: projects/{project}/locations/{location}/clusters/{name}/nodePools/{pool}.")
    return _pool_json(world, location, cluster, cluster.pools[pool])


def _new_pool(world: World, cluster: Cluster, spec: dict[str, Any]) -> NodePool:
    """A node pool as CreateNodePool (or a CreateCluster's nodePools) asks for it."""
    name = spec.get("name") or ""
    if not POOL_NAME.fullmatch(name):
        raise refused(400, "INVALID_ARGUMENT", f'Invalid value for field "node_pool.name": "{name}". Must be a match of regex'
                      " '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only lowercase alphanumerics and '-' allowed, must start"
                      " with a letter and end with an alphanumeric, and must be no longer than 40 characters).")
    if name in cluster.pools:
        raise refused(409, "ALREADY_EXISTS", f"Already exists: projects/-/locations/{cluster.region}/clusters/{cluster.name}"
                      f"/nodePools/{name}.")
    minor, exact = _resolve(world, cluster, spec.get("version") or "-", master=False)
    _pool_skew(cluster, minor, auto_upgrade=_auto_upgrade(spec), pool=name)
    config = dict(spec.get("config") or {})
    size = config.pop("machineType", "e2-medium")
    labels = config.pop("labels", {}) or {}
    taints = [{"key": t["key"], "value": t.get("value", ""), "effect": TAINT_EFFECT_NAME.get(t.get("effect"), str(t.get("effect")))}
              for t in config.pop("taints", []) or []]
    if "diskSizeGb" in config and int(config["diskSizeGb"]) < 10:
        raise refused(400, "INVALID_ARGUMENT", "The smallest allowed disk size is 10GB.")
    scaling = spec.get("autoscaling") or {}
    if scaling.get("enabled") and int(scaling.get("minNodeCount", 0)) > int(scaling.get("maxNodeCount", 0)):
        raise refused(400, "INVALID_ARGUMENT", "Node pool autoscaling: min_node_count must be ≤ max_node_count.")
    config.setdefault("imageType", DEFAULT_IMAGE_TYPE)
    settings: dict[str, Any] = {"config": config, "locations": _cluster_locations(cluster)}  # NodePool.locations' default
    settings.update({key: spec[key] for key in ("locations", "autoscaling", "management", "maxPodsConstraint", "networkConfig",
                                                "placementPolicy", "upgradeSettings", "nodeDrainConfig") if spec.get(key)})
    zones = len(settings["locations"])  # initialNodeCount is per zone
    return world.create_node_pool(
        cluster, name=name, version=minor, size=size, desired=int(spec.get("initialNodeCount", 0)) * zones, labels=labels,
        token=None, image=exact, taints=taints, settings=settings)


@router.post("/clusters/{name}/nodePools")
async def create_node_pool(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "CreateNodePool")
    spec = (await request.json()).get("nodePool")
    if not spec:
        raise refused(400, "INVALID_ARGUMENT", "Required field node_pool is missing.")
    _busy(world, cluster)
    world.check_account("gke", size=(spec.get("config") or {}).get("machineType", "e2-medium"))
    return _operation_json(world, location, _new_pool(world, cluster, spec).operation)


@router.put("/clusters/{name}/nodePools/{pool}")
async def update_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    """UpdateNodePool: a new node version, image type or upgrade settings. Only what is sent changes: an absent
    imageType leaves the pool's own (GKE accepts `{nodeVersion}` alone), a present one replaces it."""
    world, cluster = _gke_cluster(request, name, "UpdateNodePool")
    body = await request.json()
    existing = world.pool(cluster, pool)
    _busy(world, cluster)
    if body.get("etag") and body["etag"] != f"{int(existing.modified * 1000):x}":
        raise refused(409, "ABORTED", f"The etag of node pool {pool} does not match: it changed since it was read.")
    settings: dict[str, Any] = {}
    config = dict(existing.settings.get("config") or {})
    image_type = body.get("imageType")
    if image_type and image_type != config.get("imageType", DEFAULT_IMAGE_TYPE):
        if image_type.startswith("WINDOWS") != config.get("imageType", DEFAULT_IMAGE_TYPE).startswith("WINDOWS"):
            raise refused(400, "INVALID_ARGUMENT", f"Node pool {pool} runs {config.get('imageType', DEFAULT_IMAGE_TYPE)}:"
                          f" changing its image type to {image_type} (between Linux and Windows) is not supported.")
        config["imageType"] = image_type
        settings["config"] = config
    if "upgradeSettings" in body:
        settings["upgradeSettings"] = body["upgradeSettings"]
    if "nodeDrainConfig" in body:
        settings["nodeDrainConfig"] = body["nodeDrainConfig"]
    if not body.get("nodeVersion"):
        if not settings:
            raise refused(400, "INVALID_ARGUMENT", "The update of node pool changes nothing: give node_version, image_type"
                          " or another field to update.")
        existing.settings.update(settings)
        update = world.start_outside_operation(cluster, node_pool=pool, seconds=30)
        update.outside = False
        return _operation_json(world, location, update)
    minor, exact = _resolve(world, cluster, body["nodeVersion"], master=False)
    _pool_skew(cluster, minor, auto_upgrade=_auto_upgrade(existing.settings), pool=pool)
    if arithmetic.minor(minor) < arithmetic.minor(existing.version):
        raise refused(400, "INVALID_ARGUMENT", f"Node pool {pool} cannot be downgraded from {_gke_version(existing.version)}"
                      f" to {body['nodeVersion']}.")
    update = world.start_node_pool_upgrade(cluster, pool, minor, None, False, image=exact or _gke_version(minor),
                                           settings=settings)
    return _operation_json(world, location, update)


@router.delete("/clusters/{name}/nodePools/{pool}")
async def delete_node_pool(request: Request, project: str, location: str, name: str, pool: str):
    world, cluster = _gke_cluster(request, name, "DeleteNodePool")
    if pool in cluster.pools and cluster.pools[pool].status == "DELETING":
        return _operation_json(world, location, cluster.pools[pool].operation)
    _busy(world, cluster)
    return _operation_json(world, location, world.delete_node_pool(cluster, pool).operation)


@router.get("/operations/{operation}")
async def get_operation(request: Request, project: str, location: str, operation: str):
    world: World = request.app.state.world
    return _operation_json(world, location, _update_of(world, operation))


@router.post("/clusters")
async def create_cluster(request: Request, project: str, location: str):
    world: World = request.app.state.world
    spec = (await request.json()).get("cluster")
    if not spec:
        raise refused(400, "INVALID_ARGUMENT", "Required field cluster is missing.")
    name = spec.get("name") or ""
    world.check_faults(name, api="cloud", operation="CreateCluster")
    if not CLUSTER_NAME.fullmatch(name):
        raise refused(400, "INVALID_ARGUMENT", f'Invalid value for field "cluster.name": "{name}": up to 40 lowercase'
                      " letters, numbers and hyphens, starting with a letter and ending with a letter or number.")
    pools = spec.get("nodePools") or []
    if pools and (spec.get("initialNodeCount") or spec.get("nodeConfig")):
        raise refused(400, "INVALID_ARGUMENT", "Cluster.node_pools cannot be set together with Cluster.initial_node_count"
                      " or Cluster.node_config.")
    if not pools and int(spec.get("initialNodeCount") or 0) <= 0:
        raise refused(400, "INVALID_ARGUMENT", "Cluster.initial_node_count must be greater than zero.")
    world.check_account("gke", network=spec.get("network") or None, subnetwork=spec.get("subnetwork") or None)
    for pool in pools:
        world.check_account("gke", size=(pool.get("config") or {}).get("machineType", "e2-medium"))
    version, _ = _resolve(world, Cluster(name=name, provider="gke", region=location, labels={}, version="1.0",
                                         time_scale=None), spec.get("initialClusterVersion") or "-", master=True)
    cluster = world.create_cluster(name=name, provider="gke", region=location, version=version,
                                   labels=spec.get("resourceLabels") or {}, token=None)
    if spec.get("locations"):
        cluster.settings["locations"] = list(spec["locations"])
    for pool in pools or [{"name": "default-pool", "initialNodeCount": spec["initialNodeCount"],
                           **({"config": spec["nodeConfig"]} if spec.get("nodeConfig") else {})}]:
        _new_pool(world, cluster, {**pool, "version": pool.get("version") or version})
    return _operation_json(world, location, world.cluster_operation(cluster, "CreateCluster"))


@router.delete("/clusters/{name}")
async def delete_cluster(request: Request, project: str, location: str, name: str):
    world, cluster = _gke_cluster(request, name, "DeleteCluster")
    return _operation_json(world, location, world.delete_cluster(cluster, with_pools=True))


@router.get("/operations")
async def list_operations(request: Request, project: str, location: str):
    world: World = request.app.state.world
    gke = {c.name for c in world.clusters.values() if c.provider == "gke" and (location == "-" or c.region == location)}
    return {"operations": [_operation_json(world, world.clusters[u.cluster].region if u.cluster in world.clusters else location, u)
                           for u in world.updates.values() if u.cluster in gke]}
