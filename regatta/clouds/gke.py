"""Google Kubernetes Engine through `google-cloud-container` (Container API v1, REST transport):
master and node pool upgrades, node pool create/delete, operation polling.

GKE takes no client request tokens, so starts are check-then-act: a retried start first looks
for the operation it may already have begun (a RUNNING operation of the same type on the same
target) or for the version already reached, and only then asks again.

`credential_ref` is the Google Cloud project id; credentials come from Application Default
Credentials when the activity runs. In the embedded default the simulator answers, with
anonymous credentials.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from datetime import UTC
from typing import Any

from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import RefreshError
from google.cloud import container_v1

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
from regatta.models.readiness import NodePoolRoom, RoomPlace
from regatta.rules import versions

SIM_PROJECT = "regatta-sim"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_RETRYABLE = (google_errors.TooManyRequests, google_errors.ServiceUnavailable, google_errors.InternalServerError,
              google_errors.DeadlineExceeded, google_errors.Aborted)
# A target or self link as GKE writes it: the project by number (whatever id the request used), and
# `zones/` for a zonal cluster: only what follows the project is compared.
_TARGET = re.compile(r"/(?:locations|zones)/(?P<location>[^/]+)/clusters/(?P<cluster>[^/]+)(?:/nodePools/(?P<pool>[^/]+))?$")
# Fields of a NodePool GKE writes itself; a replacement made from a described pool leaves them out.
_OUTPUT_ONLY = ("self_link", "instance_group_urls", "status", "status_message", "conditions", "pod_ipv4_cidr_size",
                "update_info", "etag", "version", "initial_node_count", "name")


# How GKE words "another operation runs" (FAILED_PRECONDITION covers other refusals too, which waiting never fixes):
# "Operation operation-... is currently upgrading cluster c. Please wait and try again once it is done.",
# "Cluster is running incompatible operation operation-...".
_BUSY_WORDS = ("is currently", "Please wait", "incompatible operation")


def _status_of(error: google_errors.GoogleAPICallError) -> str:
    """Google's canonical status of a refusal (FAILED_PRECONDITION, ...): the REST client names its
    exception by the HTTP code only, and GKE answers both a bad request and a busy cluster with 400."""
    try:
        body = error.response.json() if error.response is not None else {}
    except ValueError:
        body = {}
    found = (body.get("error") or {}).get("status") if isinstance(body, dict) else None
    reasons = {str(e.get("reason")) for e in getattr(error, "errors", None) or [] if isinstance(e, dict)}
    return str(found or ("FAILED_PRECONDITION" if "failedPrecondition" in reasons else ""))


def _cloud_error(error: Exception, *, what: str) -> CloudError:
    if isinstance(error, google_errors.NotFound):
        return CloudError(f"{what}: {error.message}", error_type=ErrorType.NOT_FOUND, retryable=False)
    if isinstance(error, google_errors.GoogleAPICallError) and _status_of(error) == "FAILED_PRECONDITION" \
            and any(words in error.message for words in _BUSY_WORDS):
        # "Operation operation-... is currently upgrading cluster c. Please wait and try again once it is done."
        return CloudError(f"GKE is busy with another operation on the cluster during {what}: {error.message}",
                          error_type=ErrorType.OPERATION_IN_PROGRESS, retryable=False)
    if isinstance(error, _RETRYABLE):
        return CloudError(f"GKE {type(error).__name__} during {what}: {error.message}", error_type=type(error).__name__, retryable=True)
    if isinstance(error, google_errors.GoogleAPICallError):
        return CloudError(f"GKE refused {what}: {error.message}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
    return CloudError(f"could not reach GKE during {what}: {error}", error_type=ErrorType.CLOUD_UNREACHABLE, retryable=True)


def _default_zones(location: str) -> int:
    """How many zones GKE puts a new cluster's nodes in: its own for a zonal cluster (us-central1-a), three
    of its region for a regional one ("By default, GKE replicates each node pool across three zones")."""
    return 1 if re.fullmatch(r"[a-z]+-[a-z]+\d+-[a-z]", location) else 3


def _surge(pool: container_v1.NodePool) -> int:
    """The nodes the pool's upgrade adds before it removes any: a blue-green upgrade a whole green pool, a surge
    upgrade maxSurge in each of the pool's zones (the stricter reading: the reference says only "beyond the current
    size of the node pool", docs/cloud-conformance.md G13)."""
    zones = max(1, len(pool.locations))
    if pool.upgrade_settings.strategy == container_v1.NodePoolUpdateStrategy.BLUE_GREEN:
        return pool.initial_node_count * zones
    return pool.upgrade_settings.max_surge * zones


