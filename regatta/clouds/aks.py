"""Azure Kubernetes Service through `azure-mgmt-containerservice`: control plane upgrades
(kubernetesVersion changed with every agent pool's orchestratorVersion left as it is, so only
the control plane moves, sent as `az aks upgrade --control-plane-only` sends it: the cluster as
read, read-only fields and the service principal profile left out, If-Match its eTag), agent pool
upgrades by surge (a new orchestratorVersion with the pool's upgrade settings made to honour
budgets as long as Regatta's own drain would, or upgradeNodeImageVersion onto AKS's newest node
image), create and delete, polled the way ARM clients poll: the `Azure-AsyncOperation` URL a
mutation answers with, or, when that was lost with a crashed activity, the resource's own
provisioningState and current versions.

`credential_ref` is `SUBSCRIPTION_ID/RESOURCE_GROUP`; credentials come from azure-identity's
DefaultAzureCredential when the activity runs, for ARM and, on clusters with Entra ID, for the
cluster's API: a token for the AKS server application, as kubelogin would fetch it (no kubelogin
binary, no interactive sign-in). In the embedded default the simulator answers over plain HTTP, so
every call passes azure-core's `enforce_https=False`, and its Entra stand-in hands out the tokens.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import threading
import time
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPool,
    AgentPoolUpgradeSettings,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterIdentity,
)

from regatta.clouds.base import (
    CloudError,
    ControlPlane,
    KubeEndpoint,
    simulator_endpoint,
    simulator_kubeconfig,
    stored_credential,
)
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.clouds.secret_stores import is_reference
from regatta.formats import kubeconfig
from regatta.models import (
    CloudOperation,
    ClusterNetwork,
    ClusterRef,
    ManagedAddon,
    NodePool,
    NodeTaint,
    UpgradeInsight,
    VersionChange,
)
from regatta.models.errors import ErrorType
from regatta.models.fleet import InsightCategory
from regatta.models.readiness import NodePoolRoom
from regatta.rules import versions

SIM_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SIM_RESOURCE_GROUP = "regatta-sim"
# "The token audience for all supported kubelogin authentication methods when accessing AKS" (AKS docs,
# kubelogin-authentication): the AKS server application, the same in every environment.
AKS_SERVER_SCOPE = f"{kubeconfig.AKS_SERVER_ID}/.default"
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


@functools.cache
def _simulator_http():
    """One client for the process (a new one per token built a TLS context, about 30 ms of CPU)."""
    import httpx

    return httpx.Client(timeout=10)


class SimulatorCredential:
    """A TokenCredential for the simulator: ARM there checks no token, and the clusters' API servers take
    the ones its Entra stand-in hands out (/sim/entra/token), which expire as Entra's do."""

    def __init__(self, sim_url: str, *, site: str | None):
        self.sim_url, self.site = sim_url.rstrip("/"), site

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        if scopes and scopes[0] == AKS_SERVER_SCOPE:
            found = _simulator_http().get(f"{self.sim_url}/sim/entra/token", params={"scope": scopes[0], **({"site": self.site} if self.site
                                                                                                  else {})}, timeout=10)
            found.raise_for_status()
            body = found.json()
            return AccessToken(body["access_token"], int(body["expires_on"]))
        return AccessToken("regatta-sim-arm", int(time.time()) + 3600)


def _code_of(error: HttpResponseError) -> str:
    return str(getattr(getattr(error, "error", None), "code", None) or "")


