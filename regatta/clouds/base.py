"""What Regatta needs a cloud to do, as one protocol every adapter (EKS, GKE, AKS and kubeconfig
clusters) implements, and the errors adapters raise.

Adapters are synchronous: they run inside thread-pool activities. Long operations are
started by one call and polled by another, so an activity that dies between the two finds
the operation again by its request token instead of starting a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from regatta.formats import kubeconfig
from regatta.models import (
    CloudOperation,
    ClusterNetwork,
    ClusterRef,
    ManagedAddon,
    NodePool,
    NodeState,
    UpgradeInsight,
    VersionChange,
)
from regatta.models.errors import ErrorType
from regatta.models.fleet import InsightCategory
from regatta.models.readiness import NodePoolRoom
from regatta.rules import readiness


class CloudError(Exception):
    """A refusal or failure from a cloud. `retryable=False` means a retry cannot fix it."""

    def __init__(self, message: str, *, error_type: str, retryable: bool):
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable


@dataclass(frozen=True)
class ControlPlane:
    name: str
    version: str
    status: str


@dataclass(frozen=True)
class KubeEndpoint:
    """Where a cluster's Kubernetes API answers and how to authenticate to it right now."""

    host: str
    bearer_token: str | None = None
    ca_data: str | None = None  # base64 PEM, as EKS and GKE return it
    kubeconfig_context: str | None = None
    kubeconfig: dict | None = None  # a whole kubeconfig (a context of the process's own kubeconfig file)
    # When the bearer token stops being accepted (epoch seconds; None: it does not expire): EKS's after
    # 15 minutes, a Google or Entra access token after about an hour. regatta/kube/connect.py renews it before.
    expires_at: float | None = None


class CloudProvider(Protocol):
    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane: ...

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None, first_pool: NodePool | None = None) -> CloudOperation:
        """Create the control plane; `first_pool` is created with it where the cloud wants a cluster born with
        nodes (a GKE node pool, an AKS System pool), and separately by the caller elsewhere (EKS)."""
        ...

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation: ...

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]: ...

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str,
                                    force: bool = False) -> CloudOperation: ...

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation: ...

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str, like: str | None = None,
                         launch_template_version: str | None = None) -> CloudOperation:
        """A new pool; with `like`, made like that pool (every setting the cloud describes it with) but for
        the name, version and image `node_pool` gives: a blue/green replacement."""
        ...

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation: ...

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation: ...

    def upgrade_insights(self, cluster: ClusterRef, *, category: InsightCategory = "UPGRADE_READINESS") -> list[UpgradeInsight]:
        """The cloud's own readiness findings for the cluster's upgrade (EKS upgrade insights), or with
        ROLLBACK_READINESS its rollback; [] where there are none."""
        ...

    def last_version_change(self, cluster: ClusterRef) -> VersionChange | None:
        """The control plane's last version change, where the cloud records one a rollback can take back (EKS);
        None elsewhere."""
        ...

    def surge_room(self, cluster: ClusterRef, pools: list[NodePool]) -> list[NodePoolRoom]:
        """Each pool's room for the nodes its cloud's upgrade adds (`NodePool.surge`, from `list_node_pools`): the
        addresses where they would come from (EKS subnets, a GKE Pod range); [] where the cloud's ceiling is not
        read (AKS, your own hardware)."""
        ...

    def managed_addons(self, cluster: ClusterRef, *, version: str) -> list[ManagedAddon]:
        """The add-ons the cloud manages on the cluster but leaves to the operator to move (EKS); []
        where the cloud moves its own with the control plane (GKE, AKS)."""
        ...

    def start_addon_update(self, cluster: ClusterRef, *, addon: str, version: str, request_token: str) -> CloudOperation: ...

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint: ...

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """A kubeconfig for `cluster` in the form the cloud's own CLI writes (regatta/formats/kubeconfig.py)."""
        ...


