"""The AKS control plane in Azure Resource Manager's wire format, so the real
`azure-mgmt-containerservice` client works with only its base_url and credential replaced.

Served: managedClusters get/list/PUT (create, or a changed kubernetesVersion with every agent pool's
orchestratorVersion left as it is: the control plane only)/DELETE, listClusterUserCredential,
agentPools list/get/PUT (create, change, or upgrade by surge when orchestratorVersion changes)/DELETE,
upgradeNodeImageVersion (surge onto AKS's newest node image) and upgradeProfiles/default. Every
mutation is a long-running operation reported ARM's way: an `Azure-AsyncOperation` header to poll,
and a `Location` header on deletes.

What AKS refuses is refused here in its words (docs/cloud-conformance.md, AKS table): agent pool
names `^[a-z][a-z0-9]{0,11}$` (six characters for Windows), a System pool always present and Linux,
409 OperationNotAllowed while another operation runs on the cluster or the pool, the control plane
one minor at a time and at most three ahead of every pool, If-Match against the eTag, immutable pool
properties, a PodDisruptionBudget with maxUnavailable 0 before a pool upgrade, a surge drain that
fails after the pool's drainTimeoutInMinutes rather than break a budget. kubernetesVersion and
orchestratorVersion are what was asked for; currentKubernetesVersion and currentOrchestratorVersion
what runs.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from regatta.sim import arithmetic
from regatta.sim.world import AKS_NEWEST_NODE_IMAGE, AKS_SERVER_APPLICATION, Cluster, NodePool, SimError, Update, World

BASE = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters"
router = APIRouter()
STATE = {"ACTIVE": "Succeeded", "UPDATING": "Upgrading", "CREATING": "Creating", "DELETING": "Deleting", "CREATE_FAILED": "Failed"}
POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")  # the agentPoolName path parameter's pattern
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
# Agent pool properties AKS takes only when a pool is created ("You can't change the VM size of a node pool
# after you create it", max pods, OS disk type, Spot priority and price, zones, host group).
IMMUTABLE = ("vmSize", "maxPods", "osDiskType", "scaleSetPriority", "spotMaxPrice", "scaleSetEvictionPolicy",
             "availabilityZones", "hostGroupID", "osType")
# Properties the simulator keeps for a pool as they were given (and describes back).
KEPT = ("mode", "osType", "osSKU", "availabilityZones", "maxPods", "enableAutoScaling", "minCount", "maxCount",
        "scaleSetPriority", "scaleSetEvictionPolicy", "spotMaxPrice", "osDiskSizeGB", "osDiskType", "kubeletConfig",
        "upgradeSettings", "tags", "nodeTaints", "podSubnetID", "enableNodePublicIP", "type", "hostGroupID")
SUPPORTED_MINORS = range(28, 36)  # what the simulated AKS offers, 2026-12


def refused(status: int, code: str, message: str) -> SimError:
    return SimError(status, code, message)


def _aks_cluster(request: Request, name: str, operation: str) -> tuple[World, Cluster]:
    world: World = request.app.state.world
    return world, world.cloud_cluster(name, provider="aks", operation=operation,
                                      missing=SimError(404, "ResourceNotFound", f"The Resource 'Microsoft.ContainerService/managedClusters/{name}' was not found."))


def _full(version: str) -> str:
    return f"{version}.5"


def _in_flight(cluster: Cluster, pool: str | None) -> Update | None:
    return next((u for u in cluster.updates.values() if u.status == "InProgress" and u.nodegroup == pool), None)


def _desired(cluster: Cluster, pool: NodePool | None = None) -> str:
    """What was asked for (kubernetesVersion, orchestratorVersion): an upgrade in flight's target, else what runs."""
    running = _in_flight(cluster, pool.name if pool else None)
    if running is not None and running.type == "VersionUpdate":
        return running.params[0]["value"]
    return pool.version if pool else cluster.version


def _etag(stamp: float) -> str:
    return f"{int(stamp * 1_000_000):x}"