def _cloud_error(error: Exception, *, what: str) -> CloudError:
    if isinstance(error, ResourceNotFoundError):
        return CloudError(f"{what}: {error.message}", error_type=ErrorType.NOT_FOUND, retryable=False)
    if isinstance(error, HttpResponseError):
        code = _code_of(error)
        if error.status_code == 409 and code == "OperationNotAllowed":
            # "Operation is not allowed: Another operation (...) is in progress, please wait for it to finish"
            return CloudError(f"AKS is busy with another operation on the cluster during {what}: {error.message}",
                              error_type=ErrorType.OPERATION_IN_PROGRESS, retryable=False)
        if error.status_code == 412:  # the cluster changed between our read and our write: read it again
            return CloudError(f"AKS: the cluster changed during {what} ({error.message}); reading it again",
                              error_type=ErrorType.CLOUD_CHANGED, retryable=True)
        if error.status_code not in _RETRYABLE_STATUS:
            return CloudError(f"AKS refused {what}: {error.message}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
    return CloudError(f"AKS error during {what}: {error}", error_type=type(error).__name__, retryable=True)


def _minor(version: str) -> str:
    return versions.format_version(versions.minor_version(version))


_MODELS_PREPARED = threading.Lock()
_models_prepared = False


def _prepare_models() -> None:
    """Have every AKS model class build its table of fields now, on one thread. The SDK's generated models build it
    the first time an object of the class is made, and two threads making their first objects at once can break it
    silently: the response then comes back as a plain dict (Azure/azure-sdk-for-python#47426, fixed in the generator
    by microsoft/typespec#11236; the azure-mgmt-containerservice installed here builds it without a lock).
    `regatta fleet snapshot` reads clusters eight at a time and a worker runs its activities side by side: seen as
    "'dict' object has no attribute 'value'" reading an AKS cluster's kubeconfig. 201 classes, about 60 ms, once per
    process."""
    global _models_prepared
    with _MODELS_PREPARED:
        if _models_prepared:
            return
        from azure.mgmt.containerservice import models

        try:
            from azure.mgmt.containerservice._utils.model_base import Model
        except ImportError:  # a release generated otherwise (msrest's models build nothing on first use)
            _models_prepared = True
            return

        for name in dir(models):
            found = getattr(models, name)
            if isinstance(found, type) and issubclass(found, Model):
                Model.__new__(found)
        _models_prepared = True


class AksProvider:
    def __init__(self, *, endpoint_url: str | None = None, credential_site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        _prepare_models()
        self.endpoint_url = endpoint_url
        self.rate_limit = rate_limit  # waits for this account's turn (regatta/clouds/rate_limits.py)
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._clients: dict[str, ContainerServiceClient] = {}
        self._credential: Any = None
        self._stored_credentials: dict[str, tuple[Any, str, str, str]] = {}
        self._lock = threading.Lock()
        # Plain HTTP is only ever the simulator; azure-core refuses bearer tokens over it otherwise.
        self._call_options = {"enforce_https": False} if endpoint_url else {}

    def _stored(self, cluster: ClusterRef) -> tuple[Any, str, str, str]:
        """An application's client secret a secrets store keeps for the cluster (credential_ref `aws-secretsmanager:NAME`
        and the like, a JSON object with tenant_id, client_id, client_secret, subscription_id, resource_group and, for
        a sovereign or private cloud, authority_host): (its credential, subscription, resource group, fingerprint),
        the credential made again when the secret read (kept REGATTA_SECRET_CACHE_SECONDS) changes."""
        from azure.identity import AzureAuthorityHosts, ClientSecretCredential

        text, fingerprint = stored_credential(cluster, "the Azure application")
        with self._lock:
            held = self._stored_credentials.get(cluster.credential_ref)
            if held is not None and held[3] == fingerprint:
                return held
        fields: dict[str, str] = {}
        authority = None
        try:
            info = json.loads(text)
            if isinstance(info, dict):
                fields = {name: str(info.get(name) or "") for name in ("tenant_id", "client_id", "client_secret",
                                                                       "subscription_id", "resource_group")}
                authority = info.get("authority_host")
        except ValueError:
            pass
        if not fields or not all(fields.values()):  # raised out here: its words hold a client secret
            raise CloudError(f"{cluster.name}: the secret {cluster.credential_ref} does not hold an Azure application's"
                             " client secret: store {\"tenant_id\", \"client_id\", \"client_secret\", \"subscription_id\","
                             " \"resource_group\"} (and authority_host for a sovereign cloud)",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        known = {AzureAuthorityHosts.AZURE_PUBLIC_CLOUD, AzureAuthorityHosts.AZURE_CHINA, AzureAuthorityHosts.AZURE_GOVERNMENT}
        credential = ClientSecretCredential(fields["tenant_id"], fields["client_id"], fields["client_secret"],
                                            **({"authority": str(authority),
                                                "disable_instance_discovery": str(authority) not in known}
                                               if authority else {}))
        made = (credential, fields["subscription_id"], fields["resource_group"], fingerprint)
        with self._lock:  # one credential per reference, made again when its secret is rotated
            self._stored_credentials[cluster.credential_ref] = made
            self._clients.pop(f"stored:{cluster.credential_ref}", None)
        return made

    def _scope(self, cluster: ClusterRef) -> tuple[str, str]:
        if is_reference(cluster.credential_ref):
            _, subscription, group, _ = self._stored(cluster)
            return subscription, group
        if cluster.credential_ref == "default":
            return SIM_SUBSCRIPTION, SIM_RESOURCE_GROUP
        subscription, _, group = cluster.credential_ref.partition("/")
        if not group:
            raise CloudError(f"cluster {cluster.name}: credential_ref must be SUBSCRIPTION_ID/RESOURCE_GROUP for AKS,"
                             f" not {cluster.credential_ref!r}", error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        return subscription, group

    def credential(self) -> Any:
        """The process's one Azure credential: for ARM, and for the AKS server application on Entra ID clusters."""
        with self._lock:
            if self._credential is None:
                if self.endpoint_url:
                    self._credential = SimulatorCredential(self.endpoint_url, site=self.credential_site)
                else:
                    from azure.identity import DefaultAzureCredential

                    self._credential = DefaultAzureCredential()
            return self._credential

    def _client(self, cluster: ClusterRef) -> ContainerServiceClient:
        if is_reference(cluster.credential_ref):  # named explicitly: used even beside the simulator
            credential, subscription, _, _ = self._stored(cluster)
            key = f"stored:{cluster.credential_ref}"  # dropped when the secret is rotated (_stored)
            with self._lock:
                if key not in self._clients:
                    self._clients[key] = (ContainerServiceClient(credential, subscription, base_url=self.endpoint_url)
                                          if self.endpoint_url else ContainerServiceClient(credential, subscription))
                return self._clients[key]
        subscription, _ = self._scope(cluster)
        credential = self.credential()
        with self._lock:
            if subscription not in self._clients:
                if self.endpoint_url:
                    self._clients[subscription] = ContainerServiceClient(credential, subscription, base_url=self.endpoint_url)
                else:
                    self._clients[subscription] = ContainerServiceClient(credential, subscription)
            return self._clients[subscription]

    def _call(self, cluster: ClusterRef, what: str, operations: str, method: str, *args, **kwargs):
        self.rate_limit(cluster)
        try:
            group = getattr(self._client(cluster), operations)
            return getattr(group, method)(*args, **{**self._call_options, **kwargs})
        except AzureError as error:
            raise _cloud_error(error, what=what) from error

    def _begin(self, cluster: ClusterRef, what: str, operations: str, method: str, *args, kind: str, pool: str | None,
               **kwargs) -> CloudOperation:
        """Send an ARM mutation without waiting; the operation to poll is its Azure-AsyncOperation URL."""
        headers: dict[str, str] = {}
        self._call(cluster, what, operations, method, *args, polling=False,
                   raw_response_hook=lambda response: headers.update(response.http_response.headers), **kwargs)
        url = headers.get("Azure-AsyncOperation") or headers.get("azure-asyncoperation") or headers.get("Location")
        status = "in_progress" if url else "succeeded"
        return CloudOperation(id=url or f"done:{what}", cluster=cluster.name, kind=kind, node_pool=pool, status=status)

    def _get(self, cluster: ClusterRef) -> ManagedCluster:
        _, group = self._scope(cluster)
        return self._call(cluster, f"describe cluster {cluster.name}", "managed_clusters", "get", group, cluster.name)

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        """The version that runs (currentKubernetesVersion), not the one asked for (kubernetesVersion)."""
        found = self._get(cluster)
        state = {"Succeeded": "ACTIVE", "Creating": "CREATING", "Deleting": "DELETING", "Failed": "FAILED"}.get(
            found.provisioning_state, "UPDATING")
        return ControlPlane(name=found.name or cluster.name, version=_minor(found.current_kubernetes_version or found.kubernetes_version),
                            status=state)

    @staticmethod
    def _profile(pool: NodePool, *, mode: str, version: str, inline: bool = False) -> dict[str, Any]:
        """An agent pool's properties as the SDK's keywords (`inline`: inside a managed cluster's agentPoolProfiles)."""
        return {"count": pool.node_count, "vm_size": pool.node_size, "orchestrator_version": version, "mode": mode,
                "os_type": "Linux", ("type" if inline else "type_properties_type"): "VirtualMachineScaleSets",
                "node_labels": pool.labels,
                **({"node_taints": [f"{t.key}={t.value}:{_effect_name(t.effect)}" for t in pool.taints]} if pool.taints else {}),
                **({"vnet_subnet_id": pool.subnets[0]} if pool.subnets else {})}

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None, first_pool: NodePool | None = None) -> CloudOperation:
        """A cluster on a system-assigned managed identity, born with its System pool ("Must define at least one
        system pool"). A PUT is idempotent in ARM: a retried create converges on the same cluster."""
        _, group = self._scope(cluster)
        if first_pool is None:
            raise CloudError(f"AKS creates cluster {cluster.name} only with a System node pool: give at least one node pool"
                             " in the provision file", error_type=ErrorType.INVALID_REQUEST, retryable=False)
        # The SDK takes the ARM properties flattened as keywords; its generated overloads list only the envelope.
        spec = ManagedCluster(location=cluster.region, kubernetes_version=version, dns_prefix=cluster.name, tags=labels,  # type: ignore[call-overload]
                              identity=ManagedClusterIdentity(type="SystemAssigned"),
                              agent_pool_profiles=[ManagedClusterAgentPoolProfile(
                                  name=first_pool.name, **self._profile(first_pool, mode="System", version=version, inline=True))])
        return self._begin(cluster, f"creation of cluster {cluster.name}", "managed_clusters", "begin_create_or_update",
                           group, cluster.name, spec, kind="cluster_create", pool=None)

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        return self._begin(cluster, f"deletion of cluster {cluster.name}", "managed_clusters", "begin_delete",
                           group, cluster.name, kind="cluster_delete", pool=None)

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        _, group = self._scope(cluster)
        pools = self._call(cluster, f"list agent pools of {cluster.name}", "agent_pools", "list", group, cluster.name)
        return [NodePool(name=p.name, version=_minor(p.current_orchestrator_version or p.orchestrator_version),
                         node_count=p.count or 0, node_size=p.vm_size or "unknown", labels=dict(p.node_labels or {}),
                         node_image=p.node_image_version, subnets=[p.vnet_subnet_id] if p.vnet_subnet_id else [],
                         taints=[_taint(t) for t in p.node_taints or []], image_type=p.os_sku, mode=p.mode)
                for p in pools if p.provisioning_state != "Deleting"]

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str,
                                    force: bool = False) -> CloudOperation:
        """What `az aks upgrade --control-plane-only` sends: the cluster as read with only kubernetesVersion changed,
        every agent pool's orchestratorVersion left as it is, the service principal profile left out ("otherwise
        validation complains") and read-only fields dropped; If-Match its eTag, so a change made meanwhile by
        someone else is not overwritten."""
        _, group = self._scope(cluster)
        kind = "control_plane_upgrade"
        found = self._get(cluster)
        if _minor(found.current_kubernetes_version or found.kubernetes_version) == version:
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, status="succeeded")
        if _minor(found.kubernetes_version) == version:  # asked already (a retry after a crash): wait for the cluster itself
            return CloudOperation(id=f"resource:{version}", cluster=cluster.name, kind=kind)
        body = ManagedCluster(found.as_dict(exclude_readonly=True))
        body.kubernetes_version = version
        body.service_principal_profile = None
        for profile in body.agent_pool_profiles or []:
            # Writable since 2026-08-01, where a value means "roll this pool back": the pools are not this call's to change.
            profile.node_image_version = None
        return self._begin(cluster, f"upgrade of {cluster.name}'s control plane to {version}", "managed_clusters",
                           "begin_create_or_update", group, cluster.name, body, kind=kind, pool=None,
                           etag=found.e_tag, match_condition=MatchConditions.IfNotModified)

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        """A surge upgrade of the agent pool. AKS drains each node through the eviction API and, when a budget
        holds a node past the pool's drainTimeoutInMinutes, fails the upgrade rather than delete the pods
        (undrainableNodeBehavior Schedule: the blocked node is left schedulable): Regatta sets that timeout to
        its own drain timeout, so AKS waits on a budget as long as Regatta itself would."""
        _, group = self._scope(cluster)
        kind = "node_pool_upgrade"
        pool = self._call(cluster, f"describe agent pool {node_pool}", "agent_pools", "get", group, cluster.name, node_pool)
        if node_image is not None and pool.node_image_version != node_image:
            self._refuse_all_but_the_newest_image(cluster, group, node_pool, node_image)
        current = _minor(pool.current_orchestrator_version or pool.orchestrator_version)
        if current == version and pool.provisioning_state == "Succeeded":
            if node_image is None or pool.node_image_version == node_image:
                return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, node_pool=node_pool,
                                      status="succeeded")
            return self._begin(cluster, f"upgrade of agent pool {node_pool} to node image {node_image}", "agent_pools",
                               "begin_upgrade_node_image_version", group, cluster.name, node_pool, kind=kind, pool=node_pool)
        if _minor(pool.orchestrator_version) == version:  # asked already (a retry after a crash): wait for the pool itself
            return CloudOperation(id=f"resource:{version}", cluster=cluster.name, kind=kind, node_pool=node_pool)
        body = AgentPool(pool.as_dict(exclude_readonly=True))
        body.node_image_version = None  # writable since 2026-08-01, where setting it means a rollback
        body.orchestrator_version = version  # a new orchestratorVersion brings AKS's newest node image with it
        settings = dict(pool.upgrade_settings or {})
        if drain_timeout_seconds is not None:
            settings["drainTimeoutInMinutes"] = min(1440, max(1, math.ceil(drain_timeout_seconds / 60)))
        settings.setdefault("undrainableNodeBehavior", "Schedule")
        body.upgrade_settings = AgentPoolUpgradeSettings(settings)
        return self._begin(cluster, f"upgrade of agent pool {node_pool} to {version}", "agent_pools", "begin_create_or_update",
                           group, cluster.name, node_pool, body, kind=kind, pool=node_pool,
                           etag=pool.e_tag, match_condition=MatchConditions.IfNotModified)

    def _refuse_all_but_the_newest_image(self, cluster: ClusterRef, group: str, node_pool: str, node_image: str) -> None:
        """AKS rolls a pool onto its newest node image only: refuse any other before touching the pool."""
        profile = self._call(cluster, f"upgrade profile of agent pool {node_pool}", "agent_pools", "get_upgrade_profile",
                             group, cluster.name, node_pool)
        if profile.latest_node_image_version != node_image:
            raise CloudError(f"AKS offers agent pool {node_pool} only its newest node image,"
                             f" {profile.latest_node_image_version}, not {node_image}: set node_images.aks to it",
                             error_type=ErrorType.CLOUD_REFUSED, retryable=False)

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str, like: str | None = None,
                         launch_template_version: str | None = None) -> CloudOperation:
        """A new agent pool; with `like`, every writable property AKS describes that pool with (mode, so a
        System pool's replacement is a System pool too; OS SKU, zones, max pods, taints, autoscaling, Spot,
        disk, kubelet settings, subnets, tags, upgrade settings) but for the name, version and size. A PUT of
        the same spec is idempotent in ARM: a retried create converges on the same pool."""
        _, group = self._scope(cluster)
        if like is None:
            if node_pool.node_image is not None:  # a new pool gets AKS's newest image, whatever is asked: say so first
                existing = [p.name for p in self.list_node_pools(cluster) if p.name != node_pool.name]
                if existing:
                    self._refuse_all_but_the_newest_image(cluster, group, existing[0], node_pool.node_image)
            spec = AgentPool(**self._profile(node_pool, mode=node_pool.mode or "User", version=node_pool.version))
        else:
            old = self._call(cluster, f"describe agent pool {like}", "agent_pools", "get", group, cluster.name, like)
            spec = AgentPool(old.as_dict(exclude_readonly=True))
            spec.node_image_version = None
            spec.orchestrator_version = node_pool.version
            spec.count = node_pool.node_count
        # No special case for a 409: it is AKS saying another operation runs (OperationNotAllowed), which the
        # workflow waits out; a pool that exists already takes the same PUT as an update and answers 200.
        return self._begin(cluster, f"creation of agent pool {node_pool.name}", "agent_pools", "begin_create_or_update",
                           group, cluster.name, node_pool.name, spec, kind="node_pool_create", pool=node_pool.name)

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        _, group = self._scope(cluster)
        return self._begin(cluster, f"deletion of agent pool {node_pool}", "agent_pools", "begin_delete",
                           group, cluster.name, node_pool, kind="node_pool_delete", pool=node_pool)

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.status != "in_progress":
            return operation
        if operation.id.startswith("resource:"):
            return self._poll_resource(cluster, operation)
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

    def _poll_resource(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        """An upgrade whose operation URL went with a crashed activity: the cluster (or pool) tells by its own
        provisioningState and the version it runs."""
        _, group = self._scope(cluster)
        wanted = operation.id.removeprefix("resource:")
        if operation.node_pool:
            found: Any = self._call(cluster, f"describe agent pool {operation.node_pool}", "agent_pools", "get", group,
                                    cluster.name, operation.node_pool)
            current = found.current_orchestrator_version or found.orchestrator_version
        else:
            found = self._get(cluster)
            current = found.current_kubernetes_version or found.kubernetes_version
        if found.provisioning_state == "Succeeded" and _minor(current) == wanted:
            return operation.model_copy(update={"status": "succeeded"})
        if found.provisioning_state in ("Failed", "Canceled"):
            return operation.model_copy(update={"status": "failed", "errors": [f"provisioningState {found.provisioning_state}"]})
        return operation

    def last_version_change(self, cluster: ClusterRef) -> VersionChange | None:
        return None  # AKS never rolls a control plane back

    def upgrade_insights(self, cluster: ClusterRef, *, category: InsightCategory = "UPGRADE_READINESS") -> list[UpgradeInsight]:
        return []  # AKS has no upgrade insights of its own to read (Azure/AKS#5767 asks for them)

    def surge_room(self, cluster: ClusterRef, pools: list[NodePool]) -> list[NodePoolRoom]:
        return []  # a subnet's free addresses are Microsoft.Network's (subnet usage), which Regatta does not read

    def managed_addons(self, cluster: ClusterRef, *, version: str) -> list[ManagedAddon]:
        return []  # AKS moves its add-ons with the control plane

    def start_addon_update(self, cluster: ClusterRef, *, addon: str, version: str, request_token: str) -> CloudOperation:
        raise CloudError("AKS moves its add-ons with the control plane; there is none to update",
                         error_type=ErrorType.INVALID_REQUEST, retryable=False)

    def _user_kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        import yaml

        _, group = self._scope(cluster)
        result = self._call(cluster, f"credentials of {cluster.name}", "managed_clusters", "list_cluster_user_credentials",
                            group, cluster.name, format="exec")
        value = result.kubeconfigs[0].value  # the SDK hands the base64 value back decoded, as bytes
        issued: dict[str, Any] = yaml.safe_load(value.decode() if isinstance(value, bytes) else base64.b64decode(value).decode())
        return issued

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """What `az aks get-credentials` and `kubelogin convert-kubeconfig -l azurecli` write: the
        server and CA of the user kubeconfig ARM hands out, and kubelogin as the exec plugin."""
        if self.endpoint_url:
            return simulator_kubeconfig(self.endpoint_url, cluster, site=self.credential_site)
        issued = self._user_kubeconfig(cluster)
        server = issued["clusters"][0]["cluster"]
        return kubeconfig.kubeconfig(name=cluster.name, server=server["server"],
                                     ca_data=server.get("certificate-authority-data"), user=kubeconfig.aks_user())

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        """The API server and CA of the user kubeconfig ARM hands out. On a cluster with Entra ID that kubeconfig
        runs kubelogin (absent from the image, interactive by default), so the worker presents what kubelogin
        would fetch: a token for the AKS server application from its own Azure credential, renewed before it
        expires. A cluster on local accounts hands out the cluster user's token itself. A cluster behind a
        site is reached with the credentials its agent holds."""
        if self.endpoint_url and cluster.site:
            return simulator_endpoint(self.endpoint_url, cluster, site=self.credential_site)
        issued = self._user_kubeconfig(cluster)
        server = issued["clusters"][0]["cluster"]
        user = issued["users"][0]["user"]
        host, ca = server["server"], server.get("certificate-authority-data")
        if "exec" in user:
            credential = self._stored(cluster)[0] if is_reference(cluster.credential_ref) else self.credential()
            try:
                token = credential.get_token(AKS_SERVER_SCOPE)
            except ClientAuthenticationError as error:  # Entra's refusal is final; anything else may pass
                refused = getattr(error, "status_code", None) in (400, 401) or "AADSTS" in str(error)
                raise CloudError(f"Entra ID gave no token for {cluster.name}'s API server ({type(error).__name__})",
                                 error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=not refused) from None
            return KubeEndpoint(host=host, bearer_token=token.token, ca_data=ca, expires_at=float(token.expires_on))
        if user.get("token"):
            return KubeEndpoint(host=host, bearer_token=user["token"], ca_data=ca)
        return KubeEndpoint(host="", kubeconfig=issued)  # a client certificate: the kubeconfig as issued


def _effect_name(effect: str) -> str:
    return {name: wire for wire, name in _EFFECTS.items()}.get(effect, effect)


def _taint(text: str) -> NodeTaint:
    key_value, _, effect = text.partition(":")
    key, _, value = key_value.partition("=")
    return NodeTaint.model_validate({"key": key, "value": value, "effect": _EFFECTS.get(effect, "NO_SCHEDULE")})
