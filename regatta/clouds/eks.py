"""Amazon EKS through boto3: control plane and managed node group upgrades, node group
create/delete, update polling, and the bearer token the cluster's API accepts.

`endpoint_url` (REGATTA_SIM_URL in the embedded default) is the only thing that changes
between the simulator and a real AWS account; credentials come from the named AWS profile
in the cluster's `credential_ref`, resolved here at call time and never stored.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from regatta.clouds.base import CloudError, ControlPlane, KubeEndpoint, simulator_kubeconfig, simulator_token
from regatta.clouds.rate_limits import RateLimit, no_rate_limit
from regatta.formats import kubeconfig
from regatta.models import CloudOperation, ClusterNetwork, ClusterRef, LaunchTemplate, NodePool, NodeTaint
from regatta.models.errors import ErrorType

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
# A few quick tries inside botocore for throttling and 5xx; past that the activity's own
# Temporal retry policy takes over with its longer backoff. One client serves every activity
# thread of a worker (64): with botocore's default pool of 10 connections, the rest were opened,
# used once and dropped, a TLS handshake per request.
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30,
                      max_pool_connections=64)
_REFUSALS = {"InvalidParameterException", "InvalidRequestException", "UnsupportedAvailabilityZoneException",
             "AccessDeniedException", "NotFoundException"}


def _cloud_error(error: Exception, *, what: str) -> CloudError:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "ClientError")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code == "ResourceNotFoundException":
            return CloudError(f"{what}: {message}", error_type=ErrorType.NOT_FOUND, retryable=False)
        if code in _REFUSALS:
            return CloudError(f"EKS refused {what}: {message}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
        return CloudError(f"EKS {code} during {what}: {message}", error_type=code, retryable=True)
    return CloudError(f"could not reach EKS during {what}: {error}", error_type=ErrorType.CLOUD_UNREACHABLE, retryable=True)


class EksProvider:
    def __init__(self, *, endpoint_url: str | None = None, credential_site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        self.endpoint_url = endpoint_url
        self.rate_limit = rate_limit  # waits for this account's turn (regatta/clouds/rate_limits.py)
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._sessions: dict[tuple[str, str], boto3.session.Session] = {}
        self._clients: dict[tuple[str, str, str], object] = {}
        self._lock = threading.Lock()

    # boto3 sessions are not thread-safe to create from; clients are safe to share once made.
    def _client(self, cluster: ClusterRef, service: str = "eks"):
        key = (cluster.region, cluster.credential_ref, service)
        with self._lock:
            if key not in self._clients:
                if self.endpoint_url:
                    session = boto3.session.Session(
                        aws_access_key_id="regatta-sim", aws_secret_access_key="regatta-sim", region_name=cluster.region
                    )
                else:
                    profile = None if cluster.credential_ref == "default" else cluster.credential_ref
                    session = boto3.session.Session(profile_name=profile, region_name=cluster.region)
                self._clients[key] = session.client(
                    service, endpoint_url=self.endpoint_url if service == "eks" else None, config=_BOTO_CONFIG
                )
            return self._clients[key]

    def _call(self, cluster: ClusterRef, what: str, method: str, **kwargs) -> dict:
        self.rate_limit(cluster)
        try:
            return getattr(self._client(cluster), method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _cloud_error(error, what=what) from error

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        found = self._call(cluster, f"describe cluster {cluster.name}", "describe_cluster", name=cluster.name)["cluster"]
        return ControlPlane(name=found["name"], version=found["version"], status=found["status"])

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None) -> CloudOperation:
        network = network or ClusterNetwork()
        if not network.cluster_role or not network.subnets:
            raise CloudError(f"EKS creates cluster {cluster.name} only with an IAM role and VPC subnets: give network.cluster_role"
                             " and network.subnets in the provision file", error_type=ErrorType.INVALID_REQUEST,
                             retryable=False)
        self._call(
            cluster, f"creation of cluster {cluster.name}", "create_cluster", name=cluster.name, version=version,
            roleArn=network.cluster_role, resourcesVpcConfig={"subnetIds": list(network.subnets)},
            tags=labels, clientRequestToken=request_token,
        )
        return CloudOperation(id=f"create:{cluster.name}", cluster=cluster.name, kind="cluster_create")

    def delete_cluster(self, cluster: ClusterRef, *, request_token: str) -> CloudOperation:
        operation = CloudOperation(id=f"delete:{cluster.name}", cluster=cluster.name, kind="cluster_delete")
        try:
            self._call(cluster, f"deletion of cluster {cluster.name}", "delete_cluster", name=cluster.name)
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
            return operation.model_copy(update={"status": "succeeded"})  # already gone
        return operation

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        names = self._call(cluster, f"list node groups of {cluster.name}", "list_nodegroups", clusterName=cluster.name)["nodegroups"]
        pools = []
        for name in names:
            group = self._call(cluster, f"describe node group {name}", "describe_nodegroup",
                               clusterName=cluster.name, nodegroupName=name)["nodegroup"]
            if group["status"] == "DELETING":
                continue
            template = group.get("launchTemplate")
            pools.append(NodePool(
                name=name, version=group["version"], node_count=group["scalingConfig"]["desiredSize"],
                node_size=(group.get("instanceTypes") or ["unknown"])[0], labels=group.get("labels") or {},
                node_image=group.get("releaseVersion"), subnets=list(group.get("subnets") or []),
                node_role=group.get("nodeRole") or None,
                taints=[NodeTaint(key=t["key"], value=t.get("value", ""), effect=t.get("effect", "NO_SCHEDULE"))
                        for t in group.get("taints") or []],
                launch_template=LaunchTemplate(**{k: template.get(k) for k in ("name", "id", "version")}) if template else None,
            ))
        return pools

    @staticmethod
    def _operation(cluster: ClusterRef, update: dict, *, kind: str, node_pool: str | None = None) -> CloudOperation:
        status = {"InProgress": "in_progress", "Successful": "succeeded"}.get(update["status"], "failed")
        errors = [f"{e.get('errorCode')}: {e.get('errorMessage')} {e.get('resourceIds') or ''}".strip() for e in update.get("errors") or []]
        return CloudOperation(id=update["id"], cluster=cluster.name, kind=kind, node_pool=node_pool, status=status, errors=errors)

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str) -> CloudOperation:
        update = self._call(cluster, f"upgrade of {cluster.name}'s control plane to {version}", "update_cluster_version",
                            name=cluster.name, version=version, clientRequestToken=request_token)["update"]
        return self._operation(cluster, update, kind="control_plane_upgrade")

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None) -> CloudOperation:
        # EKS names a node image by its AMI release version; without one it takes the newest for the version.
        image = {"releaseVersion": node_image} if node_image else {}
        update = self._call(cluster, f"upgrade of node group {node_pool} to {node_image or version}", "update_nodegroup_version",
                            clusterName=cluster.name, nodegroupName=node_pool, version=version,
                            clientRequestToken=request_token, force=False, **image)["update"]
        return self._operation(cluster, update, kind="node_pool_upgrade", node_pool=node_pool)

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str) -> CloudOperation:
        """A node group in the pool's own subnets, with its node role, labels, taints and launch
        template: a blue/green replacement copies them from the pool it replaces."""
        if not node_pool.subnets or not node_pool.node_role:
            raise CloudError(f"EKS creates node group {node_pool.name} only in VPC subnets with a node IAM role, and it"
                             " has none: give the node pool subnets and node_role (or the cluster's network) in the"
                             " provision file", error_type=ErrorType.INVALID_REQUEST, retryable=False)
        template = node_pool.launch_template
        self._call(
            cluster, f"creation of node group {node_pool.name}", "create_nodegroup",
            clusterName=cluster.name, nodegroupName=node_pool.name, version=node_pool.version,
            scalingConfig={"minSize": 0, "maxSize": max(2 * node_pool.node_count, 1), "desiredSize": node_pool.node_count},
            labels=node_pool.labels, subnets=list(node_pool.subnets), nodeRole=node_pool.node_role,
            taints=[taint.model_dump() for taint in node_pool.taints],
            # A launch template may name the instance type itself; EKS refuses both at once.
            **({"launchTemplate": template.model_dump(exclude_none=True)} if template else
               {"instanceTypes": [node_pool.node_size]}),
            **({"releaseVersion": node_pool.node_image} if node_pool.node_image else {}),
            clientRequestToken=request_token,
        )
        return CloudOperation(id=f"create:{node_pool.name}", cluster=cluster.name, kind="node_pool_create", node_pool=node_pool.name)

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        operation = CloudOperation(id=f"delete:{node_pool}", cluster=cluster.name, kind="node_pool_delete", node_pool=node_pool)
        try:
            self._call(cluster, f"deletion of node group {node_pool}", "delete_nodegroup", clusterName=cluster.name, nodegroupName=node_pool)
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
            return operation.model_copy(update={"status": "succeeded"})  # already gone: a retry after success
        return operation

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.kind in ("control_plane_upgrade", "node_pool_upgrade"):
            kwargs = {"nodegroupName": operation.node_pool} if operation.node_pool else {}
            update = self._call(cluster, f"status of update {operation.id}", "describe_update",
                                name=cluster.name, updateId=operation.id, **kwargs)["update"]
            return self._operation(cluster, update, kind=operation.kind, node_pool=operation.node_pool)
        if operation.kind in ("cluster_create", "cluster_delete"):
            return self._poll_cluster(cluster, operation)
        try:
            group = self._call(cluster, f"status of node group {operation.node_pool}", "describe_nodegroup",
                               clusterName=cluster.name, nodegroupName=operation.node_pool)["nodegroup"]
        except CloudError as error:
            if error.error_type == ErrorType.NOT_FOUND and operation.kind == "node_pool_delete":
                return operation.model_copy(update={"status": "succeeded"})
            raise
        status, errors = "in_progress", []
        if operation.kind == "node_pool_create" and group["status"] == "ACTIVE":
            status = "succeeded"
        elif group["status"] in ("CREATE_FAILED", "DELETE_FAILED", "DEGRADED"):
            status = "failed"
            errors = [f"{i.get('code')}: {i.get('message')} {i.get('resourceIds') or ''}".strip() for i in group["health"]["issues"]]
        return operation.model_copy(update={"status": status, "errors": errors})

    def _poll_cluster(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        try:
            status = self.describe_control_plane(cluster).status
        except CloudError as error:
            if error.error_type == ErrorType.NOT_FOUND and operation.kind == "cluster_delete":
                return operation.model_copy(update={"status": "succeeded"})
            raise
        if operation.kind == "cluster_create" and status == "ACTIVE":
            return operation.model_copy(update={"status": "succeeded"})
        if status == "FAILED":
            return operation.model_copy(update={"status": "failed", "errors": [f"cluster {cluster.name} is FAILED"]})
        return operation

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        found = self._call(cluster, f"describe cluster {cluster.name}", "describe_cluster", name=cluster.name)["cluster"]
        token = simulator_token(self.endpoint_url, cluster, site=self.credential_site) if self.endpoint_url else self.bearer_token(cluster)
        return KubeEndpoint(host=found["endpoint"], bearer_token=token, ca_data=(found.get("certificateAuthority") or {}).get("data") or None)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """What `aws eks update-kubeconfig` writes: the endpoint and CA from DescribeCluster, and
        `aws eks get-token` as the exec plugin (with the cluster's profile)."""
        if self.endpoint_url:
            return simulator_kubeconfig(self.endpoint_url, cluster, site=self.credential_site)
        found = self._call(cluster, f"describe cluster {cluster.name}", "describe_cluster", name=cluster.name)["cluster"]
        profile = None if cluster.credential_ref == "default" else cluster.credential_ref
        return kubeconfig.kubeconfig(name=cluster.name, server=found["endpoint"],
                                     ca_data=(found.get("certificateAuthority") or {}).get("data") or None,
                                     user=kubeconfig.eks_user(cluster=cluster.name, region=cluster.region, profile=profile))

    def bearer_token(self, cluster: ClusterRef) -> str:
        """The token `aws eks get-token` prints: a presigned STS GetCallerIdentity URL naming the cluster."""
        sts = self._client(cluster, "sts")

        def keep_cluster_id(params, context, **_):
            if K8S_AWS_ID_HEADER in params:
                context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

        def add_cluster_header(request, **_):
            if K8S_AWS_ID_HEADER in request.context:
                request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

        sts.meta.events.register_first("provide-client-params.sts.GetCallerIdentity", keep_cluster_id, unique_id="regatta-k8s-id")
        sts.meta.events.register_first("before-sign.sts.GetCallerIdentity", add_cluster_header, unique_id="regatta-k8s-header")
        url = sts.generate_presigned_url(
            "get_caller_identity", Params={K8S_AWS_ID_HEADER: cluster.name}, ExpiresIn=60, HttpMethod="GET"
        )
        return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