def _cluster_etag(cluster: Cluster) -> str:
    """Changes with every operation on the cluster itself (not with what its workloads do)."""
    return _etag(cluster.created + sum(1 for u in cluster.updates.values() if u.nodegroup is None))


def _mode(pool: NodePool) -> str:
    return pool.settings.get("mode", "User")


def _pool_props(cluster: Cluster, pool: NodePool) -> dict:
    settings = pool.settings
    return {
        "count": pool.desired,
        "vmSize": pool.size,
        **({"vnetSubnetID": pool.subnets[0]} if pool.subnets else {}),
        "orchestratorVersion": _desired(cluster, pool),
        "currentOrchestratorVersion": _full(pool.version),
        "provisioningState": "Failed" if pool.health_issues else STATE.get(pool.status, "Succeeded"),
        "type": "VirtualMachineScaleSets",
        "osType": "Linux",
        "nodeLabels": dict(pool.labels),
        "nodeImageVersion": pool.image,
        "eTag": _etag(pool.modified),
        **{key: settings[key] for key in KEPT if key in settings},
        "mode": _mode(pool),
        **({"nodeTaints": [f"{t['key']}={t.get('value', '')}:{_taint_effect(t.get('effect', ''))}" for t in pool.taints]}
           if pool.taints else {}),
    }


def _taint_effect(effect: str) -> str:
    return {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}.get(effect, effect)


def _pool_json(subscription: str, group: str, cluster: Cluster, pool: NodePool) -> dict:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster.name}/agentPools/{pool.name}",
        "name": pool.name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": _pool_props(cluster, pool),
    }


def _cluster_json(subscription: str, group: str, cluster: Cluster) -> dict:
    settings = cluster.settings
    identity = settings.get("identity") or {"type": "SystemAssigned"}
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster.name}",
        "name": cluster.name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "location": cluster.region,
        "tags": dict(cluster.labels),
        "eTag": _cluster_etag(cluster),
        "identity": identity,
        "properties": {
            "provisioningState": STATE.get(cluster.status, "Succeeded"),
            "kubernetesVersion": _desired(cluster),
            "currentKubernetesVersion": _full(cluster.version),
            "dnsPrefix": cluster.name,
            "fqdn": f"{cluster.name}.hcp.{cluster.region}.azmk8s.io",
            "powerState": {"code": "Running"},
            "maxAgentPools": 100,
            # A cluster on a managed identity still describes a service principal profile of "msi".
            **({"servicePrincipalProfile": {"clientId": "msi"}} if identity.get("type") != "None" else {}),
            **({"aadProfile": settings["aadProfile"]} if "aadProfile" in settings else {}),
            **({"disableLocalAccounts": settings["disableLocalAccounts"]} if "disableLocalAccounts" in settings else {}),
            "agentPoolProfiles": [{"name": p.name, **_pool_props(cluster, p)} for p in cluster.pools.values()],
        },
    }


def _async_headers(request: Request, subscription: str, cluster: Cluster, update: Update | None) -> dict[str, str]:
    assert update is not None, "every change the simulator makes has its operation"
    base = str(request.base_url).rstrip("/")
    status = f"{base}/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{cluster.region}/operations/{update.id}?api-version=2017-08-31"
    return {"Azure-AsyncOperation": status, "Retry-After": "0"}


def _check_pool_name(name: str, *, windows: bool = False) -> None:
    if not POOL_NAME.match(name):
        raise refused(400, "InvalidParameter", f"The value of parameter agentPoolName is invalid: '{name}' must match"
                      " ^[a-z][a-z0-9]{0,11}$ (lowercase letters and digits, a letter first, at most 12 characters).")
    if windows and len(name) > 6:
        raise refused(400, "InvalidParameter", f"Windows agent pool name '{name}' is too long: Windows agent pool names must be"
                      " 6 characters or less.")


