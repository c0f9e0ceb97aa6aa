"""One place that turns a ClusterRef into a ready `kubernetes.client.ApiClient`.

The cluster's provider says where its API answers and which token it takes (EKS: the
endpoint from DescribeCluster and a presigned STS token; kubeconfig: a context). Clients
are cached per cluster and rebuilt before cloud tokens expire.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
import time
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from urllib3.util.retry import Retry

from regatta.clouds import KubeEndpoint, Providers
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.models import ClusterRef

TOKEN_LIFETIME_SECONDS = 600  # EKS tokens live 15 minutes; rebuild well before that
# Reads that meet throttling or a busy API server are retried inside urllib3 with a short
# backoff (honouring Retry-After) before an activity sees them. Writes are not: an eviction's
# 429 is a PodDisruptionBudget's answer, which the drain loop handles itself.
READ_RETRIES = Retry(total=4, backoff_factor=0.1, status_forcelist=(429, 500, 502, 503, 504),
                     allowed_methods=frozenset({"GET"}), raise_on_status=False)


class ClusterConnections:
    """Providers and Kubernetes clients for every cluster this process touches."""

    def __init__(self, *, sim_url: str | None, site: str | None = None, rate_limit: RateLimit = no_rate_limit):
        # A site agent's connections (`regatta worker --site NAME`) hold that site's credentials;
        # every cloud request waits for its account's turn (regatta/clouds/rate_limits.py).
        self.site = site
        self.providers = Providers(sim_url=sim_url, api_clients=self.api_client, site=site, rate_limit=rate_limit)
        self._clients: dict[str, tuple[float, k8s.ApiClient]] = {}
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
        with self._lock:
            cached = self._clients.get(cluster.name)
            if cached and time.monotonic() - cached[0] < TOKEN_LIFETIME_SECONDS:
                return cached[1]
        client = self._build(cluster)
        with self._lock:
            self._clients[cluster.name] = (time.monotonic(), client)
        return client

    def forget(self, cluster: ClusterRef) -> None:
        """Drop the cached client of a cluster that is going away (or being made anew)."""
        with self._lock:
            self._clients.pop(cluster.name, None)

    def _build(self, cluster: ClusterRef) -> k8s.ApiClient:
        return self.client_for(self.provider(cluster).kube_endpoint(cluster))

    def client_for(self, endpoint: KubeEndpoint) -> k8s.ApiClient:
        """A client for an API server endpoint as a cloud describes it."""
        if endpoint.kubeconfig is not None:
            return k8s_config.new_client_from_config_dict(endpoint.kubeconfig)
        if not endpoint.host:
            return k8s_config.new_client_from_config(context=endpoint.kubeconfig_context)
        configuration = k8s.Configuration()
        configuration.host = endpoint.host
        configuration.connection_pool_maxsize = 8
        configuration.retries = READ_RETRIES
        if endpoint.bearer_token:
            configuration.api_key = {"authorization": f"Bearer {endpoint.bearer_token}"}
        if endpoint.ca_data:
            configuration.ssl_ca_cert = str(self._ca_file(endpoint.ca_data))
        return k8s.ApiClient(configuration)

    def _ca_file(self, ca_data: str) -> Path:
        pem = base64.b64decode(ca_data)
        path = self.ca_dir / f"{hashlib.sha256(pem).hexdigest()[:32]}.crt"
        with self._lock:
            if not path.exists():
                partial = path.with_suffix(".part")
                partial.write_bytes(pem)
                partial.replace(path)  # whole or absent: another thread never reads half a certificate
        return path
