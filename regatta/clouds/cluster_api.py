"""Workload clusters Cluster API manages (provider `capi`): the control plane is its KubeadmControlPlane, each node
pool a MachineDeployment, both on the management cluster the cluster's `management` names (its kubeconfig context
or a secrets store's kubeconfig, the namespace and the Cluster object's name). The workload cluster's own API is
reached as a kubeconfig cluster's is (its credential_ref).

An upgrade raises `version` (the exact release, `v1.31.4`: Cluster API has no catalogue of its own to pick a patch
from, so the upgrade names it in `node_images.capi`) and, for a MachineDeployment, moves its infrastructure template
when one is named (`node_images.capi: v1.31.4/ubuntu-2404-v1.31.4`). Cluster API drains each Machine it deletes
through the eviction API; Regatta clears `nodeDrainTimeout` on what it rolls (past a set timeout Cluster API deletes
the Machine with its pods still on it, whatever their budgets say) and itself reports a drain that a budget has held
longer than the upgrade's drain timeout, naming the pods, and pauses that MachineDeployment
(`cluster.x-k8s.io/paused`), as a cloud fails its node pool upgrade. Pause and abort put the same annotation on the
object rolling; resume takes it off (docs/cloud-conformance.md C1–C9).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.clouds.base import CloudError, ControlPlane, KubeEndpoint
from regatta.clouds.kubeconfig import KubeconfigProvider, OwnHardwareProvider
from regatta.models import CloudOperation, ClusterRef, NodePool
from regatta.models.errors import ErrorType
from regatta.rules import own_hardware

CORE = ("cluster.x-k8s.io", "v1beta1")
CONTROL_PLANE = ("controlplane.cluster.x-k8s.io", "v1beta1")
PAUSED = "cluster.x-k8s.io/paused"
STOPPING = "regatta.dev/stopping"  # an abort's mark: the rollout is held and the step ends once nothing is in flight
PAUSED_BY = "regatta.dev/paused-by"  # set beside Cluster API's paused annotation when Regatta put it there
HELD = {PAUSED: "true", PAUSED_BY: "regatta"}
LET_GO = {PAUSED: None, PAUSED_BY: None, STOPPING: None}
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
MERGE = "application/merge-patch+json"


class ClusterApiProvider(OwnHardwareProvider):
    POOL_WORD = "MachineDeployment"
    NEW_POOL_NOTE = " (blue/green is for the clouds' node pools)"

    def __init__(self, *, sim_url: str | None = None, api_clients=None, credential_site: str | None = None):
        self.workload = KubeconfigProvider(sim_url=sim_url, api_clients=api_clients, credential_site=credential_site)
        self._api_clients = api_clients

    # ------------------------------------------------------------------ reaching Cluster API

    def _objects(self, cluster: ClusterRef) -> tuple[k8s.CustomObjectsApi, str]:
        management = cluster.management
        if management is None:
            raise CloudError(f"{cluster.name} is a capi cluster without a management cluster: register it with management:"
                             " {context, namespace, cluster}", error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False)
        reach = ClusterRef(name=management.context, provider="kubeconfig", region=cluster.region,
                           credential_ref=management.context, site=cluster.site)
        return k8s.CustomObjectsApi(self._api_clients(reach)), management.namespace

    def _call(self, cluster: ClusterRef, what: str, call, *args, **kwargs) -> Any:
        try:
            return call(*args, **kwargs)
        except ApiException as error:
            said = own_hardware.api_message(error.body) or str(error.reason)
            if error.status == 404:
                raise CloudError(f"{cluster.name}: {what}: not found on the management cluster ({said})",
                                 error_type=ErrorType.CLOUD_REFUSED, retryable=False) from None
            if error.status in (400, 403, 422):
                raise CloudError(f"{cluster.name}: Cluster API refused {what}: {said}", error_type=ErrorType.CLOUD_REFUSED,
                                 retryable=False) from None
            if error.status == 401:
                raise CloudError(f"{cluster.name}: the management cluster refused Regatta's credentials ({said})",
                                 error_type=ErrorType.INVALID_CREDENTIAL_REF, retryable=False) from None
            raise CloudError(f"{cluster.name}: {what}: {error.status} {said}", error_type=ErrorType.CLOUD_UNREACHABLE,
                             retryable=True) from None

    def _get(self, cluster: ClusterRef, group: tuple[str, str], plural: str, name: str) -> dict[str, Any]:
        api, namespace = self._objects(cluster)
        return self._call(cluster, f"read {plural}/{name}", api.get_namespaced_custom_object, *group, namespace, plural,
                          name)

    def _patch(self, cluster: ClusterRef, group: tuple[str, str], plural: str, name: str, patch: dict[str, Any]) -> dict:
        api, namespace = self._objects(cluster)
        return self._call(cluster, f"change {plural}/{name}", api.patch_namespaced_custom_object, *group, namespace,
                          plural, name, patch, _content_type=MERGE)

    def _cluster(self, cluster: ClusterRef) -> dict[str, Any]:
        assert cluster.management is not None
        found = self._get(cluster, CORE, "clusters", cluster.management.cluster)
        if (found.get("spec") or {}).get("topology"):
            raise CloudError(f"{cluster.name}: the Cluster {cluster.management.cluster} is managed by a ClusterClass topology:"
                             " its version is spec.topology.version, which Regatta does not raise yet; upgrade it with"
                             " that field, or register a cluster without a topology", error_type=ErrorType.NOT_MANAGED,
                             retryable=False)
        return found

    def _control_plane_name(self, cluster: ClusterRef) -> str:
        reference = (self._cluster(cluster).get("spec") or {}).get("controlPlaneRef") or {}
        if reference.get("kind") != "KubeadmControlPlane":
            raise CloudError(f"{cluster.name}: its control plane is a {reference.get('kind') or 'missing reference'}, not a"
                             " KubeadmControlPlane: Regatta upgrades kubeadm control planes only",
                             error_type=ErrorType.NOT_MANAGED, retryable=False)
        return str(reference["name"])

    def _machine_deployments(self, cluster: ClusterRef) -> list[dict[str, Any]]:
        assert cluster.management is not None
        api, namespace = self._objects(cluster)
        found = self._call(cluster, "list MachineDeployments", api.list_namespaced_custom_object, *CORE, namespace,
                           "machinedeployments", label_selector=f"{CLUSTER_NAME_LABEL}={cluster.management.cluster}")
        return [md for md in found.get("items", []) if (md.get("spec") or {}).get("clusterName") == cluster.management.cluster]

    def _machines(self, cluster: ClusterRef, selector: str) -> list[dict[str, Any]]:
        api, namespace = self._objects(cluster)
        return self._call(cluster, "list Machines", api.list_namespaced_custom_object, *CORE, namespace, "machines",
                          label_selector=selector).get("items", [])

    # ------------------------------------------------------------------ reads

    def kube_endpoint(self, cluster: ClusterRef) -> KubeEndpoint:
        return self.workload.kube_endpoint(cluster)

    def kubeconfig(self, cluster: ClusterRef) -> dict[str, Any]:
        return self.workload.kubeconfig(cluster)

    def describe_control_plane(self, cluster: ClusterRef) -> ControlPlane:
        kcp = self._get(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", self._control_plane_name(cluster))
        status = kcp.get("status") or {}
        version = status.get("version") or kcp["spec"]["version"]
        rolling = own_hardware.control_plane_rolling(kcp)
        return ControlPlane(name=cluster.name, version=own_hardware.minor_of(version), status="UPDATING" if rolling else "ACTIVE")

    def list_node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        """Each MachineDeployment, at the release its oldest Machine runs until all run its template's (a rollout
        held part way is a pool still to upgrade, as a cloud's pool is until its upgrade succeeds)."""
        pools = []
        deployments = self._machine_deployments(cluster)
        machines = self._machines(cluster, "cluster.x-k8s.io/deployment-name") if deployments else []
        for md in deployments:
            name, template = md["metadata"]["name"], md["spec"]["template"]["spec"]
            infrastructure = (template.get("infrastructureRef") or {}).get("name", "")
            runs = own_hardware.oldest_release(
                [m for m in machines if (m["metadata"].get("labels") or {}).get("cluster.x-k8s.io/deployment-name") == name],
                template["version"]) if not own_hardware.machine_deployment_done(md) else template["version"]
            pools.append(NodePool(name=name, version=own_hardware.minor_of(runs), node_count=int(md["spec"].get("replicas", 1)),
                                  node_size=infrastructure or "unknown", node_image=runs))
        return sorted(pools, key=lambda pool: pool.name)

    # ------------------------------------------------------------------ changes

    def start_control_plane_upgrade(self, cluster: ClusterRef, *, version: str, request_token: str, force: bool = False,
                                    node_image: str | None = None) -> CloudOperation:
        """KubeadmControlPlane `version` to the release named (its webhook refuses more than one minor at a time)."""
        name = self._control_plane_name(cluster)
        release, _ = own_hardware.capi_target(version, node_image)
        kcp = self._get(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", name)
        operation = CloudOperation(id=own_hardware.operation_id("KubeadmControlPlane", name, release), cluster=cluster.name,
                                   kind="control_plane_upgrade")
        if kcp["spec"].get("version") == release and not own_hardware.control_plane_rolling(kcp):
            self._let_go(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", kcp)
            return operation.model_copy(update={"status": "succeeded"})
        if kcp["spec"].get("version") != release:
            self._patch(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", name, {
                "spec": {"version": release, "machineTemplate": {"nodeDrainTimeout": None}}})
        self._let_go(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", kcp)
        return operation

    def start_node_pool_upgrade(self, cluster: ClusterRef, *, node_pool: str, version: str, request_token: str,
                                node_image: str | None = None, launch_template_version: str | None = None,
                                drain_timeout_seconds: float | None = None) -> CloudOperation:
        """The MachineDeployment's template to the release (and infrastructure template) named: Cluster API rolls its
        Machines by its own strategy, draining each it deletes under every budget (nodeDrainTimeout cleared)."""
        release, template = own_hardware.capi_target(version, node_image)
        md = self._get(cluster, CORE, "machinedeployments", node_pool)
        operation = CloudOperation(
            id=own_hardware.operation_id("MachineDeployment", node_pool, release, drain_timeout_seconds),
            cluster=cluster.name, kind="node_pool_upgrade", node_pool=node_pool)
        spec = md["spec"]["template"]["spec"]
        wanted: dict[str, Any] = {"version": release, "nodeDrainTimeout": None}
        if template:
            wanted["infrastructureRef"] = {**spec.get("infrastructureRef", {}), "name": template}
        moved = spec.get("version") == release and (not template or spec.get("infrastructureRef", {}).get("name") == template)
        if moved and own_hardware.machine_deployment_done(md):
            self._let_go(cluster, CORE, "machinedeployments", md)
            return operation.model_copy(update={"status": "succeeded"})
        if not moved or spec.get("nodeDrainTimeout"):
            self._patch(cluster, CORE, "machinedeployments", node_pool, {"spec": {"template": {"spec": wanted}}})
        self._let_go(cluster, CORE, "machinedeployments", md)
        return operation

    def _let_go(self, cluster: ClusterRef, group: tuple[str, str], plural: str, body: dict[str, Any]) -> None:
        """Started again after Regatta held it (a budget, an abort): Regatta's own hold and marks come off; a pause
        someone else set stays (and the rollout waits for them)."""
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if PAUSED_BY in annotations or STOPPING in annotations:
            mine = LET_GO if PAUSED_BY in annotations else {STOPPING: None}
            self._patch(cluster, group, plural, body["metadata"]["name"], {"metadata": {"annotations": mine}})

    def poll_operation(self, cluster: ClusterRef, operation: CloudOperation) -> CloudOperation:
        if operation.status != "in_progress":
            return operation
        kind, name, release, drain_timeout = own_hardware.parse_operation_id(operation.id)
        if kind == "KubeadmControlPlane":  # its step runs to its end: never held (workflows/pieces/controller_rollout.py)
            kcp = self._get(cluster, CONTROL_PLANE, "kubeadmcontrolplanes", name)
            if kcp["spec"].get("version") == release and not own_hardware.control_plane_rolling(kcp):
                return operation.model_copy(update={"status": "succeeded"})
            return operation
        md = self._get(cluster, CORE, "machinedeployments", name)
        if md["spec"]["template"]["spec"].get("version") == release and own_hardware.machine_deployment_done(md):
            return operation.model_copy(update={"status": "succeeded"})  # done, whatever a late hold says
        machines = self._machines(cluster, f"cluster.x-k8s.io/deployment-name={name}")
        if own_hardware.stopping(md) and not own_hardware.machines_moving(machines):
            return operation.model_copy(update={"status": "stopped"})
        held = own_hardware.drain_held_longer_than(machines, drain_timeout or 0.0, now=datetime.now(UTC))
        if held and not own_hardware.paused(md):
            self._patch(cluster, CORE, "machinedeployments", name, {"metadata": {"annotations": HELD}})
        if held:
            return operation.model_copy(update={"status": "failed", "errors": [
                f"PodEvictionFailure: {line}" for line in held] + [
                f"Regatta paused MachineDeployment {name} ({PAUSED}); the Machine being deleted keeps draining, within"
                " its budgets. Let the budget allow an eviction, then take the annotation off or start the upgrade again"]})
        return operation

    def hold_rollout(self, cluster: ClusterRef, *, node_pool: str | None, hold: bool, stop: bool = False) -> str:
        """Pause (or resume) a pool's MachineDeployment by Cluster API's own annotation, marked as Regatta's (a pause
        someone else set is left alone); an abort marks it to stop once no Machine is being made or deleted. The
        control plane is never held: a KubeadmControlPlane paused mid scale-down keeps its deleting Machine."""
        if node_pool is None:
            return "the control plane's rollout runs to its end (a KubeadmControlPlane is not paused mid-rollout)"
        md = self._get(cluster, CORE, "machinedeployments", node_pool)
        annotations: dict[str, Any] = dict(HELD) if hold else {}
        if not hold:
            self._let_go(cluster, CORE, "machinedeployments", md)
            return f"MachineDeployment {node_pool} resumed ({PAUSED} removed)"
        if stop:
            annotations[STOPPING] = "true"
        self._patch(cluster, CORE, "machinedeployments", node_pool, {"metadata": {"annotations": annotations}})
        if stop:
            return (f"Cluster API's MachineDeployment {node_pool} is left paused ({PAUSED}) where it stood: take the"
                    " annotation off to let it finish, or start the upgrade again")
        return f"MachineDeployment {node_pool} paused ({PAUSED} set)"

    # ------------------------------------------------------------------ what Regatta does not do here

    def _refuse(self, cluster: ClusterRef, what: str) -> CloudError:
        return CloudError(f"cluster {cluster.name} is managed by Cluster API; Regatta upgrades its control plane and"
                          f" MachineDeployments and does not {what}: do that with clusterctl or its manifests",
                          error_type=ErrorType.NOT_MANAGED, retryable=False)