def _if_match(request: Request, current: str | None) -> None:
    """If-Match against the resource's eTag (quotes and W/ stripped, as the SDK's quote_etag adds them)."""
    given = request.headers.get("if-match")
    if not given:
        return
    tag = given.removeprefix("W/").strip('"')
    if current is None or (tag != "*" and tag != current):
        raise refused(412, "PreConditionFailed", "The value of If-Match header does not match the latest eTag value of"
                      " the resource: read it again (GET) for its current eTag.")


def _busy(cluster: Cluster, *, pool: str | None) -> None:
    """AKS runs one operation at a time on a control plane or a node pool, and none on a pool while the cluster's runs."""
    for update in cluster.updates.values():
        if update.status != "InProgress":
            continue
        if update.nodegroup is None or update.nodegroup == pool or pool is None:
            state = STATE.get(cluster.pools[update.nodegroup].status if update.nodegroup in cluster.pools else cluster.status,
                              "Updating")
            what = (f"Another agentpool operation ({update.nodegroup} - {state})" if pool is not None and update.nodegroup == pool
                    else f"Another operation ({update.nodegroup + ' - ' if update.nodegroup else ''}{state})")
            raise refused(409, "OperationNotAllowed", f"Operation is not allowed: {what} is in progress, please wait for it"
                          " to finish before starting a new operation. See https://aka.ms/aks-pending-operation for more details")


def _minor_of(version: str) -> str:
    if not re.fullmatch(r"1\.\d+(\.\d+)?", version or ""):
        raise refused(400, "InvalidParameter", f"The value {version!r} of kubernetesVersion is invalid: give <major.minor>"
                      " or <major.minor.patch>, e.g. 1.31 or 1.31.5.")
    minor = arithmetic.minor_text(version)
    if arithmetic.minor(minor)[1] not in SUPPORTED_MINORS:
        raise refused(400, "K8sVersionNotSupported", f"Version {version} is not supported in this region. Please use"
                      " [az aks get-versions] command to get the supported version list in this region.")
    return minor


def _skew_allowed(control_plane: str) -> int:
    """Node pools may trail the control plane by three minors from Kubernetes 1.28, two before."""
    return 3 if arithmetic.minor(control_plane)[1] >= 28 else 2


def _pool_version_fits(cluster: Cluster, control_plane: str, pool_version: str, pool: str) -> None:
    cp, np = arithmetic.minor(control_plane), arithmetic.minor(pool_version)
    if np > cp:
        raise refused(400, "NodePoolMcVersionIncompatible", f"Node pool version {_full(pool_version)} and control plane"
                      f" version {_full(control_plane)} are incompatible. Minor version of node pool version {np[1]} is"
                      f" bigger than control plane version {cp[1]}.")
    allowed = _skew_allowed(control_plane)
    if cp[1] - np[1] > allowed:
        raise refused(400, "NodePoolMcVersionIncompatible", f"Node pool {pool} version {_full(pool_version)} and control plane"
                      f" version {_full(control_plane)} are incompatible. Minor version of node pool cannot be more than"
                      f" {allowed} versions less than control plane's version. Minor version of node pool is {np[1]} and"
                      f" control plane is {cp[1]}.")


@router.get(BASE)
async def list_clusters(request: Request, subscription: str, group: str):
    world: World = request.app.state.world
    return {"value": [_cluster_json(subscription, group, c) for c in world.clusters.values() if c.provider == "aks"]}


@router.get(BASE + "/{name}")
async def get_cluster(request: Request, subscription: str, group: str, name: str):
    _, cluster = _aks_cluster(request, name, "GetManagedCluster")
    return _cluster_json(subscription, group, cluster)


