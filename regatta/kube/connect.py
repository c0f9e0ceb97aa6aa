"""One place that turns a ClusterRef into a ready `kubernetes.client.ApiClient`.

The cluster's provider says where its API answers and which token it takes (EKS: the
endpoint from DescribeCluster and a presigned STS token; GKE: an OAuth token; AKS: an Entra
token for the AKS server application; kubeconfig: a context). Clients are kept per cluster for
the life of the process; their token is renewed before it expires (at three quarters of its
life, checked before every request, so a drain or a gate that holds one client for an hour
never presents an EKS token past its 15 minutes), and once more if the API server answers 401
anyway (a token revoked early, a clock that drifted). A second 401 is the API server's answer.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.util.retry import Retry

from regatta.clouds import KubeEndpoint, Providers
from regatta.clouds.base import CloudError
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.clouds.secret_stores import is_reference
from regatta.models import ClusterRef
from regatta.models.errors import ErrorType
from regatta.rules.own_hardware import OWN_HARDWARE

RENEW_AT = 0.75  # of a token's life
# Reads that meet throttling or a busy API server are retried inside urllib3 with a short
# backoff (honouring Retry-After) before an activity sees them. Writes are not: an eviction's
# 429 is a PodDisruptionBudget's answer, which the drain loop handles itself.
READ_RETRIES = Retry(total=4, backoff_factor=0.1, status_forcelist=(429, 500, 502, 503, 504),
                     allowed_methods=frozenset({"GET"}), raise_on_status=False)


class BearerToken:
    """A cluster's current bearer token, renewed from its provider before it expires, or at once when asked."""

    def __init__(self, endpoint: KubeEndpoint, fetch: Callable[[], KubeEndpoint]):
        self._fetch = fetch
        self._lock = threading.Lock()
        self._take(endpoint)

    def _take(self, endpoint: KubeEndpoint) -> None:
        now = time.time()
        self.token = endpoint.bearer_token
        self.renew_after = None if endpoint.expires_at is None else now + RENEW_AT * max(0.0, endpoint.expires_at - now)

    def current(self, *, renew: bool = False) -> str | None:
        with self._lock:
            if renew or (self.renew_after is not None and time.time() >= self.renew_after):
                self._take(self._fetch())
            return self.token


class RenewingApiClient(k8s.ApiClient):
    """An ApiClient whose every request carries the token as it is now, and that asks once more with a
    renewed token when the API server answers 401."""

    def __init__(self, configuration: k8s.Configuration, token: BearerToken):
        super().__init__(configuration)
        self.token = token
        configuration.refresh_api_key_hook = self._refresh

    def _refresh(self, configuration: k8s.Configuration) -> None:
        configuration.api_key["authorization"] = f"Bearer {self.token.current()}"

    def request(self, method, url, query_params=None, headers=None, post_params=None, body=None, _preload_content=True,
                _request_timeout=None):
        try:
            return super().request(method, url, query_params=query_params, headers=headers, post_params=post_params,
                                   body=body, _preload_content=_preload_content, _request_timeout=_request_timeout)
        except ApiException as error:
            if error.status != 401:
                raise
            headers = {**(headers or {}), "authorization": f"Bearer {self.token.current(renew=True)}"}
            return super().request(method, url, query_params=query_params, headers=headers, post_params=post_params,
                                   body=body, _preload_content=_preload_content, _request_timeout=_request_timeout)


