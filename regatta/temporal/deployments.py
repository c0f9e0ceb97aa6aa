"""The worker deployment's versions, as `regatta deploy status|promote|ramp` sees and moves them (Temporal's Worker
Versioning; docs/operations.md): which build is current, which is ramping and by how much, each version's status and
drainage, and how many runs pinned to it are still open (a build's workers may stop once none are).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import request_response_pb2 as requests
from temporalio.service import RPCError, RPCStatusCode

from regatta.settings import Settings
from regatta.temporal.connect import connect
from regatta.temporal.outcomes import OperationRefused


@dataclass(frozen=True)
class VersionState:
    build_id: str
    status: str
    drainage: str
    current: bool
    ramping_percent: float | None
    open_pinned: int


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _identity() -> str:
    return f"regatta deploy ({getpass.getuser()})"


async def status(settings: Settings) -> list[VersionState]:
    client = await connect(settings)
    try:
        answer = await client.workflow_service.describe_worker_deployment(requests.DescribeWorkerDeploymentRequest(
            namespace=settings.namespace, deployment_name=settings.deployment))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise OperationRefused(f"no worker deployment {settings.deployment!r} in namespace {settings.namespace}: start a"
                                   " worker with REGATTA_BUILD_ID set, and it makes one") from None
        raise
    info = answer.worker_deployment_info
    routing = info.routing_config
    current = routing.current_deployment_version.build_id
    ramping = routing.ramping_deployment_version.build_id
    found = []
    for summary in info.version_summaries:
        build = summary.deployment_version.build_id
        pinned = await client.count_workflows(
            f"TemporalWorkerDeploymentVersion = '{settings.deployment}:{build}' AND ExecutionStatus = 'Running'"
            " AND TemporalWorkflowVersioningBehavior = 'Pinned'")
        found.append(VersionState(
            build_id=build, status=_name(WorkerDeploymentVersionStatus, summary.status, "WORKER_DEPLOYMENT_VERSION_STATUS_"),
            drainage=_name(VersionDrainageStatus, summary.drainage_status, "VERSION_DRAINAGE_STATUS_"),
            current=build == current, ramping_percent=routing.ramping_version_percentage if build == ramping and ramping else None,
            open_pinned=pinned.count))
    return sorted(found, key=lambda v: (not v.current, v.build_id))


async def promote(settings: Settings, build_id: str) -> None:
    """Make `build_id` the current version: new runs, and runs that move at their next task, go to it."""
    client = await connect(settings)
    try:
        await client.workflow_service.set_worker_deployment_current_version(requests.SetWorkerDeploymentCurrentVersionRequest(
            namespace=settings.namespace, deployment_name=settings.deployment, build_id=build_id, identity=_identity()))
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
            raise OperationRefused(f"build {build_id} cannot be made current: {error.message} (is a worker of that build"
                                   " polling?)") from None
        raise


async def ramp(settings: Settings, build_id: str, percent: float) -> None:
    """Send `percent` of new runs (and moving ones) to `build_id` beside the current version."""
    client = await connect(settings)
    try:
        await client.workflow_service.set_worker_deployment_ramping_version(requests.SetWorkerDeploymentRampingVersionRequest(
            namespace=settings.namespace, deployment_name=settings.deployment, build_id=build_id, percentage=percent,
            identity=_identity()))
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.INVALID_ARGUMENT):
            raise OperationRefused(f"build {build_id} cannot ramp: {error.message}") from None
        raise
