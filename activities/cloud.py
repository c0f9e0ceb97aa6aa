"""Activities against cloud control planes: describe, start upgrades, create and delete node
pools, and wait for the resulting long-running operation while heartbeating.

Starting and waiting are separate activities: the start carries a request token derived from
the workflow, so a start retried after a crash returns the operation already running, and a
wait that dies simply polls the same operation again. `cloud.upgrade` is both in one call, with
the health gate that follows (when this worker reaches the cluster's API too): it heartbeats the
operation it started, so a retry after a crash waits for that one instead of starting anew.
"""

from __future__ import annotations

import time

from temporalio import activity

from activities.failures import refuse, translated_failures
from activities.kube import gate_on_health, inspect
from regatta.clouds import CloudError
from regatta.clouds.base import read_surge_room
from regatta.formats.fleet_data import api_removals
from regatta.kube import api_usage
from regatta.kube.connect import ClusterConnections
from regatta.models import (
    Activity,
    AddonChange,
    CloudOperation,
    ClusterRef,
    ClusterState,
    CreateCluster,
    CreateNodePool,
    DeleteCluster,
    DeleteNodePool,
    HoldRollout,
    ReadForReadiness,
    RunUpgrade,
    StartControlPlaneUpgrade,
    StartNodePoolUpgrade,
    UpdateAddons,
    UpgradeReads,
    UpgradeStepReport,
    WaitForOperation,
)
from regatta.models.errors import ErrorType
from regatta.rules import own_hardware, versions

# An upgrade step waits for at most this many operations: its own, after one or two the cloud ran by itself.
MAX_OPERATIONS_PER_STEP = 3