class ClusterConnections:
    """Providers and Kubernetes clients for every cluster this process touches."""

    def __init__(self, *, sim_url: str | None, site: str | None = None, rate_limit: RateLimit = no_rate_limit,
                 simulated_only: bool = False):
        # A site agent's connections (`regatta worker --site NAME`) hold that site's credentials;
        # every cloud request waits for its account's turn (regatta/clouds/rate_limits.py).
        self.site = site
        # A rehearsal's worker (regatta/rehearsal.py): only the simulator is reached, never a kubeconfig a secrets store
        # holds, whatever a twin's cluster names as its credentials.
        self.simulated_only = simulated_only
        self.providers = Providers(sim_url=sim_url, api_clients=self.api_client, site=site, rate_limit=rate_limit)
        self._clients: dict[str, k8s.ApiClient] = {}
        self._made_from: dict[str, str] = {}  # a stored kubeconfig's fingerprint, by cluster
        self._lock = threading.Lock()
        # The clusters' CA certificates, one file per distinct certificate (the kubernetes client
        # reads a CA from a path), removed with the directory when this object closes or the
        # process ends: rebuilding a client every few minutes must not leave a file each time.
        self._ca_files = tempfile.TemporaryDirectory(prefix="regatta-ca-")
        self.ca_dir = Path(self._ca_files.name)

    def close(self) -> None:
        with self._lock:
            self._clients.clear()
        self._ca_files.cleanup()

    def provider(self, cluster: ClusterRef):
        return self.providers.for_cluster(cluster)

    def api_client(self, cluster: ClusterRef) -> k8s.ApiClient:
        if self.simulated_only and is_reference(cluster.credential_ref):
            raise CloudError(f"{cluster.name}: this process reaches the simulator only, not {cluster.credential_ref!r}",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        if cluster.provider in OWN_HARDWARE and is_reference(cluster.credential_ref):
            return self._stored_client(cluster)
        with self._lock:
            cached = self._clients.get(cluster.name)
            if cached is not None:
                return cached
        client = self._build(cluster)
        with self._lock:
            return self._clients.setdefault(cluster.name, client)

    def _stored_client(self, cluster: ClusterRef) -> k8s.ApiClient:
        """A cluster whose kubeconfig a secrets store holds: its client is made again when the kubeconfig read (kept
        REGATTA_SECRET_CACHE_SECONDS) is no longer the one it was made from, so a rotation needs no restart."""
        endpoint = self.provider(cluster).kube_endpoint(cluster)
        fingerprint = hashlib.sha256(repr(endpoint.kubeconfig).encode()).hexdigest()
        with self._lock:
            cached = self._clients.get(cluster.name)
            if cached is not None and self._made_from.get(cluster.name) == fingerprint:
                return cached
        client = self.client_for(endpoint)
        with self._lock:
            self._clients[cluster.name], self._made_from[cluster.name] = client, fingerprint
            return client

    def forget(self, cluster: ClusterRef) -> None:
        """Drop the cached client of a cluster that is going away (or being made anew)."""
        with self._lock:
            self._clients.pop(cluster.name, None)
            self._made_from.pop(cluster.name, None)

    def _build(self, cluster: ClusterRef) -> k8s.ApiClient:
        provider = self.provider(cluster)
        return self.client_for(provider.kube_endpoint(cluster), renew=lambda: provider.kube_endpoint(cluster))

    def client_for(self, endpoint: KubeEndpoint, *, renew: Callable[[], KubeEndpoint] | None = None) -> k8s.ApiClient:
        """A client for an API server endpoint as a cloud describes it; `renew` fetches the endpoint again
        when its token is due (without it the token is used as it is)."""
        if endpoint.kubeconfig is not None:
            return k8s_config.new_client_from_config_dict(endpoint.kubeconfig)
        if not endpoint.host:
            return k8s_config.new_client_from_config(context=endpoint.kubeconfig_context)
        configuration = k8s.Configuration()
        configuration.host = endpoint.host
        configuration.connection_pool_maxsize = 8
        configuration.retries = READ_RETRIES
        if endpoint.ca_data:
            configuration.ssl_ca_cert = str(self._ca_file(endpoint.ca_data))
        if not endpoint.bearer_token:
            return k8s.ApiClient(configuration)
        configuration.api_key = {"authorization": f"Bearer {endpoint.bearer_token}"}
        return RenewingApiClient(configuration, BearerToken(endpoint, renew or (lambda: endpoint)))

    def _ca_file(self, ca_data: str) -> Path:
        pem = base64.b64decode(ca_data)
        path = self.ca_dir / f"{hashlib.sha256(pem).hexdigest()[:32]}.crt"
        with self._lock:
            if not path.exists():
                partial = path.with_suffix(".part")
                partial.write_bytes(pem)
                partial.replace(path)  # whole or absent: another thread never reads half a certificate
        return path