def _check_new_pool(world: World, cluster_version: str, profile: dict, name: str) -> str:
    """A new agent pool's profile, as AKS checks it: its name, an explicit mode, a Linux System pool with a node."""
    mode = profile.get("mode")
    windows = profile.get("osType") == "Windows"
    _check_pool_name(name, windows=windows)
    if mode not in ("System", "User", "Gateway"):
        raise refused(400, "InvalidParameter", f"Agent pool {name}: mode must be set explicitly to System or User in an API"
                      " call (it has no default there).")
    if mode == "System" and windows:
        raise refused(400, "InvalidParameter", f"Agent pool {name}: System agent pools osType must be Linux.")
    if mode == "System" and int(profile.get("count", 1)) < 1:
        raise refused(400, "InvalidParameter", f"Agent pool {name}: a System pool needs at least one node (count 1 to 1000).")
    world.check_account("aks", size=profile.get("vmSize", "Standard_D4s_v5"),
                        subnets=[profile["vnetSubnetID"]] if profile.get("vnetSubnetID") else [])
    version = _minor_of(profile.get("orchestratorVersion") or cluster_version)
    return version


def _make_pool(world: World, cluster: Cluster, name: str, profile: dict, version: str) -> NodePool:
    taints = []
    for taint in profile.get("nodeTaints") or []:
        key_value, _, effect = taint.partition(":")
        key, _, value = key_value.partition("=")
        taints.append({"key": key, "value": value, "effect": {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE",
                                                                "PreferNoSchedule": "PREFER_NO_SCHEDULE"}.get(effect, effect)})
    return world.create_node_pool(
        cluster, name=name, version=version, size=profile.get("vmSize", "Standard_D4s_v5"),
        subnets=[profile["vnetSubnetID"]] if profile.get("vnetSubnetID") else None,
        desired=int(profile.get("count", 1)), labels=profile.get("nodeLabels") or {}, token=None, taints=taints,
        settings={key: profile[key] for key in KEPT if key in profile and key != "nodeTaints"},
    )


@router.put(BASE + "/{name}")
async def put_cluster(request: Request, subscription: str, group: str, name: str):
    world: World = request.app.state.world
    body = await request.json()
    props = body.get("properties") or {}
    if name not in world.clusters:
        _if_match(request, None)
        world.check_faults(name, api="cloud", operation="PutManagedCluster")
        return _create_cluster(request, world, subscription, group, name, body)
    world, cluster = _aks_cluster(request, name, "PutManagedCluster")
    _if_match(request, _cluster_etag(cluster))
    identity = (cluster.settings.get("identity") or {"type": "SystemAssigned"}).get("type")
    principal = props.get("servicePrincipalProfile")
    if identity != "None" and principal and (principal.get("clientId") == "msi" or not principal.get("secret")):
        # `az aks upgrade`: "null out the SP profile because otherwise validation complains"
        raise refused(400, "InvalidParameter", "The cluster uses a managed identity: an update must leave"
                      " servicePrincipalProfile out (null), not send back the msi profile it describes.")
    for profile in props.get("agentPoolProfiles") or []:
        pool = cluster.pools.get(profile.get("name", ""))
        if pool is not None and profile.get("nodeImageVersion") not in (None, pool.image):
            _refuse_rollback(profile["nodeImageVersion"], pool.name)
        if pool is not None and profile.get("orchestratorVersion") and \
                arithmetic.minor_text(profile["orchestratorVersion"]) != arithmetic.minor_text(_desired(cluster, pool)):
            raise SimError(501, "NotImplemented", "The simulator upgrades agent pools through their own PUT (agentPools),"
                           " not through the managed cluster's agentPoolProfiles.")
    wanted = props.get("kubernetesVersion")
    if not wanted or arithmetic.minor_text(wanted) == arithmetic.minor_text(_desired(cluster)):
        return _cluster_json(subscription, group, cluster)
    _busy(cluster, pool=None)
    minor = _minor_of(wanted)
    current = arithmetic.minor(cluster.version)
    target = arithmetic.minor(minor)
    if target[0] != current[0] or target[1] != current[1] + 1:
        offered = [f"1.{current[1] + 1}.5", f"1.{current[1] + 1}.3"] if current[1] + 1 in SUPPORTED_MINORS else []
        raise refused(400, "OperationNotAllowed", f"Upgrading Kubernetes version {_full(cluster.version)} to {wanted} is not"
                      f" allowed. Available upgrades: [{' '.join(offered)}]. For more information, see AKS supported"
                      " Kubernetes versions https://aka.ms/supported-version-list")
    for pool in cluster.pools.values():
        _pool_version_fits(cluster, minor, pool.version, pool.name)
    update = world.start_control_plane_upgrade(cluster, minor, None)
    return JSONResponse(_cluster_json(subscription, group, cluster), headers=_async_headers(request, subscription, cluster, update))


