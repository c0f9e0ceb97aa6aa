"""Cloud adapters behind one protocol (`base.CloudProvider`): EKS on boto3, GKE on
google-cloud-container, AKS on azure-mgmt-containerservice, kubeconfig-only clusters, and on your own hardware
Cluster API (capi) and the system-upgrade-controller of k3s and RKE2 (suc). `Providers` hands out one adapter per kind, built once per process, so clients and
their connection pools are shared by every activity thread.
"""

from __future__ import annotations

import threading

from regatta.clouds.base import CloudError, CloudProvider, ControlPlane, KubeEndpoint
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.models import ClusterRef
from regatta.models.errors import ErrorType

__all__ = ["CloudError", "CloudProvider", "ControlPlane", "KubeEndpoint", "Providers"]


class Providers:
    def __init__(self, *, sim_url: str | None, api_clients, site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        self.sim_url = sim_url
        self.rate_limit = rate_limit
        self.site = site  # the site agent this process is, if it is one: the simulator hands it that site's credentials
        self._api_clients = api_clients
        self._built: dict[str, CloudProvider] = {}
        self._lock = threading.Lock()

    def for_cluster(self, cluster: ClusterRef) -> CloudProvider:
        with self._lock:
            if cluster.provider not in self._built:
                self._built[cluster.provider] = self._build(cluster.provider)
            return self._built[cluster.provider]

    def _build(self, kind: str) -> CloudProvider:
        if kind == "eks":
            from regatta.clouds.eks import EksProvider

            return EksProvider(endpoint_url=self.sim_url, credential_site=self.site, rate_limit=self.rate_limit)
        if kind == "gke":
            from regatta.clouds.gke import GkeProvider

            return GkeProvider(endpoint_url=self.sim_url, credential_site=self.site, rate_limit=self.rate_limit)
        if kind == "aks":
            from regatta.clouds.aks import AksProvider

            return AksProvider(endpoint_url=self.sim_url, credential_site=self.site, rate_limit=self.rate_limit)
        if kind == "kubeconfig":
            from regatta.clouds.kubeconfig import KubeconfigProvider

            return KubeconfigProvider(sim_url=self.sim_url, api_clients=self._api_clients, credential_site=self.site)
        if kind == "capi":
            from regatta.clouds.cluster_api import ClusterApiProvider

            return ClusterApiProvider(sim_url=self.sim_url, api_clients=self._api_clients, credential_site=self.site)
        if kind == "suc":
            from regatta.clouds.system_upgrade import SystemUpgradeProvider

            return SystemUpgradeProvider(sim_url=self.sim_url, api_clients=self._api_clients, credential_site=self.site)
        raise CloudError(
            f"provider {kind!r} has no adapter; use eks, gke, aks, kubeconfig, capi or suc",
            error_type=ErrorType.UNSUPPORTED_PROVIDER, retryable=False,
        )