class CloudActivities:
    def __init__(self, connections: ClusterConnections):
        self.connections = connections

    @activity.defn(name=Activity.DESCRIBE_CLUSTER)
    def describe_cluster(self, cluster: ClusterRef) -> ClusterState:
        with translated_failures():
            return self._describe(cluster)

    def _describe(self, cluster: ClusterRef) -> ClusterState:
        provider = self.connections.provider(cluster)
        control_plane = provider.describe_control_plane(cluster)
        return ClusterState(name=cluster.name, control_plane_version=control_plane.version, status=control_plane.status,
                            node_pools=provider.list_node_pools(cluster))

    @activity.defn(name=Activity.READ_FOR_UPGRADE)
    def read_for_upgrade(self, request: ReadForReadiness | ClusterRef) -> UpgradeReads:
        """A preflight's reads in one call: the cloud's control plane and node pools, the cluster's nodes,
        budgets and health (not the pods on each node: a preflight does not count them) and the cloud's
        insights; given a target that moves the control plane, what its readiness gate judges besides (as
        `regatta upgrade readiness` reads it): the API versions the cluster's clients and manifests use and,
        on EKS, the managed add-ons against their catalogue for the target, and each pool's room for its surge. (A bare ClusterRef is what runs
        begun before the gate ask.)"""
        cluster = request.cluster if isinstance(request, ReadForReadiness) else request
        with translated_failures():
            provider = self.connections.provider(cluster)
            reads = UpgradeReads(state=self._describe(cluster), inspection=inspect(self.connections, cluster, pods=False),
                                 insights=provider.upgrade_insights(cluster))
            target = request.target_version if isinstance(request, ReadForReadiness) else None
            if target is None:
                return reads
            reads.rooms, reads.rooms_unread = read_surge_room(provider, cluster, reads.state.node_pools,
                                                              lambda: reads.inspection.nodes)
            if not versions.moves_control_plane(reads.state.control_plane_version, target):
                return reads  # the preflight refuses the target, or only node pools move: no API goes away
            reads.usage = api_usage.api_usage(self.connections.api_client(cluster), api_removals(),
                                              control_plane=reads.state.control_plane_version, target=target)
            if versions.moves_addons_after_control_plane(cluster.provider):
                reads.addons = provider.managed_addons(cluster, version=target)
            return reads

    @activity.defn(name=Activity.READ_FOR_ROLLBACK)
    def read_for_rollback(self, cluster: ClusterRef) -> UpgradeReads:
        """A rollback's preflight reads in one call: the cloud's control plane and node pools, the cluster's nodes,
        budgets and health, and the control plane's last version change as the cloud records it."""
        with translated_failures():
            provider = self.connections.provider(cluster)
            return UpgradeReads(state=self._describe(cluster), inspection=inspect(self.connections, cluster, pods=False),
                                last_change=provider.last_version_change(cluster),
                                insights=provider.upgrade_insights(cluster, category="ROLLBACK_READINESS"))

    @activity.defn(name=Activity.UPGRADE)
    def upgrade(self, request: RunUpgrade) -> UpgradeStepReport:
        """Start the upgrade of the control plane or one node pool, wait for it, gate on health (when
        asked), and (for the last step) describe the cluster afterwards. Heartbeat details carry the operation once
        started, so a retry waits for it rather than asking the cloud again.

        Once the operation ends, the start is asked again, which every adapter answers without a second
        operation when the target is reached (EKS by the request token, GKE and AKS by the versions): a cloud
        without request tokens (GKE) may have handed back an operation someone else runs on the same target (its
        own auto-upgrade), and then Regatta's upgrade still has to start."""
        cluster = request.cluster
        details = activity.info().heartbeat_details
        with translated_failures():
            provider = self.connections.provider(cluster)

            def start() -> CloudOperation:
                if request.node_pool is None:
                    # a controller on your own hardware is told the exact release (Cluster API's KubeadmControlPlane)
                    named = {"node_image": request.node_image} if cluster.provider in own_hardware.CONTROLLER_DRIVEN else {}
                    return provider.start_control_plane_upgrade(cluster, version=request.target_version,
                                                                request_token=request.request_token, force=request.force,
                                                                **named)
                return provider.start_node_pool_upgrade(
                    cluster, node_pool=request.node_pool, version=request.target_version, node_image=request.node_image,
                    request_token=request.request_token, launch_template_version=request.launch_template_version,
                    drain_timeout_seconds=request.drain_timeout_seconds)

            if details:
                started, operation = float(details[0]), CloudOperation.model_validate(details[1])
            else:
                started, operation = time.time(), start()
            what = f"{request.node_pool or 'the control plane'} of {cluster.name}"
            for waited in range(1, MAX_OPERATIONS_PER_STEP + 1):
                beat = operation.model_dump(mode="json")
                activity.heartbeat(started, beat)
                operation = self._wait(provider, cluster, operation, started=started, timeout_seconds=request.timeout_seconds,
                                       poll_interval_seconds=request.poll_interval_seconds,
                                       heartbeat=lambda beat=beat: activity.heartbeat(started, beat))
                # Asked again right after the wait, within any cloud's idempotency window: EKS answers the same
                # request token with the same (finished) update, GKE and AKS compare the versions they run.
                again = start()
                if again.status == "succeeded":
                    break
                if waited == MAX_OPERATIONS_PER_STEP:
                    # Not waited for and not given up on silently: the step fails and says which operation runs.
                    raise CloudError(
                        f"{what} is still not at {request.node_image or request.target_version} after {waited} operations"
                        f" ran to their end (someone else's, or the cloud's own auto-upgrades, kept taking their turn);"
                        f" the cloud has started {again.id}, which Regatta does not wait for: look at what keeps"
                        " changing the cluster (an auto-upgrade channel, another tool), then retry the upgrade",
                        error_type=ErrorType.CLOUD_OPERATION_FAILED, retryable=False)
                activity.logger.info("%s: the operation waited for was not this upgrade's; %s started", what, again.id)
                operation = again
            if request.gate is not None:
                gate_on_health(self.connections, request.gate,
                               on_poll=lambda problems: activity.heartbeat(started, operation.model_dump(mode="json"), problems))
            return UpgradeStepReport(operation=operation, state=self._describe(cluster) if request.describe_after else None)

    @activity.defn(name=Activity.UPDATE_ADDONS)
    def update_addons(self, request: UpdateAddons) -> list[AddonChange]:
        """The EKS runbook's step after a control plane upgrade: every managed add-on not on its catalogue's
        default for the new minor is moved there, one at a time, each waited for. An add-on already on it (or on
        something newer) is left alone. Heartbeats name the add-on in flight and what is done, so a retry after
        a crash waits for the update it started instead of asking again (the request token is per add-on too)."""
        cluster = request.cluster
        details = activity.info().heartbeat_details
        done: list[AddonChange] = [AddonChange.model_validate(c) for c in details[0]] if details else []
        with translated_failures():
            provider = self.connections.provider(cluster)
            for addon in provider.managed_addons(cluster, version=request.target_version):
                if any(change.name == addon.name for change in done):
                    continue
                wanted = addon.default_version
                if wanted is None or wanted == addon.version or (addon.compatible and _newer(addon.version, wanted)):
                    done.append(AddonChange(name=addon.name, from_version=addon.version, to_version=addon.version,
                                            status="unchanged"))
                    continue
                started = time.time()
                operation = provider.start_addon_update(cluster, addon=addon.name, version=wanted,
                                                        request_token=f"{request.request_token}-{addon.name}"[:64])
                beat = [c.model_dump(mode="json") for c in done]
                self._wait(provider, cluster, operation, started=started, timeout_seconds=request.timeout_seconds,
                           poll_interval_seconds=request.poll_interval_seconds,
                           heartbeat=lambda beat=beat, name=addon.name: activity.heartbeat(beat, name))
                done.append(AddonChange(name=addon.name, from_version=addon.version, to_version=wanted, status="updated"))
                activity.heartbeat([c.model_dump(mode="json") for c in done])
        return done

    @activity.defn(name=Activity.HOLD_ROLLOUT)
    def hold_rollout(self, request: HoldRollout) -> str:
        """Pause, resume or stop the rollout a controller on your own hardware carries out (Cluster API's paused
        annotation; the system-upgrade-controller's disabled nodes); says what it did."""
        with translated_failures():
            provider = self.connections.provider(request.cluster)
            if request.cluster.provider not in own_hardware.CONTROLLER_DRIVEN:
                return f"{request.cluster.provider}: the cloud's operation runs to its end; the upgrade holds between steps"
            return provider.hold_rollout(request.cluster, node_pool=request.node_pool, hold=request.hold, stop=request.stop)

    @activity.defn(name=Activity.CREATE_CLUSTER)
    def create_cluster(self, request: CreateCluster) -> CloudOperation:
        with translated_failures():
            return self.connections.provider(request.cluster).create_cluster(
                request.cluster, version=request.version, labels=request.labels, request_token=request.request_token,
                network=request.network, first_pool=request.first_pool)

    @activity.defn(name=Activity.DELETE_CLUSTER)
    def delete_cluster(self, request: DeleteCluster) -> CloudOperation:
        with translated_failures():
            self.connections.forget(request.cluster)
            return self.connections.provider(request.cluster).delete_cluster(request.cluster, request_token=request.request_token)

    @activity.defn(name=Activity.START_CONTROL_PLANE_UPGRADE)
    def start_control_plane_upgrade(self, request: StartControlPlaneUpgrade) -> CloudOperation:
        with translated_failures():
            return self.connections.provider(request.cluster).start_control_plane_upgrade(
                request.cluster, version=request.target_version, request_token=request.request_token, force=request.force
            )

    @activity.defn(name=Activity.START_NODE_POOL_UPGRADE)
    def start_node_pool_upgrade(self, request: StartNodePoolUpgrade) -> CloudOperation:
        with translated_failures():
            return self.connections.provider(request.cluster).start_node_pool_upgrade(
                request.cluster, node_pool=request.node_pool, version=request.target_version,
                node_image=request.node_image, request_token=request.request_token,
                launch_template_version=request.launch_template_version,
            )

    @activity.defn(name=Activity.CREATE_NODE_POOL)
    def create_node_pool(self, request: CreateNodePool) -> CloudOperation:
        with translated_failures():
            return self.connections.provider(request.cluster).create_node_pool(
                request.cluster, node_pool=request.node_pool, request_token=request.request_token, like=request.like,
                launch_template_version=request.launch_template_version,
            )

    @activity.defn(name=Activity.DELETE_NODE_POOL)
    def delete_node_pool(self, request: DeleteNodePool) -> CloudOperation:
        with translated_failures():
            return self.connections.provider(request.cluster).delete_node_pool(
                request.cluster, node_pool=request.node_pool, request_token=request.request_token
            )

    @activity.defn(name=Activity.WAIT_FOR_OPERATION)
    def wait_for_operation(self, request: WaitForOperation) -> CloudOperation:
        """Poll until the operation ends, heartbeating each poll."""
        provider = self.connections.provider(request.cluster)
        details = activity.info().heartbeat_details
        started = float(details[0]) if details else time.time()
        with translated_failures():
            return self._wait(provider, request.cluster, request.operation, started=started,
                              timeout_seconds=request.timeout_seconds, poll_interval_seconds=request.poll_interval_seconds,
                              heartbeat=lambda: activity.heartbeat(started))

    @staticmethod
    def _wait(provider, cluster: ClusterRef, operation: CloudOperation, *, started: float, timeout_seconds: float,
              poll_interval_seconds: float, heartbeat) -> CloudOperation:
        """Poll until the operation ends, heartbeating each poll. A transient error while polling is
        not a reason to fail: the operation runs on in the cloud regardless."""
        while True:
            try:
                operation = provider.poll_operation(cluster, operation)
            except CloudError as error:
                if not error.retryable:
                    raise
                activity.logger.warning("polling %s: %s (will poll again)", operation.id, error)
            heartbeat()
            if operation.status == "succeeded":
                return operation
            if operation.status == "stopped":
                raise refuse(f"the rollout of {operation.node_pool or 'the control plane'} on {cluster.name} was held where"
                             " it stood by an abort", error_type=ErrorType.ROLLOUT_STOPPED)
            if operation.status == "failed":
                raise refuse(
                    f"{operation.kind.replace('_', ' ')} {operation.id} on {cluster.name}"
                    + (f" (node pool {operation.node_pool})" if operation.node_pool else "")
                    + f" failed: {'; '.join(operation.errors) or 'no reason given'}",
                    error_type=ErrorType.CLOUD_OPERATION_FAILED,
                )
            if time.time() - started > timeout_seconds:
                raise refuse(
                    f"{operation.kind.replace('_', ' ')} {operation.id} on {cluster.name} did not finish"
                    f" within {timeout_seconds:g}s; check it in the cloud console, then start the"
                    " operation again (it will pick up where the cloud is)",
                    error_type=ErrorType.CLOUD_OPERATION_TIMEOUT,
                )
            time.sleep(poll_interval_seconds)


def _newer(running: str, default: str) -> bool:
    """Whether an add-on's running version is newer than the catalogue's default (v1.11.4-eksbuild.1 vs
    v1.11.3-eksbuild.2): someone moved it ahead on purpose, and Regatta does not move it back."""
    def key(version: str) -> tuple[int, ...]:
        release, _, build = version.lstrip("v").partition("-eksbuild.")
        return (*(int(part) for part in release.split(".") if part.isdigit()), int(build or 0) if build.isdigit() else 0)

    return key(running) > key(default)
