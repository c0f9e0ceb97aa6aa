"""The workers: the main worker hosts every workflow and every activity on REGATTA_TASK_QUEUE; a
site agent (`regatta worker --site NAME`) hosts only the activities that talk to the Kubernetes API
of the clusters in its private network, on that site's own task queue (regatta/rules/sites.py),
with the site's credentials, which no other worker has.

`regatta worker` runs either; `regatta dev` starts the main one as a child process; tests build
them in process with `build_worker`. Activities are synchronous (boto3 and the kubernetes client
are), so they run on a thread pool sized to the activities allowed at once.
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig

from activities.callbacks import CallbackActivities
from activities.cloud import CloudActivities
from activities.fleet_clock import FleetClockActivities
from activities.inventory import InventoryActivities
from activities.kube import KubeActivities
from activities.placement import PlacementActivities
from activities.policy import PolicyActivities
from activities.signals import SignalActivities
from activities.traffic import TrafficActivities
from regatta.clouds.rate_limits import RateLimit, SharedRateLimit, no_rate_limit
from regatta.fleet_clock import read_fleet_clock
from regatta.inventory import Inventory
from regatta.inventory.request_slots import take_cloud_request_slot
from regatta.kube.connect import ClusterConnections
from regatta.rules.rate_limits import parse_rate_limits
from regatta.rules.sites import check_site_name, runs_at_site, site_task_queue
from regatta.settings import Settings
from regatta.telemetry import OperationContext
from regatta.temporal.connect import connect, describe_security
from regatta.traffic import HttpTrafficManager
from workflows.access_grant import AccessGrant
from workflows.cluster_hold import ClusterHold
from workflows.cluster_rollback import ClusterRollback
from workflows.cluster_upgrade import ClusterUpgrade
from workflows.decommission_cluster import DecommissionCluster
from workflows.dr_failback import DRFailback
from workflows.dr_failover import DRFailover
from workflows.drift_sweep import DriftSweep
from workflows.evacuate_cluster import EvacuateCluster
from workflows.fleet_sweep import FleetSweep
from workflows.move_workloads import MoveWorkloads
from workflows.patch_wave import PatchWave
from workflows.policy_rollout import PolicyRollout
from workflows.provision_cluster import ProvisionCluster

WORKFLOWS = [ClusterUpgrade, ProvisionCluster, DecommissionCluster, DRFailover, DRFailback, ClusterHold, PatchWave, FleetSweep,
             PolicyRollout, DriftSweep, MoveWorkloads, EvacuateCluster, ClusterRollback, AccessGrant]

# What a versioned worker's runs do when another build becomes current (docs/operations.md). The bounded runbooks stay
# pinned to the build they began on and finish there; the long-lived ones (they outlive releases) move to the current
# build at their next task, their changes kept behind workflow.patched.
VERSIONING: dict[type, VersioningBehavior] = {
    **dict.fromkeys((ClusterUpgrade, ProvisionCluster, DecommissionCluster, DRFailover, DRFailback, ClusterRollback,
                     EvacuateCluster, MoveWorkloads), VersioningBehavior.PINNED),
    **dict.fromkeys((PatchWave, PolicyRollout, FleetSweep, DriftSweep, ClusterHold, AccessGrant), VersioningBehavior.AUTO_UPGRADE),
}


def versioned(workflow_class: type) -> type:
    """The workflow as a versioned worker registers it: the same class, its behaviour declared. (Declared on the
    classes themselves, an unversioned worker's every task would be refused: the server takes a behaviour only from
    a worker of a deployment version.)"""
    name = getattr(workflow_class, "__temporal_workflow_definition").name
    declared = type(workflow_class.__name__, (workflow_class,), {"__module__": workflow_class.__module__,
                                                                 "__doc__": workflow_class.__doc__})
    return workflow.defn(name=name, versioning_behavior=VERSIONING[workflow_class])(declared)


def activity_functions(*hosts: object) -> list:
    """Every @activity.defn method of the given activity classes, bound to its instance."""
    found = []
    for host in hosts:
        for name in dir(type(host)):
            method = getattr(host, name)
            if callable(method) and hasattr(method, "__temporal_activity_definition"):
                found.append(method)
    return found


def activity_name(method: object) -> str:
    return str(getattr(method, "__temporal_activity_definition").name)


def cloud_rate_limit(settings: Settings, inventory: Inventory) -> RateLimit:
    """REGATTA_CLOUD_RATE_LIMITS as a wait before each cloud request, on a schedule every worker shares."""
    limits = parse_rate_limits(settings.cloud_rate_limits)
    if not limits:
        return no_rate_limit
    return SharedRateLimit(limits, take_slot=lambda account, interval: take_cloud_request_slot(inventory, account, interval))


def build_worker(
    client: Client, settings: Settings, *, task_queue: str | None = None, max_concurrent_activities: int = 64,
    site: str | None = None,
) -> Worker:
    """The main worker, or with `site` that site's agent: the cluster-API activities alone, on the
    site's task queue, with the site's credentials."""
    inventory = Inventory(settings.database_url, audit_keys=settings.audit_keys())
    connections = ClusterConnections(sim_url=settings.sim_url, site=site, rate_limit=cloud_rate_limit(settings, inventory),
                                     simulated_only=settings.simulated_only)
    traffic = HttpTrafficManager(settings.traffic_endpoint) if settings.traffic_endpoint else None
    activities = activity_functions(
        CloudActivities(connections), KubeActivities(connections, inventory), InventoryActivities(inventory, fleet_now=lambda: read_fleet_clock(settings.sim_url).now),
        TrafficActivities(traffic), FleetClockActivities(settings.sim_url), CallbackActivities(settings.webhook_secret, outbound=settings.outbound),
        SignalActivities(connections, outbound=settings.outbound, smoke_test_images=settings.smoke_test_images),
        PolicyActivities(connections, inventory, outbound=settings.outbound), PlacementActivities(connections, inventory),
    )
    main_queue = task_queue or settings.task_queue
    if site is not None:
        check_site_name(site)
        activities = [method for method in activities if runs_at_site(activity_name(method), provider="kubeconfig")]
    return Worker(
        client,
        task_queue=site_task_queue(main_queue, site) if site is not None else main_queue,
        workflows=([versioned(w) for w in WORKFLOWS] if settings.build_id else WORKFLOWS) if site is None else [],
        # Not in the SDK's sandbox: it compiled and imported every workflow module anew for each
        # workflow run, and proxied every module it touched, the largest share of a worker's CPU
        # in a 1,000-cluster wave (docs/benchmarks.md, its steps). What the sandbox guarded is
        # guarded instead by the replay tests, which run every recorded history in the sandbox
        # (tests/integration/test_replay.py), and by ruff's banned-api list for workflows/ and
        # regatta/rules/ (their ruff.toml).
        workflow_runner=UnsandboxedWorkflowRunner(),
        activities=activities,
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities, thread_name_prefix="activity"),
        max_concurrent_activities=max_concurrent_activities,
        interceptors=[OperationContext()],
        # A version of the worker deployment (REGATTA_BUILD_ID): each workflow type says whether its runs stay on the
        # build they started on or move to the current one (their versioning_behavior); a site's agent runs
        # activities alone and stays unversioned.
        deployment_config=WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(settings.deployment, settings.build_id), use_worker_versioning=True)
        if settings.build_id and site is None else None,
    )


def prometheus_runtime(port: int, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime exporting the SDK's worker metrics (task latencies, slots, polls) for Prometheus."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


async def run(settings: Settings, *, metrics_port: int = 0, metrics_host: str = "127.0.0.1", site: str | None = None) -> None:
    if site is not None:
        check_site_name(site)
    client = await connect(settings, runtime=prometheus_runtime(metrics_port, metrics_host) if metrics_port else None)
    worker = build_worker(client, settings, site=site)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = f", metrics on http://{metrics_host}:{metrics_port}/metrics" if metrics_port else ""
    role = f"agent of site {site}" if site else "worker"
    queue = site_task_queue(settings.task_queue, site) if site else settings.task_queue
    print(f"{role} on task queue {queue!r} at {settings.temporal_address} over {describe_security(settings)}"
          f" (namespace {settings.namespace}){metrics}", flush=True)
    async with worker:
        await stop.wait()