def _create_cluster(request: Request, world: World, subscription: str, group: str, name: str, body: dict) -> Response:
    props = body.get("properties") or {}
    if not CLUSTER_NAME.match(name):
        raise refused(400, "InvalidParameter", f"The value of parameter resourceName is invalid: '{name}'.")
    if not body.get("location"):
        raise refused(400, "InvalidParameter", "The location of the managed cluster is required.")
    identity = (body.get("identity") or {}).get("type")
    if identity in (None, "None") and not (props.get("servicePrincipalProfile") or {}).get("clientId"):
        raise refused(400, "InvalidParameter", f"Preflight validation check for resource(s) for container service {name} in"
                      f" resource group {group} failed. Message: Required parameter servicePrincipalProfile is missing (null).")
    profiles = props.get("agentPoolProfiles") or []
    if not any(p.get("mode") == "System" for p in profiles):
        raise refused(400, "MustDefineAtLeastOneSystemPool", "Must define at least one system pool.")
    version = _minor_of(props.get("kubernetesVersion") or f"1.{SUPPORTED_MINORS.stop - 2}")
    checked = []
    for profile in profiles:
        pool_version = _check_new_pool(world, version, profile, profile.get("name", ""))
        if pool_version != version:  # "the Kubernetes versions for the node pools must match the version set for the control plane"
            raise refused(400, "InvalidParameter", f"Agent pool {profile['name']} created with the cluster must run its"
                          f" control plane's version, {version}, not {pool_version}.")
        checked.append(profile)
    created = world.create_cluster(name=name, provider="aks", region=body["location"], version=version,
                                   labels=body.get("tags") or {}, token=None)
    created.settings = {"identity": body.get("identity") or {"type": "None"},
                        **{key: props[key] for key in ("aadProfile", "disableLocalAccounts") if key in props}}
    for profile in checked:
        _make_pool(world, created, profile["name"], profile, version)
    return JSONResponse(_cluster_json(subscription, group, created), status_code=201,
                        headers=_async_headers(request, subscription, created, world.cluster_operation(created, "CreateCluster")))


@router.delete(BASE + "/{name}")
async def delete_cluster(request: Request, subscription: str, group: str, name: str):
    world: World = request.app.state.world
    if name not in world.clusters:
        return Response(status_code=204)
    world, cluster = _aks_cluster(request, name, "DeleteManagedCluster")
    _if_match(request, _cluster_etag(cluster))
    headers = _async_headers(request, subscription, cluster, world.delete_cluster(cluster, with_pools=True))
    headers["Location"] = headers["Azure-AsyncOperation"]
    return Response(status_code=202, headers=headers)


