"""What Regatta needs a cloud to do, as one protocol every adapter (EKS, GKE, AKS and kubeconfig
clusters) implements, and the errors adapters raise.

Adapters are synchronous: they run inside thread-pool activities. Long operations are
started by one call and polled by another, so an activity that dies between the two finds
the operation again by its request token instead of starting a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from regatta.formats import kubeconfig
from regatta.models import CloudOperation, ClusterNetwork, ClusterRef, NodePool
from regatta.models.errors import ErrorType


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
    kubeconfig: dict | None = None  # a whole kubeconfig, as AKS hands out user credentials


class CloudProvider(Protocol):
    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane: ...

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None) -> CloudOperation: ...

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation: ...

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]: ...

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str) -> CloudOperation: ...

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None) -> CloudOperation: ...

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str) -> CloudOperation: ...

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation: ...

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation: ...

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint: ...

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """A kubeconfig for `cluster` in the form the cloud's own CLI writes (regatta/formats/kubeconfig.py)."""
        ...


_simulator_http: Any = None


def simulator_credentials(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> dict[str, str]:
    """What the simulated cloud hands out for `cluster`, as `aws eks get-token` or `az aks
    get-credentials` would: a bearer token, the API server's HTTPS address and the CA that signed
    its certificate. Asked for when a client is built: it lives in the activity, never in a payload.
    A cluster in a private network's site gives its credentials only to that site's agent (`site`)."""
    import httpx

    global _simulator_http
    if _simulator_http is None:  # one client for the process: a new one per call builds an SSL context each time
        _simulator_http = httpx.Client(timeout=10)
    try:
        response = _simulator_http.get(f"{sim_url.rstrip('/')}/sim/credentials/{cluster.name}",
                                       params={"site": site} if site else None)
        if response.status_code == 403:
            raise CloudError(f"credentials of {cluster.name}: {_message_of(response)}",
                             error_type=ErrorType.KUBE_REFUSED, retryable=False)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise CloudError(f"credentials of {cluster.name} from the simulator: {error}", error_type=ErrorType.CLOUD_UNREACHABLE,
                         retryable=True) from error
    found: dict[str, str] = response.json()
    return found


def _message_of(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    return str(body.get("message") or body.get("Message") or response.text) if isinstance(body, dict) else str(body)


def simulator_token(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> str:
    return simulator_credentials(sim_url, cluster, site=site)["token"]


def simulator_kubeconfig(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> dict[str, Any]:
    """A simulated cluster's kubeconfig: its HTTPS server, the run's CA and its bearer token."""
    found = simulator_credentials(sim_url, cluster, site=site)
    return kubeconfig.kubeconfig(name=cluster.name, server=found["server"], ca_data=found.get("certificate_authority_data"),
                                 user=kubeconfig.token_user(found["token"]))


def simulator_endpoint(sim_url: str, cluster: ClusterRef, *, site: str | None = None) -> KubeEndpoint:
    """A simulated cluster's API server over HTTPS, trusted through its CA like a real one."""
    found = simulator_credentials(sim_url, cluster, site=site)
    return KubeEndpoint(host=found["server"], bearer_token=found["token"], ca_data=found.get("certificate_authority_data"))
