"""Clusters Regatta reaches only through a kubeconfig: it can read them, cordon, drain and
check their health, but it does not own their control plane or node pools, so every cloud
operation is refused with a message that says so.

In the embedded default the kubeconfig is implied: the cluster's API is the simulator's
`/k8s/<cluster>`. Otherwise `credential_ref` names the kubeconfig context to use, or a secrets store's
secret that holds the kubeconfig (`aws-secretsmanager:NAME[#KEY]`, regatta/clouds/secret_stores.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from kubernetes import client as k8s

from regatta.clouds.base import (
    CloudError,
    ControlPlane,
    KubeEndpoint,
    simulator_endpoint,
    simulator_kubeconfig,
    stored_credential,
)
from regatta.clouds.secret_stores import is_reference
from regatta.formats import kubeconfig
from regatta.models import CloudOperation, ClusterNetwork, ClusterRef, ManagedAddon, NodePool, UpgradeInsight, VersionChange
from regatta.models.errors import ErrorType
from regatta.models.fleet import InsightCategory
from regatta.models.readiness import NodePoolRoom


def stored_kubeconfig(cluster: ClusterRef) -> dict[str, Any]:
    """The kubeconfig a secrets store keeps for the cluster (credential_ref `aws-secretsmanager:NAME[#KEY]`: its
    current context, with its cluster and user), read in this process and kept REGATTA_SECRET_CACHE_SECONDS: a
    rotated kubeconfig is used once the kept copy is older (regatta/kube/connect.py rebuilds the client when it
    changes). A retryable CloudError while the store cannot be reached; a final one for what will not read."""
    import yaml

    text, _ = stored_credential(cluster, "the kubeconfig")
    found: dict[str, Any] | None = None
    problem = ""
    try:
        config = yaml.safe_load(text) if len(text) <= MAX_KUBECONFIG_BYTES else None
        found = kubeconfig.context_of(config, context=None) if isinstance(config, dict) else None
    except (yaml.YAMLError, ValueError, KeyError, TypeError) as error:
        problem = type(error).__name__
    if found is None:  # raised out here: what it says is a credential, and stays out of the exception's chain too
        raise CloudError(f"{cluster.name}: the secret {cluster.credential_ref} does not hold a kubeconfig with a current"
                         f" context ({problem or 'not a YAML mapping'}); store the file `kubectl config view --minify"
                         " --raw` writes", error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
    unsafe = kubeconfig.unsafe_fields(found)
    if unsafe:
        raise CloudError(f"{cluster.name}: the kubeconfig in {cluster.credential_ref} uses {', '.join(unsafe)}: a stored"
                         " kubeconfig may hold only a server, its CA data and a token or client certificate data (no"
                         " command to run, no file to read, no proxy)", error_type=ErrorType.INVALID_CREDENTIAL_REF,
                         retryable=False)
    return found


MAX_KUBECONFIG_BYTES = 1024 * 1024

# The labels each distribution puts on a node to say which pool it belongs to.
POOL_LABELS = ("regatta.dev/node-pool", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-nodepool",
               "kubernetes.azure.com/agentpool", "node-pool")


class OwnHardwareProvider:
    """What every provider on your own hardware shares: what a cloud reports and no one reports here (upgrades a
    cloud recorded, its insights, the room its network leaves a surge, managed add-ons), and the changes Regatta does
    not make here (clusters, pools and add-ons are the tooling's that made them), each refused in the provider's words
    (`_refuse`, and how it names a cluster and a pool)."""

    CLUSTER_WORD = "clusters"  # "create clusters", or "create it"
    POOL_WORD = "node pool"
    NEW_POOL_NOTE = ""

    def _refuse(self, cluster: ClusterRef, what: str) -> CloudError:
        raise NotImplementedError

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None, first_pool: NodePool | None = None) -> CloudOperation:
        raise self._refuse(cluster, f"create {self.CLUSTER_WORD}")

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation:
        raise self._refuse(cluster, f"delete {self.CLUSTER_WORD}")

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str, like: str | None = None,
                         launch_template_version: str | None = None) -> CloudOperation:
        raise self._refuse(cluster, f"create {self.POOL_WORD} {node_pool.name}{self.NEW_POOL_NOTE}")

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        raise self._refuse(cluster, f"delete {self.POOL_WORD} {node_pool}")

    def start_addon_update(self, cluster: ClusterRef, *, addon: str, version: str, request_token: str) -> CloudOperation:
        raise self._refuse(cluster, f"update add-on {addon}")

    def last_version_change(self, cluster: ClusterRef) -> VersionChange | None:
        return None  # clusters on your own hardware: no cloud records their upgrades

    def upgrade_insights(self, cluster: ClusterRef, *, category: InsightCategory = "UPGRADE_READINESS") -> list[UpgradeInsight]:
        return []

    def surge_room(self, cluster: ClusterRef, pools: list[NodePool]) -> list[NodePoolRoom]:
        return []  # your own hardware's ceiling is its own: no cloud raises or reports it

    def managed_addons(self, cluster: ClusterRef, *, version: str) -> list[ManagedAddon]:
        return []


class KubeconfigProvider(OwnHardwareProvider):
    CLUSTER_WORD = "it"

    def __init__(self, *, sim_url: str | None = None, api_clients=None, credential_site: str | None = None):
        self.sim_url = sim_url
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._api_clients = api_clients  # set by regatta.kube.connect: how to build a client from an endpoint

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        if is_reference(cluster.credential_ref):  # named explicitly: used even beside the simulator
            return KubeEndpoint(host="", kubeconfig=stored_kubeconfig(cluster))
        if self.sim_url:
            return simulator_endpoint(self.sim_url, cluster, site=self.credential_site)
        return KubeEndpoint(host="", kubeconfig_context=None if cluster.credential_ref == "default" else cluster.credential_ref)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """The cluster's own context (its credential_ref, or the current one) from the kubeconfig
        this process reads (KUBECONFIG or ~/.kube/config), with its cluster and user; or the kubeconfig a
        secrets store holds, where credential_ref names one."""
        if is_reference(cluster.credential_ref):
            return stored_kubeconfig(cluster)
        if self.sim_url:
            return simulator_kubeconfig(self.sim_url, cluster, site=self.credential_site)
        import os
        from pathlib import Path

        import yaml

        path = Path(os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config")
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except OSError as error:
            raise CloudError(f"cannot read the kubeconfig {path} for {cluster.name}: {error}",
                             error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False) from None
        try:
            return kubeconfig.context_of(config, context=None if cluster.credential_ref == "default" else cluster.credential_ref)
        except KeyError as missing:
            raise CloudError(f"{cluster.name}: {missing.args[0]} in {path}", error_type=ErrorType.INVALID_CREDENTIAL_REF,
                             retryable=False) from None

    def _refuse(self, cluster: ClusterRef, what: str) -> CloudError:
        return CloudError(
            f"cluster {cluster.name} is reached by kubeconfig only; Regatta does not own its control plane or node"
            f" pools and cannot {what}. Do that with the tooling that created the cluster; Regatta can still cordon,"
            " drain and health-check it",
            error_type=ErrorType.NOT_MANAGED, retryable=False,
        )

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        info = k8s.VersionApi(self._api_clients(cluster)).get_code()
        minor = "".join(ch for ch in info.minor if ch.isdigit())
        return ControlPlane(name=cluster.name, version=f"{info.major}.{minor}", status="ACTIVE")

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        nodes = k8s.CoreV1Api(self._api_clients(cluster)).list_node().items
        grouped: dict[str, list] = defaultdict(list)
        for node in nodes:
            labels = node.metadata.labels or {}
            pool = next((labels[key] for key in POOL_LABELS if key in labels), "default")
            grouped[pool].append(node)
        pools = []
        for name, members in sorted(grouped.items()):
            versions = Counter(".".join(n.status.node_info.kubelet_version.lstrip("v").split(".")[:2]) for n in members)
            sizes = Counter((n.metadata.labels or {}).get("node.kubernetes.io/instance-type", "unknown") for n in members)
            pools.append(NodePool(name=name, version=min(versions), node_count=len(members), node_size=sizes.most_common(1)[0][0]))
        return pools

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str,
                                    force: bool = False) -> CloudOperation:
        raise self._refuse(cluster, f"upgrade its control plane to {version}")

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        raise self._refuse(cluster, f"upgrade node pool {node_pool}")

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        raise self._refuse(cluster, "track cloud operations")