@router.post(BASE + "/{name}/listClusterUserCredential")
async def list_user_credential(request: Request, subscription: str, group: str, name: str, format: str | None = None):
    """The user kubeconfig: on a cluster with Entra ID (aadProfile.managed) an exec kubeconfig that runs
    kubelogin for the AKS server application; on one with local accounts, the cluster user's token."""
    world, cluster = _aks_cluster(request, name, "ListClusterUserCredential")
    if format not in (None, "azure", "exec"):
        raise refused(400, "InvalidParameter", f"The value {format!r} of format is invalid: azure or exec.")
    entra = bool((cluster.settings.get("aadProfile") or {}).get("managed"))
    if not entra and cluster.settings.get("disableLocalAccounts"):
        raise refused(400, "BadRequest", "Getting static credential is not allowed because this cluster is set to disable"
                      " local accounts.")
    user: dict[str, Any] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin", "interactiveMode": "IfAvailable",
        "args": ["get-token", "--environment", "AzurePublicCloud", "--server-id", AKS_SERVER_APPLICATION,
                 "--client-id", "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "--tenant-id", "00000000-0000-0000-0000-00000000000a",
                 "--login", "devicecode"],
    }} if entra else {"token": world.token_for(cluster)}
    config = {"apiVersion": "v1", "kind": "Config", "current-context": name,
              "clusters": [{"name": name, "cluster": {"server": world.api_server(name), "certificate-authority-data": world.ca_data}}],
              "users": [{"name": f"clusterUser_{group}_{name}", "user": user}],
              "contexts": [{"name": name, "context": {"cluster": name, "user": f"clusterUser_{group}_{name}"}}]}
    return {"kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(yaml.safe_dump(config).encode()).decode()}]}


@router.get(BASE + "/{name}/agentPools")
async def list_pools(request: Request, subscription: str, group: str, name: str):
    _, cluster = _aks_cluster(request, name, "ListAgentPools")
    return {"value": [_pool_json(subscription, group, cluster, p) for p in cluster.pools.values()]}


@router.get(BASE + "/{name}/agentPools/{pool}")
async def get_pool(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "GetAgentPool")
    _check_pool_name(pool)
    return _pool_json(subscription, group, cluster, world.pool(cluster, pool))


@router.put(BASE + "/{name}/agentPools/{pool}")
async def put_pool(request: Request, subscription: str, group: str, name: str, pool: str):
    world, cluster = _aks_cluster(request, name, "PutAgentPool")
    _check_pool_name(pool)
    props = (await request.json()).get("properties") or {}
    if pool not in cluster.pools:
        _if_match(request, None)
        _busy(cluster, pool=pool)
        version = _check_new_pool(world, _desired(cluster), props, pool)
        _pool_version_fits(cluster, cluster.version, version, pool)
        created = _make_pool(world, cluster, pool, props, version)
        return JSONResponse(_pool_json(subscription, group, cluster, created), status_code=201,
                            headers=_async_headers(request, subscription, cluster, created.operation))
    existing = cluster.pools[pool]
    _if_match(request, _etag(existing.modified))
    _busy(cluster, pool=pool)
    if props.get("nodeImageVersion") not in (None, existing.image):
        _refuse_rollback(props["nodeImageVersion"], pool)
    for key in IMMUTABLE:
        before = existing.settings.get(key, {"vmSize": existing.size, "osType": "Linux"}.get(key))
        if key in props and props[key] != before and not (key == "vmSize" and props[key] == existing.size):
            raise refused(400, "PropertyChangeNotAllowed", f"Changing property '{key}' is not allowed.")
    if props.get("mode") and props["mode"] != _mode(existing):
        if _mode(existing) == "System" and not any(_mode(p) == "System" for p in cluster.pools.values() if p is not existing):
            raise refused(400, "MustDefineAtLeastOneSystemPool", "Must define at least one system pool.")
        existing.settings["mode"] = props["mode"]
    upgrade = props.get("upgradeSettings")
    if upgrade:
        drain = upgrade.get("drainTimeoutInMinutes")
        soak = upgrade.get("nodeSoakDurationInMinutes")
        if drain is not None and not 1 <= int(drain) <= 1440:
            raise refused(400, "InvalidParameter", "upgradeSettings.drainTimeoutInMinutes must be between 1 and 1440.")
        if soak is not None and not 0 <= int(soak) <= 30:
            raise refused(400, "InvalidParameter", "upgradeSettings.nodeSoakDurationInMinutes must be between 0 and 30.")
        if upgrade.get("undrainableNodeBehavior") not in (None, "Cordon", "Schedule"):
            raise refused(400, "InvalidParameter", "upgradeSettings.undrainableNodeBehavior must be Cordon or Schedule.")
        existing.settings["upgradeSettings"] = upgrade
    wanted = props.get("orchestratorVersion")
    if not wanted or arithmetic.minor_text(wanted) == existing.version:
        return _pool_json(subscription, group, cluster, existing)
    minor = _minor_of(wanted)
    if arithmetic.minor(minor) < arithmetic.minor(existing.version):
        raise refused(400, "OperationNotAllowed", f"Agent pool {pool}: downgrading Kubernetes version {_full(existing.version)}"
                      f" to {wanted} is not allowed.")
    _pool_version_fits(cluster, cluster.version, minor, pool)
    _refuse_unsatisfiable_budgets(cluster)
    update = world.start_node_pool_upgrade(cluster, pool, minor, None, False)
    return JSONResponse(_pool_json(subscription, group, cluster, existing),
                        headers=_async_headers(request, subscription, cluster, update))


def _refuse_rollback(image: str, pool: str) -> None:
    """2026-08-01: "Setting this value triggers an agentPool rollback. Only values from recentlyUsedVersions are
    allowed." The simulator keeps no recentlyUsedVersions: any other image than the pool's own is refused."""
    raise refused(400, "InvalidParameter", f"nodeImageVersion {image} is not one of agent pool {pool}'s recentlyUsedVersions:"
                  " setting it rolls the pool back, to a version it ran in the last 7 days only.")


def _refuse_unsatisfiable_budgets(cluster: Cluster) -> None:
    """"Before starting an upgrade operation, AKS checks the cluster for any existing Pod Disruption Budgets
    that have the maxUnavailable parameter set to 0.\""""
    zero = [f"{pdb.namespace}/{pdb.name}" for pdb in cluster.pdbs.values() if str(pdb.max_unavailable) in ("0", "0%")]
    if zero:
        raise refused(400, "UnsatisfiablePDB", "1 error occurred: * PDB " + zero[0] + " has maxunavailble == 0 can't proceed"
                      " with put operation")


@router.post(BASE + "/{name}/agentPools/{pool}/upgradeNodeImageVersion")
async def upgrade_node_image(request: Request, subscription: str, group: str, name: str, pool: str):
    """AKS moves a pool to its newest node image only; there is no asking for another one."""
    world, cluster = _aks_cluster(request, name, "UpgradeNodeImageVersion")
    _check_pool_name(pool)
    existing = world.pool(cluster, pool)
    if existing.image == AKS_NEWEST_NODE_IMAGE and existing.status == "ACTIVE":
        return _pool_json(subscription, group, cluster, existing)
    _busy(cluster, pool=pool)
    _refuse_unsatisfiable_budgets(cluster)
    update = world.start_node_pool_upgrade(cluster, pool, existing.version, None, False, image=AKS_NEWEST_NODE_IMAGE)
    return JSONResponse(_pool_json(subscription, group, cluster, existing), status_code=202,
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
    _check_pool_name(pool)
    if pool not in cluster.pools:
        return Response(status_code=204)
    existing = cluster.pools[pool]
    if existing.status != "DELETING":
        _if_match(request, _etag(existing.modified))
        _busy(cluster, pool=pool)
        others = [p for p in cluster.pools.values() if p is not existing and p.status != "DELETING"]
        if not others:
            raise refused(400, "OperationNotAllowed", "There has to be at least one agent pool.")
        if _mode(existing) == "System" and not any(_mode(p) == "System" for p in others):
            raise refused(400, "OperationNotAllowed", "There has to be at least one system agent pool.")
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
        first = update.errors[0]
        code = "UpgradeFailed" if first["errorCode"] == "PodEvictionFailure" else first["errorCode"]
        message = "; ".join(f"{e['errorMessage']} {e.get('resourceIds') or ''}".strip() for e in update.errors)
        if first["errorCode"] == "PodEvictionFailure":
            message = (f"Drain node failed when evicting pods {', '.join(first.get('resourceIds') or [])} failed with Too Many"
                       " Requests error. This is often caused by a restrictive Pod Disruption Budget (PDB) policy. See"
                       " https://aka.ms/aks/debugdrainfailures. Original error: Cannot evict pod as it would violate the"
                       " pod's disruption budget.")
        body["error"] = {"code": code, "message": message}
    return body
