"""Amazon EKS through boto3: control plane and managed node group upgrades, node group
create/delete, update polling, and the bearer token the cluster's API accepts.

`endpoint_url` (REGATTA_SIM_URL in the embedded default) is the only thing that changes
between the simulator and a real AWS account; credentials come from the named AWS profile
in the cluster's `credential_ref`, resolved here at call time and never stored, or from an access
key a secrets store keeps when `credential_ref` names one (`aws-secretsmanager:NAME`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from datetime import UTC
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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
    LaunchTemplate,
    ManagedAddon,
    NodePool,
    NodeTaint,
    UpgradeInsight,
    VersionChange,
)
from regatta.models.errors import ErrorType
from regatta.models.fleet import InsightCategory
from regatta.models.readiness import NodePoolRoom, RoomPlace

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
# aws-iam-authenticator accepts a token for 15 minutes after its X-Amz-Date (the presign's own 60 s is
# ignored by STS); `aws eks get-token` tells clients to renew after 14. So does Regatta.
TOKEN_LIFETIME_SECONDS = 14 * 60
# A few quick tries inside botocore for throttling and 5xx; past that the activity's own
# Temporal retry policy takes over with its longer backoff. One client serves every activity
# thread of a worker (64): with botocore's default pool of 10 connections, the rest were opened,
# used once and dropped, a TLS handshake per request.
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30,
                      max_pool_connections=64)
# What EKS says a retry cannot fix (each error's documentation in botocore's service model).
_REFUSALS = {"InvalidParameterException", "InvalidRequestException", "UnsupportedAvailabilityZoneException",
             "AccessDeniedException", "NotFoundException", "ClientException", "ResourceLimitExceededException",
             "BadRequestException", "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId"}
# What CreateNodegroup takes that DescribeNodegroup reports, and a replacement copies as it is.
_COPIED = ("capacityType", "labels", "taints", "subnets", "nodeRole", "updateConfig", "tags", "nodeRepairConfig",
           "warmPoolConfig")


def _cloud_error(error: Exception, *, what: str, service: str = "EKS") -> CloudError:
    if service == "EC2":  # a read beside EKS's: throttling and EC2's own failures are retried, anything else refuses it
        if not isinstance(error, ClientError):
            return CloudError(f"could not reach EC2 during {what}: {error}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
        code = error.response.get("Error", {}).get("Code", "ClientError")
        message = error.response.get("Error", {}).get("Message", str(error))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
        retried = code in ("RequestLimitExceeded", "Throttling", "ThrottlingException") or status >= 500
        return CloudError(f"EC2 {code + ' during' if retried else 'refused'} {what}: {'' if retried else code + ': '}{message}",
                          error_type=code if retried else ErrorType.CLOUD_REFUSED, retryable=retried)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "ClientError")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code == "ResourceNotFoundException":
            return CloudError(f"{what}: {message}", error_type=ErrorType.NOT_FOUND, retryable=False)
        if code == "ResourceInUseException":
            return CloudError(f"EKS is busy with another change of the cluster during {what}: {message}",
                              error_type=ErrorType.OPERATION_IN_PROGRESS, retryable=False)
        if code == "InvalidStateException":
            return CloudError(f"EKS refused {what}: {message} Read them with `aws eks list-insights`; fix what they name,"
                              " or start again accepting them with a reason (accept_insights)",
                              error_type=ErrorType.UPGRADE_INSIGHTS_ERROR, retryable=False)
        if code in _REFUSALS:
            return CloudError(f"EKS refused {what}: {message}", error_type=ErrorType.CLOUD_REFUSED, retryable=False)
        return CloudError(f"EKS {code} during {what}: {message}", error_type=code, retryable=True)
    return CloudError(f"could not reach {service} during {what}: {error}", error_type=ErrorType.CLOUD_UNREACHABLE, retryable=True)


def group_surge(group: dict) -> int:
    """How many nodes the group's update adds before it removes any, by its own settings (NodegroupUpdateConfig):
    none under the MINIMAL strategy (it terminates first), else maxUnavailable, or its percentage of the group."""
    config = group.get("updateConfig") or {}
    if config.get("updateStrategy") == "MINIMAL":
        return 0
    if config.get("maxUnavailablePercentage"):
        return max(1, -(-int(config["maxUnavailablePercentage"]) * int(group["scalingConfig"]["desiredSize"]) // 100))
    return int(config.get("maxUnavailable") or 1)


STORED_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def _stored_keys(cluster: ClusterRef) -> dict[str, str]:
    """The access key a secrets store keeps for the cluster's account (credential_ref `aws-secretsmanager:NAME`, a
    JSON object with aws_access_key_id, aws_secret_access_key and, for temporary keys, aws_session_token), read in
    this process and kept REGATTA_SECRET_CACHE_SECONDS."""
    text, _ = stored_credential(cluster, "the AWS keys")
    keys: dict[str, str] = {}
    try:
        found = json.loads(text)
        if isinstance(found, dict):
            keys = {name: found[name] for name in STORED_KEYS if name in found}
    except ValueError:
        pass
    if not (all(isinstance(v, str) and v for v in keys.values()) and {"aws_access_key_id", "aws_secret_access_key"} <= set(keys)):
        # raised out here: its words are a credential, and stay out of the message and the exception's chain
        raise CloudError(f"{cluster.name}: the secret {cluster.credential_ref} does not hold an AWS access key: store"
                         ' {"aws_access_key_id": ..., "aws_secret_access_key": ...} (and aws_session_token for a'
                         " temporary one)", error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
    return keys


_SHARED: dict[tuple[str | None, str, str, str], object] = {}  # (endpoint, region, credential_ref, service) → client
_SHARED_STORED: dict[tuple[str | None, str, str, str], tuple[str, object]] = {}  # the same, by stored keys' digest
_SHARED_LOCK = threading.Lock()


class EksProvider:
    def __init__(self, *, endpoint_url: str | None = None, credential_site: str | None = None,
                 rate_limit: RateLimit = no_rate_limit):
        self.endpoint_url = endpoint_url
        self.rate_limit = rate_limit  # waits for this account's turn (regatta/clouds/rate_limits.py)
        self.credential_site = credential_site  # the site whose agent this process is (simulated credentials only)
        self._sessions: dict[tuple[str, str], boto3.session.Session] = {}
        self._clients: dict[tuple[str, str, str], object] = {}
        self._catalogues: dict[tuple[str, str, str], tuple[float, list[dict]]] = {}
        self._lock = threading.Lock()

    # boto3 sessions are not thread-safe to create from; clients are safe to share once made. A session and its
    # client cost about 80 ms of CPU (botocore reads its service model): they are made once per process for an
    # account, region and endpoint (_SHARED), whichever provider object asks (each worker a test builds makes its own).
    def _client(self, cluster: ClusterRef, service: str = "eks"):
        key = (cluster.region, cluster.credential_ref, service)
        shared = (self.endpoint_url, *key)
        if is_reference(cluster.credential_ref):  # named explicitly: used even beside the simulator
            stored_keys = _stored_keys(cluster)
            made_from = hashlib.sha256(json.dumps(stored_keys, sort_keys=True).encode()).hexdigest()
            with _SHARED_LOCK:  # one client per account and service, made again when its keys are rotated
                held = _SHARED_STORED.get(shared)
                if held is None or held[0] != made_from:
                    session = boto3.session.Session(**stored_keys, region_name=cluster.region)
                    client = session.client(service, endpoint_url=self.endpoint_url if service in ("eks", "ec2") else None,
                                            config=_BOTO_CONFIG)
                    _SHARED_STORED[shared] = held = (made_from, client)
                return held[1]
        with _SHARED_LOCK:
            if shared in _SHARED:
                return _SHARED[shared]
        with self._lock:
            if key not in self._clients:
                if self.endpoint_url:
                    session = boto3.session.Session(
                        aws_access_key_id="regatta-sim", aws_secret_access_key="regatta-sim", region_name=cluster.region
                    )
                else:
                    profile = None if cluster.credential_ref == "default" else cluster.credential_ref
                    session = boto3.session.Session(profile_name=profile, region_name=cluster.region)
                self._clients[key] = session.client(  # the simulator serves EC2's DescribeSubnets beside EKS, as moto does
                    service, endpoint_url=self.endpoint_url if service in ("eks", "ec2") else None, config=_BOTO_CONFIG
                )
            with _SHARED_LOCK:
                return _SHARED.setdefault(shared, self._clients[key])

    def _call(self, cluster: ClusterRef, what: str, method: str, **kwargs) -> dict:
        return self._call_service(cluster, "eks", what, method, kwargs)

    def _call_service(self, cluster: ClusterRef, service: str, what: str, method: str, kwargs: dict[str, Any]) -> dict:
        self.rate_limit(cluster)
        try:
            return getattr(self._client(cluster, service), method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _cloud_error(error, what=what, service=service.upper()) from error

    def _pages(self, cluster: ClusterRef, what: str, method: str, key: str, **kwargs) -> list:
        """Every item of a paged EKS list (nextToken until there is none)."""
        found: list[Any] = []
        token = None
        while True:
            page = self._call(cluster, what, method, **kwargs, **({"nextToken": token} if token else {}))
            found += page.get(key) or []
            token = page.get("nextToken")
            if not token:
                return found

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        found = self._call(cluster, f"describe cluster {cluster.name}", "describe_cluster", name=cluster.name)["cluster"]
        return ControlPlane(name=found["name"], version=found["version"], status=found["status"])

    def create_cluster(self, cluster: ClusterRef, *, version: str, labels: dict[str, str], request_token: str,
                       network: ClusterNetwork | None = None, first_pool: NodePool | None = None) -> CloudOperation:
        network = network or ClusterNetwork()
        if not network.cluster_role or len(network.subnets) < 2:
            raise CloudError(f"EKS creates cluster {cluster.name} only with an IAM role and at least two VPC subnets: give"
                             " network.cluster_role and network.subnets in the provision file",
                             error_type=ErrorType.INVALID_REQUEST, retryable=False)
        self._call(
            cluster, f"creation of cluster {cluster.name}", "create_cluster", name=cluster.name, version=version,
            roleArn=network.cluster_role, resourcesVpcConfig={"subnetIds": list(network.subnets)},
            **({"tags": labels} if labels else {}), clientRequestToken=request_token,
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

    def _describe_group(self, cluster: ClusterRef, name: str) -> dict:
        return self._call(cluster, f"describe node group {name}", "describe_nodegroup",
                          clusterName=cluster.name, nodegroupName=name)["nodegroup"]

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        names = self._pages(cluster, f"list node groups of {cluster.name}", "list_nodegroups", "nodegroups",
                            clusterName=cluster.name)
        pools = []
        for name in names:
            group = self._describe_group(cluster, name)
            if group["status"] == "DELETING":
                continue
            template = group.get("launchTemplate")
            pools.append(NodePool(
                name=name, version=group["version"], node_count=group["scalingConfig"]["desiredSize"],
                node_size=(group.get("instanceTypes") or ["launch template"])[0], labels=group.get("labels") or {},
                node_image=group.get("releaseVersion"), subnets=list(group.get("subnets") or []),
                node_role=group.get("nodeRole") or None,
                taints=[NodeTaint(key=t["key"], value=t.get("value", ""), effect=t.get("effect", "NO_SCHEDULE"))
                        for t in group.get("taints") or []],
                launch_template=LaunchTemplate(**{k: template.get(k) for k in ("name", "id", "version")}) if template else None,
                image_type=group.get("amiType"),
                surge=group_surge(group),
            ))
        return pools

    def surge_room(self, cluster: ClusterRef, pools: list[NodePool]) -> list[NodePoolRoom]:
        """Each node group's room for its update's new nodes, zone by zone, from EC2 DescribeSubnets of every group's
        subnets (by a subnet-id filter: a subnet EC2 no longer has is left out rather than failing the read). EKS
        launches the new nodes in the zones of the nodes they replace, up to two in each, and raises the group by
        the larger of that and its maxUnavailable: each zone of the group's subnets is asked to hold
        max(2, its share of maxUnavailable) new nodes (the stricter reading of "up to"). A new node takes its
        addresses in one subnet of its zone; what it takes (1 + its max pods under the VPC CNI) is read from the
        cluster's nodes by the caller."""
        subnets = sorted({subnet for pool in pools if pool.node_count for subnet in pool.subnets})
        found: dict[str, dict] = {}
        for start in range(0, len(subnets), 100):  # a filter's values, a hundred at a time
            asked = {"Filters": [{"Name": "subnet-id", "Values": subnets[start:start + 100]}]}
            seen: set[str] = set()
            while True:
                page = self._call_service(cluster, "ec2", f"subnets of {cluster.name}'s node groups", "describe_subnets", asked)
                found.update({subnet["SubnetId"]: subnet for subnet in page.get("Subnets") or []})
                token = page.get("NextToken")
                if not token or token in seen:
                    break
                seen.add(token)
                asked = {**asked, "NextToken": token}
        rooms = []
        for pool in pools:
            zones: dict[str, dict[str, int]] = {}
            for subnet in pool.subnets:
                if subnet in found:
                    zones.setdefault(found[subnet]["AvailabilityZone"], {})[subnet] = int(found[subnet].get("AvailableIpAddressCount", 0))
            if not zones or not pool.node_count:  # an empty group launches nothing
                continue
            each_zone = max(2, -(-pool.surge // len(zones))) if pool.surge else 0  # MINIMAL: none (a blue/green still some)
            rooms.append(NodePoolRoom(name=pool.name, node_count=pool.node_count, places=[
                RoomPlace(name=zone, free_addresses=free, surge_nodes=each_zone) for zone, free in sorted(zones.items())]))
        return rooms

    @staticmethod
    def _operation(cluster: ClusterRef, update: dict, *, kind: str, node_pool: str | None = None,
                   addon: str | None = None) -> CloudOperation:
        status = {"InProgress": "in_progress", "Successful": "succeeded"}.get(update["status"], "failed")
        errors = [f"{e.get('errorCode')}: {e.get('errorMessage')} {e.get('resourceIds') or ''}".strip() for e in update.get("errors") or []]
        return CloudOperation(id=update["id"], cluster=cluster.name, kind=kind, node_pool=node_pool, addon=addon,
                              status=status, errors=errors)

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str,
                                    force: bool = False) -> CloudOperation:
        update = self._call(cluster, f"upgrade of {cluster.name}'s control plane to {version}", "update_cluster_version",
                            name=cluster.name, version=version, clientRequestToken=request_token,
                            **({"force": True} if force else {}))["update"]
        return self._operation(cluster, update, kind="control_plane_upgrade")

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        """A managed node group's rolling update. On an AMI of its own (amiType CUSTOM) EKS takes no version or
        release version, only a new version of the group's own launch template (by the id or name it was created
        with); otherwise the version, and the AMI release version when one is asked for (the newest if not).
        EKS drains each node through the eviction API and fails the update (PodEvictionFailure) rather than
        break a budget, as long as `force` is not sent: Regatta never sends it."""
        template: dict[str, str] = {}
        custom = False
        if launch_template_version is not None:
            group = self._describe_group(cluster, node_pool)
            created_with = group.get("launchTemplate") or {}
            key = "id" if created_with.get("id") else "name"
            if not created_with:
                raise CloudError(f"node group {node_pool} was not made from a launch template, so it has no launch template"
                                 " version to move to: leave launch_template_versions out for it",
                                 error_type=ErrorType.CLOUD_RULE_VIOLATION, retryable=False)
            template = {key: created_with[key], "version": launch_template_version}
            custom = group.get("amiType") == "CUSTOM"
        versions = {} if custom else {"version": version, **({"releaseVersion": node_image} if node_image else {})}
        target = f"launch template version {launch_template_version}" if custom else node_image or version
        update = self._call(cluster, f"upgrade of node group {node_pool} to {target}", "update_nodegroup_version",
                            clusterName=cluster.name, nodegroupName=node_pool, clientRequestToken=request_token,
                            **versions, **({"launchTemplate": template} if template else {}))["update"]
        return self._operation(cluster, update, kind="node_pool_upgrade", node_pool=node_pool)

    def create_node_pool(self, cluster: ClusterRef, *, node_pool: NodePool, request_token: str, like: str | None = None,
                         launch_template_version: str | None = None) -> CloudOperation:
        """A node group in the pool's own subnets, with its node role, labels, taints and launch template; with
        `like`, everything DescribeNodegroup says of that group (AMI type, capacity type, sizes, disk, update
        settings, launch template by the id or name it used, tags) but for name, version and release version."""
        request = self._like(cluster, like, node_pool, launch_template_version) if like else self._fresh(node_pool)
        try:
            self._call(cluster, f"creation of node group {node_pool.name}", "create_nodegroup", clusterName=cluster.name,
                       nodegroupName=node_pool.name, clientRequestToken=request_token, **request)
        except CloudError as error:
            # ResourceInUseException also says "NodeGroup already exists with name ...": a create that a retry with
            # another token meets is the group itself, to wait for (until ACTIVE), not a busy cluster to wait out.
            if error.error_type != ErrorType.OPERATION_IN_PROGRESS or "already exists" not in str(error):
                raise
        return CloudOperation(id=f"create:{node_pool.name}", cluster=cluster.name, kind="node_pool_create", node_pool=node_pool.name)

    @staticmethod
    def _fresh(node_pool: NodePool) -> dict[str, Any]:
        if not node_pool.subnets or not node_pool.node_role:
            raise CloudError(f"EKS creates node group {node_pool.name} only in VPC subnets with a node IAM role, and it"
                             " has none: give the node pool subnets and node_role (or the cluster's network) in the"
                             " provision file", error_type=ErrorType.INVALID_REQUEST, retryable=False)
        template = node_pool.launch_template
        return {
            "version": node_pool.version,
            "scalingConfig": {"minSize": 0, "maxSize": max(2 * node_pool.node_count, 1), "desiredSize": node_pool.node_count},
            "subnets": list(node_pool.subnets), "nodeRole": node_pool.node_role,
            **({"labels": node_pool.labels} if node_pool.labels else {}),
            **({"taints": [taint.model_dump() for taint in node_pool.taints]} if node_pool.taints else {}),
            # A launch template may name the instance type itself; EKS refuses both at once.
            **({"launchTemplate": template.model_dump(exclude_none=True)} if template else {"instanceTypes": [node_pool.node_size]}),
            **({"releaseVersion": node_pool.node_image} if node_pool.node_image else {}),
        }

    def _like(self, cluster: ClusterRef, like: str, node_pool: NodePool, launch_template_version: str | None) -> dict[str, Any]:
        old = self._describe_group(cluster, like)
        custom = old.get("amiType") == "CUSTOM"
        template = old.get("launchTemplate")
        if custom and launch_template_version is None:
            raise CloudError(f"node group {like} runs an AMI of its own launch template: its replacement needs the"
                             " template version that holds the AMI for the target (launch_template_versions)",
                             error_type=ErrorType.CLOUD_RULE_VIOLATION, retryable=False)
        request: dict[str, Any] = {key: old[key] for key in _COPIED if old.get(key)}
        scaling = old["scalingConfig"]
        request["scalingConfig"] = {"minSize": scaling["minSize"], "maxSize": scaling["maxSize"],
                                    "desiredSize": scaling["desiredSize"]}
        if template:
            # "You must specify either the launch template ID or the launch template name in the request, but not both."
            key = "id" if template.get("id") else "name"
            request["launchTemplate"] = {key: template[key], "version": launch_template_version or template["version"]}
            if old.get("instanceTypes"):  # instance types given beside a template that names none
                request["instanceTypes"] = old["instanceTypes"]
        else:
            for key in ("instanceTypes", "diskSize", "remoteAccess"):
                if old.get(key):
                    request[key] = old[key]
        if not custom:
            request["amiType"] = old["amiType"]
            request["version"] = node_pool.version
            if node_pool.node_image:
                request["releaseVersion"] = node_pool.node_image
        return request

    def delete_node_pool(self, cluster: ClusterRef, *, node_pool: str, request_token: str) -> CloudOperation:
        operation = CloudOperation(id=f"delete:{node_pool}", cluster=cluster.name, kind="node_pool_delete", node_pool=node_pool)
        try:
            self._call(cluster, f"deletion of node group {node_pool}", "delete_nodegroup", clusterName=cluster.name, nodegroupName=node_pool)
        except CloudError as error:
            if error.error_type != ErrorType.NOT_FOUND:
                raise
            return operation.model_copy(update={"status": "succeeded"})  # already gone: a retry after success
        return operation

    def upgrade_insights(self, cluster: ClusterRef, *, category: InsightCategory = "UPGRADE_READINESS") -> list[UpgradeInsight]:
        """EKS insights of one category (UPGRADE_READINESS, or ROLLBACK_READINESS for a version rollback); the ones
        that are not PASSING are described whole, for their recommendation and the objects they concern."""
        summaries = self._pages(cluster, f"{category.lower()} insights of {cluster.name}", "list_insights", "insights",
                                clusterName=cluster.name, filter={"categories": [category]})
        found = []
        for summary in summaries:
            status = summary.get("insightStatus") or {}
            insight = summary
            if status.get("status") != "PASSING":
                insight = self._call(cluster, f"upgrade insight {summary['id']}", "describe_insight",
                                     clusterName=cluster.name, id=summary["id"])["insight"]
            found.append(UpgradeInsight(
                name=insight["name"], status=status.get("status", "UNKNOWN"), kubernetes_version=insight.get("kubernetesVersion", ""),
                description=insight.get("description", ""), reason=status.get("reason", ""),
                recommendation=insight.get("recommendation", ""),
                resources=[r.get("kubernetesResourceUri") or r.get("arn") or "" for r in insight.get("resources") or []]))
        return found

    def last_version_change(self, cluster: ClusterRef) -> VersionChange | None:
        """The newest successful VersionUpdate or VersionRollback of the control plane (ListUpdates, then
        DescribeUpdate of each: the list says only ids): what a version rollback is judged against."""
        ids = self._pages(cluster, f"updates of {cluster.name}", "list_updates", "updateIds", name=cluster.name)
        found: VersionChange | None = None
        for update_id in ids:  # EKS does not say in which order it lists them: each is read
            update = self._call(cluster, f"update {update_id}", "describe_update", name=cluster.name,
                                updateId=update_id)["update"]
            kind = {"VersionUpdate": "upgrade", "VersionRollback": "rollback"}.get(update.get("type", ""))
            version = next((p["value"] for p in update.get("params") or [] if p.get("type") == "Version"), None)
            if kind is None or version is None or update.get("status") != "Successful":
                continue
            started = update["createdAt"].astimezone(UTC)  # botocore gives the local time zone
            if found is None or started > found.started_at:
                found = VersionChange(kind=kind, version=version, started_at=started)
        return found

    def _addon_catalogue(self, cluster: ClusterRef, version: str) -> list[dict]:
        """DescribeAddonVersions for a Kubernetes version, every add-on in one paged read, kept for ten minutes per
        account and region: the catalogue is the same for every cluster a wave moves to that version."""
        key = (cluster.region, cluster.credential_ref, version)
        with self._lock:
            kept = self._catalogues.get(key)
        if kept is not None and time.monotonic() - kept[0] < 600:
            return kept[1]
        found = self._pages(cluster, f"add-on versions for Kubernetes {version}", "describe_addon_versions", "addons",
                            kubernetesVersion=version)
        with self._lock:
            self._catalogues[key] = (time.monotonic(), found)
        return found

    def managed_addons(self, cluster: ClusterRef, *, version: str) -> list[ManagedAddon]:
        """The cluster's EKS add-ons, each with the default version DescribeAddonVersions gives for `version`:
        EKS never moves them by itself after a control plane upgrade."""
        catalogue = {info["addonName"]: [v for v in info.get("addonVersions") or []]
                     for info in self._addon_catalogue(cluster, version)}
        found = []
        for name in self._pages(cluster, f"add-ons of {cluster.name}", "list_addons", "addons", clusterName=cluster.name):
            running = self._call(cluster, f"describe add-on {name}", "describe_addon", clusterName=cluster.name,
                                 addonName=name)["addon"]["addonVersion"]
            versions = catalogue.get(name, [])
            default = next((v["addonVersion"] for v in versions if any(
                c.get("clusterVersion") == version and c.get("defaultVersion") for c in v.get("compatibilities") or [])), None)
            found.append(ManagedAddon(name=name, version=running, default_version=default,
                                      compatible=any(v["addonVersion"] == running for v in versions)))
        return found

    def start_addon_update(self, cluster: ClusterRef, *, addon: str, version: str, request_token: str) -> CloudOperation:
        # PRESERVE: a field someone set by hand (a VPC CNI environment variable, a CoreDNS replica count) keeps its
        # value across the update; OVERWRITE would put it back to the new version's default without a word, and
        # NONE fails the update on such a field. Rolling back is the add-on's earlier version, under the same rule.
        update = self._call(cluster, f"update of add-on {addon} to {version}", "update_addon", clusterName=cluster.name,
                            addonName=addon, addonVersion=version, resolveConflicts="PRESERVE",
                            clientRequestToken=request_token)["update"]
        return self._operation(cluster, update, kind="addon_update", addon=addon)

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.kind in ("control_plane_upgrade", "node_pool_upgrade", "addon_update"):
            kwargs = {"nodegroupName": operation.node_pool} if operation.node_pool else {}
            kwargs.update({"addonName": operation.addon} if operation.addon else {})
            update = self._call(cluster, f"status of update {operation.id}", "describe_update",
                                name=cluster.name, updateId=operation.id, **kwargs)["update"]
            return self._operation(cluster, update, kind=operation.kind, node_pool=operation.node_pool, addon=operation.addon)
        if operation.kind in ("cluster_create", "cluster_delete"):
            return self._poll_cluster(cluster, operation)
        try:
            group = self._describe_group(cluster, operation.node_pool or "")
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
        if self.endpoint_url:
            simulated = simulator_endpoint(self.endpoint_url, cluster, site=self.credential_site)
            return KubeEndpoint(host=found["endpoint"], bearer_token=simulated.bearer_token, expires_at=simulated.expires_at,
                                ca_data=(found.get("certificateAuthority") or {}).get("data") or None)
        return KubeEndpoint(host=found["endpoint"], bearer_token=self.bearer_token(cluster),
                            ca_data=(found.get("certificateAuthority") or {}).get("data") or None,
                            expires_at=time.time() + TOKEN_LIFETIME_SECONDS)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        """What `aws eks update-kubeconfig` writes: the endpoint and CA from DescribeCluster, and
        `aws eks get-token` as the exec plugin (with the cluster's profile)."""
        if self.endpoint_url:
            return simulator_kubeconfig(self.endpoint_url, cluster, site=self.credential_site)
        found = self._call(cluster, f"describe cluster {cluster.name}", "describe_cluster", name=cluster.name)["cluster"]
        # a person's kubeconfig runs their own AWS credentials: a stored key pair is Regatta's, never handed out
        profile = None if cluster.credential_ref == "default" or is_reference(cluster.credential_ref) else cluster.credential_ref
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