def read_surge_room(provider: CloudProvider, cluster: ClusterRef, pools: list[NodePool],
                    nodes: Callable[[], list[NodeState]]) -> tuple[list[NodePoolRoom], str | None]:
    """The pools' room for their surge as readiness judges it, and why it could not be read: a read the cloud
    refuses (a role without ec2:DescribeSubnets, EC2 out of reach) is said, never the end of the read; one worth
    retrying raises. `nodes` is asked only when a node's addresses come from its kubelet (EKS)."""
    try:
        rooms = provider.surge_room(cluster, pools)
    except CloudError as error:
        if error.retryable:
            raise
        return [], str(error)[:300]
    if any(room.addresses_per_node is None for room in rooms):
        rooms = readiness.with_node_addresses(rooms, nodes())
    return rooms, None


_simulator_http: Any = None


def simulator_credentials(sim_url: str, cluster: ClusterRef, *, site: str | None = None, lasting: bool = False) -> dict[str, Any]:
    """What the simulated cloud hands out for `cluster`, as `aws eks get-token` or `az aks
    get-credentials` would: a bearer token, the API server's HTTPS address and the CA that signed
    its certificate. Asked for when a client is built: it lives in the activity, never in a payload.
    A cluster in a private network's site gives its credentials only to that site's agent (`site`)."""
    import httpx

    global _simulator_http
    if _simulator_http is None:  # one client for the process: a new one per call builds an SSL context each time
        _simulator_http = httpx.Client(timeout=10)
    try:
        params = {**({"site": site} if site else {}), **({"lasting": "true"} if lasting else {})}
        response = _simulator_http.get(f"{sim_url.rstrip('/')}/sim/credentials/{cluster.name}", params=params or None)
        if response.status_code == 403:
            raise CloudError(f"credentials of {cluster.name}: {_message_of(response)}",
                             error_type=ErrorType.KUBE_REFUSED, retryable=False)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise CloudError(f"credentials of {cluster.name} from the simulator: {error}", error_type=ErrorType.CLOUD_UNREACHABLE,
                         retryable=True) from error
    found: dict[str, Any] = response.json()
    return found


def _message_of(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    return str(body.get("message") or body.get("Message") or response.text) if isinstance(body, dict) else str(body)


def simulator_kubeconfig(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> dict[str, Any]:
    """A simulated cluster's kubeconfig: its HTTPS server, the run's CA and the lasting token a kubeconfig
    handed to a person carries (a real cloud's kubeconfig runs its exec plugin instead)."""
    found = simulator_credentials(sim_url, cluster, site=site, lasting=True)
    return kubeconfig.kubeconfig(name=cluster.name, server=found["server"], ca_data=found.get("certificate_authority_data"),
                                 user=kubeconfig.token_user(found["token"]))


def simulator_endpoint(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> KubeEndpoint:
    """A simulated cluster's API server over HTTPS, trusted through its CA like a real one, with a token
    that expires as its cloud's would (the simulator says when)."""
    found = simulator_credentials(sim_url, cluster, site=site)
    expires = found.get("expires_at")
    return KubeEndpoint(host=found["server"], bearer_token=found["token"], ca_data=found.get("certificate_authority_data"),
                        expires_at=float(expires) if expires is not None else None)


def stored_credential(cluster: ClusterRef, what: str) -> tuple[str, str]:
    """The credential a secrets store keeps for the cluster (its credential_ref is a reference), read in this process
    and kept REGATTA_SECRET_CACHE_SECONDS, and its SHA-256 (what a provider's client is made from: a new digest, a
    rotated secret, a new client); a CloudError naming `what` when it cannot be read, retryable while the store is
    away."""
    import hashlib

    from regatta.clouds.secret_stores import SecretStoreError, stored

    try:
        text = stored(cluster.credential_ref, name=f"{what} of {cluster.name}").value()
    except SecretStoreError as error:
        raise CloudError(f"{cluster.name}: {error}", error_type=ErrorType.INVALID_CREDENTIAL_REF,
                         retryable=error.retryable) from None
    return text, hashlib.sha256(text.encode()).hexdigest()