def _minor(version: str) -> str:
    return versions.format_version(versions.minor_version(version))


class GkeProvider:
    def __init__(self, *, endpoint_url: str | None = None, credential_site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        self.endpoint_url = endpoint_url
        self.rate_limit = rate_limit  # waits for this account's turn (regatta/clouds/rate_limits.py)
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._client: container_v1.ClusterManagerClient | None = None
        self._stored: dict[str, tuple[str, tuple[container_v1.ClusterManagerClient, str, Any]]] = {}
        self._lock = threading.Lock()

    def client(self) -> container_v1.ClusterManagerClient:
        with self._lock:
            if self._client is None:
                if self.endpoint_url:
                    self._client = container_v1.ClusterManagerClient(
                        credentials=AnonymousCredentials(), transport="rest",
                        client_options=ClientOptions(api_endpoint=self.endpoint_url),
                    )
                else:
                    self._client = container_v1.ClusterManagerClient(transport="rest")
            return self._client

    def _stored_client(self, cluster: ClusterRef) -> tuple[container_v1.ClusterManagerClient, str, Any]:
        """The client of a service account whose key a secrets store keeps (credential_ref `aws-secretsmanager:NAME`,
        the JSON `gcloud iam service-accounts keys create` writes), and its project: made again when the key read
        (kept REGATTA_SECRET_CACHE_SECONDS) changes, so a rotated key is used without a restart."""
        from google.oauth2 import service_account

        text, fingerprint = stored_credential(cluster, "the service account key")
        with self._lock:
            held = self._stored.get(cluster.credential_ref)
            if held is not None and held[0] == fingerprint:
                return held[1]
        made: tuple[container_v1.ClusterManagerClient, str, Any] | None = None
        try:
            info = json.loads(text)
            credentials = service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM])
            options = ClientOptions(api_endpoint=self.endpoint_url) if self.endpoint_url else None
            made = (container_v1.ClusterManagerClient(credentials=credentials, transport="rest", client_options=options),
                    str(info["project_id"]), credentials)
        except (ValueError, KeyError, TypeError):
            pass
        if made is None:  # raised out here: its words are a private key, kept out of the message and the chain
            raise CloudError(f"{cluster.name}: the secret {cluster.credential_ref} does not hold a service account key"
                             " (the JSON `gcloud iam service-accounts keys create` writes)",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        with self._lock:  # one client per reference, made again when its key is rotated
            self._stored[cluster.credential_ref] = (fingerprint, made)
        return made

    def _client_for(self, cluster: ClusterRef) -> container_v1.ClusterManagerClient:
        return self._stored_client(cluster)[0] if is_reference(cluster.credential_ref) else self.client()

    def _project(self, cluster: ClusterRef) -> str:
        if is_reference(cluster.credential_ref):
            return self._stored_client(cluster)[1]
        return SIM_PROJECT if cluster.credential_ref == "default" else cluster.credential_ref

    def _path(self, cluster: ClusterRef, pool: str | None = None) -> str:
        path = f"projects/{self._project(cluster)}/locations/{cluster.region}/clusters/{cluster.name}"
        return f"{path}/nodePools/{pool}" if pool else path

    def _call(self, on: ClusterRef, what: str, method: str, **kwargs):
        self.rate_limit(on)
        try:
            return getattr(self._client_for(on), method)(**kwargs)
        except (google_errors.GoogleAPIError, OSError) as error:
            raise _cloud_error(error, what=what) from error
        except RefreshError as error:  # the service account's key was refused for a token (or the token service is away)
            raise CloudError(f"Google refused a token for {on.name}'s service account during {what}: {error.args[0] if error.args else error}",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF,
                             retryable=bool(getattr(error, "retryable", False))) from error

    def _get(self, cluster: ClusterRef) -> container_v1.Cluster:
        return self._call(cluster, f"describe cluster {cluster.name}", "get_cluster", name=self._path(cluster))

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        found = self._get(cluster)
        status = {container_v1.Cluster.Status.RUNNING: "ACTIVE", container_v1.Cluster.Status.RECONCILING: "UPDATING",
                  container_v1.Cluster.Status.PROVISIONING: "CREATING", container_v1.Cluster.Status.STOPPING: "DELETING"}
        return ControlPlane(name=found.name, version=_minor(found.current_master_version),
                            status=status.get(found.status) or str(found.status.name))

    @staticmethod
    def _pool_spec(pool: NodePool, *, zones: int) -> container_v1.NodePool:
        """A new pool in `zones` zones: initial_node_count is per zone, so the pool's count is spread over them
        (rounded up: a regional pool has as many nodes in each of its zones)."""
        return container_v1.NodePool(
            name=pool.name, initial_node_count=math.ceil(pool.node_count / max(1, zones)), version=pool.node_image or pool.version,
            config=container_v1.NodeConfig(
                machine_type=pool.node_size, labels=pool.labels,
                taints=[container_v1.NodeTaint(key=t.key, value=t.value, effect=getattr(container_v1.NodeTaint.Effect, t.effect))
                        for t in pool.taints]),
        )

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None, first_pool: NodePool | None = None) -> CloudOperation:
        """A Standard cluster is born with nodes ("Cluster.initial_node_count must be greater than zero"): its
        first node pool travels in the create request."""
        kind = "cluster_create"
        if (running := self._running(cluster, container_v1.Operation.Type.CREATE_CLUSTER, None)) is not None:
            return self._operation(cluster, running, kind=kind)
        try:
            self._get(cluster)
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, status="succeeded")
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
        if first_pool is None:
            raise CloudError(f"GKE creates cluster {cluster.name} only with a node pool: give at least one in the provision"
                             " file", error_type=ErrorType.INVALID_REQUEST, retryable=False)
        network = network or ClusterNetwork()
        spec = container_v1.Cluster(name=cluster.name, initial_cluster_version=version, resource_labels=labels,
                                    node_pools=[self._pool_spec(first_pool.model_copy(update={"version": version}),
                                                                zones=_default_zones(cluster.region))],
                                    **({"network": network.network} if network.network else {}),
                                    **({"subnetwork": network.subnetwork} if network.subnetwork else {}))
        op = self._call(cluster, f"creation of cluster {cluster.name}", "create_cluster",
                        parent=f"projects/{self._project(cluster)}/locations/{cluster.region}", cluster=spec)
        return self._operation(cluster, op, kind=kind)

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation:
        kind = "cluster_delete"
        if (running := self._running(cluster, container_v1.Operation.Type.DELETE_CLUSTER, None)) is not None:
            return self._operation(cluster, running, kind=kind)
        try:
            op = self._call(cluster, f"deletion of cluster {cluster.name}", "delete_cluster", name=self._path(cluster))
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, status="succeeded")
        return self._operation(cluster, op, kind=kind)

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        return [
            NodePool(name=p.name, version=_minor(p.version), node_count=p.initial_node_count * max(1, len(p.locations)),
                     node_size=p.config.machine_type or "unknown", labels=dict(p.config.labels),
                     node_image=p.version,  # GKE's node image is its full node version
                     taints=[NodeTaint(key=t.key, value=t.value, effect=container_v1.NodeTaint.Effect(t.effect).name)
                             for t in p.config.taints],
                     image_type=p.config.image_type or None,
                     auto_upgrade=bool(p.management.auto_upgrade) if p.management else None, surge=_surge(p))
            for p in self._get(cluster).node_pools
            if p.status != container_v1.NodePool.Status.STOPPING
        ]

    def surge_room(self, cluster: ClusterRef, pools: list[NodePool]) -> list[NodePoolRoom]:
        """Each pool's room for its upgrade's new nodes in its Pod range (NodeNetworkConfig: the range, the share
        of it in use, podIpv4RangeUtilization, and each node's block, NodePool.podIpv4CidrSize). A range GKE
        does not describe (a routes-based cluster) is not judged."""
        surges = {pool.name: pool for pool in pools if pool.node_count}  # maxSurge 0 too: a blue/green replacement needs room
        rooms = []
        for found in self._get(cluster).node_pools:
            network = found.network_config
            if found.name not in surges or not network.pod_ipv4_cidr_block or not found.pod_ipv4_cidr_size:
                continue
            total = ipaddress.ip_network(network.pod_ipv4_cidr_block, strict=False).num_addresses
            place = f"Pod range {network.pod_ipv4_cidr_block}"
            pool = surges[found.name]
            rooms.append(NodePoolRoom(
                name=found.name, node_count=pool.node_count, addresses_per_node=1 << (32 - found.pod_ipv4_cidr_size),
                places=[RoomPlace(name=place, surge_nodes=pool.surge or 0,  # free: the range less the share GKE says is used
                                  free_addresses={place: total - round(total * network.pod_ipv4_range_utilization)})]))
        return rooms

    def _operation(self, cluster: ClusterRef, op: container_v1.Operation, *, kind: str, pool: str | None = None) -> CloudOperation:
        if op.status != container_v1.Operation.Status.DONE:
            status, errors = "in_progress", []
        elif (op.error and op.error.message) or op.status_message:
            status, errors = "failed", [op.error.message or op.status_message]
        else:
            status, errors = "succeeded", []
        return CloudOperation(id=op.name, cluster=cluster.name, kind=kind, node_pool=pool, status=status, errors=errors)

    def _running(self, cluster: ClusterRef, op_type: int, pool: str | None) -> container_v1.Operation | None:
        """The operation a previous attempt started, if it is still running: one of the same type on the same
        target, whose link GKE writes with the project's number and, for a zonal cluster, `zones/`."""
        listed = self._call(cluster, "list operations", "list_operations",
                            parent=f"projects/{self._project(cluster)}/locations/{cluster.region}")
        for op in listed.operations:
            target = _TARGET.search(op.target_link or "")
            if (op.operation_type == op_type and target is not None and target["location"] == cluster.region
                    and target["cluster"] == cluster.name and target["pool"] == pool
                    and op.status in (container_v1.Operation.Status.PENDING, container_v1.Operation.Status.RUNNING)):
                return op
        return None

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str,
                                    force: bool = False) -> CloudOperation:
        kind = "control_plane_upgrade"
        if (running := self._running(cluster, container_v1.Operation.Type.UPGRADE_MASTER, None)) is not None:
            return self._operation(cluster, running, kind=kind)
        if _minor(self._get(cluster).current_master_version) == version:
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, status="succeeded")
        op = self._call(cluster, f"upgrade of {cluster.name}'s master to {version}", "update_master",
                        name=self._path(cluster), master_version=version)
        return self._operation(cluster, op, kind=kind)

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        """GKE's upgrade of the pool by its own upgrade settings (GKE's default: surge, maxSurge 1, maxUnavailable 0),
        on its own image type: what `gcloud container clusters upgrade --node-pool` sends, the node version and the
        image type only. UpdateNodePool replaces the image type with what it is sent, so the pool's own is sent
        back (a COS_CONTAINERD would move an Ubuntu pool to COS and is refused for a Windows pool). The upgrade
        settings are the operator's: an upgrade leaves them as they were, and sending them beside the version
        would change them for every later auto-upgrade too."""
        kind = "node_pool_upgrade"
        if (running := self._running(cluster, container_v1.Operation.Type.UPGRADE_NODES, node_pool)) is not None:
            return self._operation(cluster, running, kind=kind, pool=node_pool)
        pool = self._call(cluster, f"describe node pool {node_pool}", "get_node_pool", name=self._path(cluster, node_pool))
        if _minor(pool.version) == version and (node_image is None or pool.version == node_image):
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, node_pool=node_pool, status="succeeded")
        # A full node version (1.31.5-gke.1200) picks the image; the bare minor asks for the newest.
        request = container_v1.UpdateNodePoolRequest(
            name=self._path(cluster, node_pool), node_version=node_image or version, image_type=pool.config.image_type)
        op = self._call(cluster, f"upgrade of node pool {node_pool} to {node_image or version}", "update_node_pool", request=request)
        return self._operation(cluster, op, kind=kind, pool=node_pool)

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str, like: str | None = None,
                         launch_template_version: str | None = None) -> CloudOperation:
        """A new node pool; with `like`, everything GetNodePool says of that pool (its whole node config: image
        type, service account, scopes, taints, disk, accelerators, spot; its locations, autoscaling,
        management, max pods, network and placement) but for the name, version and size."""
        kind = "node_pool_create"
        if (running := self._running(cluster, container_v1.Operation.Type.CREATE_NODE_POOL, node_pool.name)) is not None:
            return self._operation(cluster, running, kind=kind, pool=node_pool.name)
        found = self._get(cluster)
        if any(p.name == node_pool.name for p in found.node_pools):
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, node_pool=node_pool.name, status="succeeded")
        if like is None:  # a new pool's nodes go to the cluster's own zones
            spec = self._pool_spec(node_pool, zones=len(found.locations) or _default_zones(cluster.region))
        else:
            old = self._call(cluster, f"describe node pool {like}", "get_node_pool", name=self._path(cluster, like))
            spec = container_v1.NodePool(old)
            for output_only in _OUTPUT_ONLY:
                spec._pb.ClearField(output_only)
            for made_by_gke in ("pod_ipv4_range_utilization", "pod_ipv4_cidr_block"):  # output only; a block only with
                spec.network_config._pb.ClearField(made_by_gke)                   # create_pod_range, which is never read back
            zones = max(1, len(old.locations))
            spec.name = node_pool.name
            spec.version = node_pool.node_image or node_pool.version
            spec.initial_node_count = math.ceil(node_pool.node_count / zones)  # initial_node_count is per zone
        op = self._call(cluster, f"creation of node pool {node_pool.name}", "create_node_pool", parent=self._path(cluster), node_pool=spec)
        return self._operation(cluster, op, kind=kind, pool=node_pool.name)

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        kind = "node_pool_delete"
        if (running := self._running(cluster, container_v1.Operation.Type.DELETE_NODE_POOL, node_pool)) is not None:
            return self._operation(cluster, running, kind=kind, pool=node_pool)
        try:
            op = self._call(cluster, f"deletion of node pool {node_pool}", "delete_node_pool", name=self._path(cluster, node_pool))
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
            return CloudOperation(id=f"done:{request_token}", cluster=cluster.name, kind=kind, node_pool=node_pool, status="succeeded")
        return self._operation(cluster, op, kind=kind, pool=node_pool)

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.status != "in_progress":
            return operation
        op = self._call(cluster, f"status of operation {operation.id}", "get_operation",
                        name=f"projects/{self._project(cluster)}/locations/{cluster.region}/operations/{operation.id}")
        return self._operation(cluster, op, kind=operation.kind, pool=operation.node_pool)

    def last_version_change(self, cluster: ClusterRef) -> VersionChange | None:
        return None  # GKE rolls a control plane back only after a two-step upgrade Regatta does not run

    def upgrade_insights(self, cluster: ClusterRef, *, category: InsightCategory = "UPGRADE_READINESS") -> list[UpgradeInsight]:
        return []  # GKE's deprecation insights live in the Recommender API, which Regatta does not read yet

    def managed_addons(self, cluster: ClusterRef, *, version: str) -> list[ManagedAddon]:
        return []  # GKE moves its own system components with the control plane

    def start_addon_update(self, cluster: ClusterRef, *, addon: str, version: str, request_token: str) -> CloudOperation:
        raise CloudError("GKE moves its add-ons with the control plane; there is none to update",
                         error_type=ErrorType.INVALID_REQUEST, retryable=False)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """What `gcloud container clusters get-credentials` writes: the endpoint and cluster CA, and
        gke-gcloud-auth-plugin as the exec plugin."""
        if self.endpoint_url:
            return simulator_kubeconfig(self.endpoint_url, cluster, site=self.credential_site)
        found = self._get(cluster)
        return kubeconfig.kubeconfig(name=cluster.name, server=f"https://{found.endpoint}",
                                     ca_data=found.master_auth.cluster_ca_certificate or None, user=kubeconfig.gke_user())

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        if self.endpoint_url:
            return simulator_endpoint(self.endpoint_url, cluster, site=self.credential_site)
        import google.auth
        import google.auth.transport.requests

        found = self._get(cluster)
        if is_reference(cluster.credential_ref):  # the stored service account's own token, as for its GKE calls
            credentials = self._stored_client(cluster)[2]
        else:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except RefreshError as error:  # the key refused for a token, or the token service away for now
            raise CloudError(f"Google refused a token for {cluster.name}'s API server ({type(error).__name__})",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF,
                             retryable=bool(getattr(error, "retryable", False))) from None
        expiry = credentials.expiry  # naive UTC, as google-auth keeps it
        return KubeEndpoint(host=f"https://{found.endpoint}", bearer_token=credentials.token,
                            ca_data=found.master_auth.cluster_ca_certificate or None,
                            expires_at=expiry.replace(tzinfo=UTC).timestamp() if expiry else time.time() + 3000)
