"""Azure Kubernetes Service through `azure-mgmt-containerservice`: control plane upgrades
(kubernetesVersion changed with every agent pool's orchestratorVersion left as it is, so only
the control plane moves), agent pool upgrades by surge (a new orchestratorVersion, or
upgradeNodeImageVersion onto AKS's newest node image), create and delete, polled the way
ARM clients poll: the `Azure-AsyncOperation` URL a mutation answers with.

`credential_ref` is `SUBSCRIPTION_ID/RESOURCE_GROUP`; credentials come from azure-identity's
DefaultAzureCredential when the activity runs. In the embedded default the simulator answers
over plain HTTP, so every call passes azure-core's `enforce_https=False` and a static token.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool

from regatta.clouds.base import CloudError, ControlPlane, KubeEndpoint, simulator_endpoint, simulator_kubeconfig
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.formats import kubeconfig
from regatta.models import CloudOperation, ClusterNetwork, ClusterRef, NodePool
from regatta.models.errors import ErrorType
from regatta.rules import versions

SIM_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SIM_RESOURCE_GROUP = "regatta-sim"
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class SimulatorToken:
    """A TokenCredential for the simulator, which checks no token."""

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken("regatta-sim", int(time.time()) + 3600)


def _cloud_error(error: Exception, *, what: str) -> CloudError:
    if isinstance(error, ResourceNotFoundError):
        return CloudError(f"{what}: {error.message}", error_type=ErrorType.NOT_FOUND, retryable=False)
    if isinstance(error, HttpResponseError) and error.status_code not in _RETRYABLE_STATUS:
        return CloudError(f"AKS refused {what}: {error.message}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
    return CloudError(f"AKS error during {what}: {error}", error_type=type(error).__name__, retryable=True)


def _minor(version: str) -> str:
    return versions.format_version(versions.minor_version(version))


class AksProvider:
    def __init__(self, *, endpoint_url: str | None = None, credential_site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        self.endpoint_url = endpoint_url
        self.rate_limit = rate_limit  # waits for this account's turn (regatta/clouds/rate_limits.py)
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._clients: dict[str, ContainerServiceClient] = {}
        self._lock = threading.Lock()
        # Plain HTTP is only ever the simulator; azure-core refuses bearer tokens over it otherwise.
        self._call_options = {"enforce_https": False} if endpoint_url else {}

    def _scope(self, cluster: ClusterRef) -> tuple[str, str]:
        if cluster.credential_ref == "default":
            return SIM_SUBSCRIPTION, SIM_RESOURCE_GROUP
        subscription, _, group = cluster.credential_ref.partition("/")
        if not group:
            raise CloudError(f"cluster {cluster.name}: credential_ref must be SUBSCRIPTION_ID/RESOURCE_GROUP for AKS,"
                             f" not {cluster.credential_ref!r}", error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        return subscription, group

    def _client(self, cluster: ClusterRef) -> ContainerServiceClient:
        subscription, _ = self._scope(cluster)
        with self._lock:
            if subscription not in self._clients:
                if self.endpoint_url:
                    self._clients[subscription] = ContainerServiceClient(SimulatorToken(), subscription, base_url=self.endpoint_url)
                else:
                    from azure.identity import DefaultAzureCredential

                    self._clients[subscription] = ContainerServiceClient(DefaultAzureCredential(), subscription)
            return self._clients[subscription]

    def _call(self, cluster: ClusterRef, what: str, operations: str, method: str, *args, **kwargs):
        self.rate_limit(cluster)
        try:
            group = getattr(self._client(cluster), operations)
            return getattr(group, method)(*args, **{**self._call_options, **kwargs})
        except AzureError as error:
            raise _cloud_error(error, what=what) from error

    def _begin(self, cluster: ClusterRef, what: str, operations: str, method: str, *args, kind: str, pool: str | None) -> CloudOperation:
        """Send an ARM mutation without waiting; the operation to poll is its Azure-AsyncOperation URL."""
        headers: dict[str, str] = {}
        self._call(cluster, what, operations, method, *args, polling=False,
                   raw_response_hook=lambda response: headers.update(response.http_response.headers))
        url = headers.get("Azure-AsyncOperation") or headers.get("azure-asyncoperation") or headers.get("Location")
        status = "in_progress" if url else "succeeded"
        return CloudOperation(id=url or f"done:{what}", cluster=cluster.name, kind=kind, node_pool=pool, status=status)

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        _, group = self._scope(cluster)
        found = self._call(cluster, f"describe cluster {cluster.name}", "managed_clusters", "get", group, cluster.name)
        state = {"Succeeded": "ACTIVE", "Creating": "CREATING", "Deleting": "DELETING", "Failed": "FAILED"}.get(
            found.provisioning_state, "UPDATING")
        return ControlPlane(name=found.name, version=_minor(found.kubernetes_version), status=state)

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None) -> CloudOperation:
        from azure.mgmt.containerservice.models import ManagedCluster

        _, group = self._scope(cluster)
        # The SDK takes the ARM properties flattened as keywords; its generated overloads list only the envelope.
        spec = ManagedCluster(location=cluster.region, kubernetes_version=version, dns_prefix=cluster.name,  # type: ignore[call-overload]
                              tags=labels)
        # A PUT is idempotent in ARM: a retried create converges on the same cluster.
        return self._begin(cluster, f"creation of cluster {cluster.name}", "managed_clusters", "begin_create_or_update",
                           group, cluster.name, spec, kind="cluster_create", pool=None)

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        return self._begin(cluster, f"deletion of cluster {cluster.name}", "managed_clusters", "begin_delete",
                           group, cluster.name, kind="cluster_delete", pool=None)

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        _, group = self._scope(cluster)
        pools = self._call(cluster, f"list agent pools of {cluster.name}", "agent_pools", "list", group, cluster.name)
        return [NodePool(name=p.name, version=_minor(p.orchestrator_version), node_count=p.count or 0,
                         node_size=p.vm_size or "unknown", labels=dict(p.node_labels or {}), node_image=p.node_image_version,
                         subnets=[p.vnet_subnet_id] if getattr(p, "vnet_subnet_id", None) else [])
                for p in pools if p.provisioning_state != "Deleting"]

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        found = self._call(cluster, f"describe cluster {cluster.name}", "managed_clusters", "get", group, cluster.name)
        if _minor(found.kubernetes_version) == version:
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind="control_plane_upgrade", status="succeeded")
        found.kubernetes_version = version  # agent pools keep their orchestratorVersion: control plane only
        return self._begin(cluster, f"upgrade of {cluster.name}'s control plane to {version}", "managed_clusters",
                           "begin_create_or_update", group, cluster.name, found, kind="control_plane_upgrade", pool=None)

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None) -> CloudOperation:
        _, group = self._scope(cluster)
        pool = self._call(cluster, f"describe agent pool {node_pool}", "agent_pools", "get", group, cluster.name, node_pool)
        if node_image is not None and pool.node_image_version != node_image:
            self._refuse_all_but_the_newest_image(cluster, group, node_pool, node_image)
        if _minor(pool.orchestrator_version) == version and pool.provisioning_state == "Succeeded":
            if node_image is None or pool.node_image_version == node_image:
                return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind="node_pool_upgrade",
                                      node_pool=node_pool, status="succeeded")
            return self._begin(cluster, f"upgrade of agent pool {node_pool} to node image {node_image}", "agent_pools",
                               "begin_upgrade_node_image_version", group, cluster.name, node_pool, kind="node_pool_upgrade",
                               pool=node_pool)
        # A new orchestratorVersion brings AKS's newest node image with it.
        pool.orchestrator_version = version
        return self._begin(cluster, f"upgrade of agent pool {node_pool} to {version}", "agent_pools", "begin_create_or_update",
                           group, cluster.name, node_pool, pool, kind="node_pool_upgrade", pool=node_pool)

    def _refuse_all_but_the_newest_image(self, cluster: ClusterRef, group: str, node_pool: str, node_image: str) -> None:
        """AKS rolls a pool onto its newest node image only: refuse any other before touching the pool."""
        profile = self._call(cluster, f"upgrade profile of agent pool {node_pool}", "agent_pools", "get_upgrade_profile",
                             group, cluster.name, node_pool)
        if profile.latest_node_image_version != node_image:
            raise CloudError(f"AKS offers agent pool {node_pool} only its newest node image,"
                             f" {profile.latest_node_image_version}, not {node_image}: set node_images.aks to it",
                             error_type=ErrorType.CLOUD_REFUSED, retryable=False)

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        if node_pool.node_image is not None:  # a new pool gets AKS's newest image, whatever is asked: say so first
            existing = [p.name for p in self.list_node_pools(cluster) if p.name != node_pool.name]
            if existing:
                self._refuse_all_but_the_newest_image(cluster, group, existing[0], node_pool.node_image)
        spec = AgentPool(count=node_pool.node_count,  # type: ignore[call-overload]  # flattened properties, as above
                         vm_size=node_pool.node_size, orchestrator_version=node_pool.version,
                         node_labels=node_pool.labels, mode="User", type_properties_type="VirtualMachineScaleSets", os_type="Linux",
                         **({"vnet_subnet_id": node_pool.subnets[0]} if node_pool.subnets else {}))
        # A PUT of the same spec is idempotent in ARM: a retried create converges on the same pool.
        return self._begin(cluster, f"creation of agent pool {node_pool.name}", "agent_pools", "begin_create_or_update",
                           group, cluster.name, node_pool.name, spec, kind="node_pool_create", pool=node_pool.name)

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        return self._begin(cluster, f"deletion of agent pool {node_pool}", "agent_pools", "begin_delete",
                           group, cluster.name, node_pool, kind="node_pool_delete", pool=node_pool)

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.status != "in_progress":
            return operation
        try:
            response = self._client(cluster).send_request(HttpRequest("GET", operation.id), **self._call_options)
            response.raise_for_status()
        except AzureError as error:
            raise _cloud_error(error, what=f"status of {operation.kind.replace('_', ' ')}") from error
        body = response.json()
        state = body.get("status", "InProgress")
        if state == "Succeeded":
            return operation.model_copy(update={"status": "succeeded"})
        if state in ("Failed", "Canceled"):
            why = body.get("error") or {}
            return operation.model_copy(update={"status": "failed", "errors": [f"{why.get('code')}: {why.get('message')}"]})
        return operation

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """What `az aks get-credentials` and `kubelogin convert-kubeconfig -l azurecli` write: the
        server and CA of the user kubeconfig ARM hands out, and kubelogin as the exec plugin."""
        if self.endpoint_url:
            return simulator_kubeconfig(self.endpoint_url, cluster, site=self.credential_site)
        import yaml

        _, group = self._scope(cluster)
        result = self._call(cluster, f"credentials of {cluster.name}", "managed_clusters", "list_cluster_user_credentials",
                            group, cluster.name)
        issued = yaml.safe_load(result.kubeconfigs[0].value)
        server = issued["clusters"][0]["cluster"]
        return kubeconfig.kubeconfig(name=cluster.name, server=server["server"],
                                     ca_data=server.get("certificate-authority-data"), user=kubeconfig.aks_user())

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        if self.endpoint_url:
            return simulator_endpoint(self.endpoint_url, cluster, site=self.credential_site)
        import yaml

        _, group = self._scope(cluster)
        result = self._call(cluster, f"credentials of {cluster.name}", "managed_clusters", "list_cluster_user_credentials",
                            group, cluster.name)
        return KubeEndpoint(host="", kubeconfig=yaml.safe_load(result.kubeconfigs[0].value))
