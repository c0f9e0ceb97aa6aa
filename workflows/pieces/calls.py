"""Calling activities the way every runbook does: quick calls retried with backoff (throttling,
5xx), non-retryable refusals passed on with their own type and message, long cloud operations
started and then waited for while they heartbeat, and health gates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

from workflows.pieces.patches import FEWER_STEPS, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        AddonChange,
        CloudOperation,
        ClusterRecord,
        ClusterRef,
        HealthCheck,
        HealthCheckResult,
        HealthGate,
        HealthReport,
        RunHealthCheck,
        RunUpgrade,
        UpdateAddons,
        UpgradeStepReport,
        WaitForOperation,
    )
    from regatta.models.errors import ErrorType
    from regatta.models.fleet import Targeted
    from regatta.models.timings import heartbeat_seconds
    from regatta.rules import sites

T = TypeVar("T")

# Quick calls to a cloud or API server: throttling and 5xx are retried with backoff for a
# while; what cannot succeed arrives as a non-retryable ApplicationError and stops at once.
QUICK_CALL = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=25)

# A callback receiver that is down gets a few tries over about a minute, then the note is dropped
# (and logged): an operation does not wait on its observers.
CALLBACK_DELIVERY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                maximum_interval=timedelta(seconds=20), maximum_attempts=5)


async def call(activity: Activity, arg: Any, result_type: Any, *, timeout: float = 60,
               heartbeat: float | None = None, retry: RetryPolicy = QUICK_CALL) -> Any:
    """Run one activity, retried as QUICK_CALL (or `retry`). One that talks to the API of a cluster in a
    private network goes to that site's agent (regatta/rules/sites.py): where its request's target is reached."""
    site = site_of(activity, arg)
    if site is not None:
        return await call_at_site(site, activity, arg, result_type, timeout=timeout, heartbeat=heartbeat, retry=retry)
    return await workflow.execute_activity(
        activity, arg, result_type=result_type,
        start_to_close_timeout=timedelta(seconds=timeout),
        heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
        retry_policy=retry,
    )


async def call_inventory(activity: Activity, arg: Any, result_type: Any) -> Any:
    """An inventory read or write (an audit line, a cluster's record). On the worker that runs the
    workflow, which always has the inventory, as a local activity: no task queue round trip and one
    marker in the history instead of an activity's three events and a workflow task's three. The
    writes are keyed (an audit line by its run and number), so the rerun a crash may cause is
    harmless. Runs that began before FEWER_STEPS call it as an ordinary activity."""
    if not patched(FEWER_STEPS):
        return await call(activity, arg, result_type)
    return await workflow.execute_local_activity(activity, arg, result_type=result_type,
                                                 start_to_close_timeout=timedelta(seconds=60), retry_policy=QUICK_CALL)


class Stopping(Protocol):
    """The state an operation on one cluster keeps its message in."""

    message: str


async def look_up_cluster(cluster: str, *, trail: Any, state: Stopping) -> ClusterRecord:
    """The cluster's inventory record, or the run refused at its first step, saying which clusters there are."""
    from workflows.pieces.failures import stop_of

    try:
        record: ClusterRecord = await call_inventory(Activity.GET_CLUSTER, cluster, ClusterRecord)
    except ActivityError as failure:
        stop = stop_of(failure, where="looking the cluster up in the inventory", refused=True,
                       default_type=ErrorType.UNKNOWN_CLUSTER)
        trail.step("failed", stop.where)
        state.message = stop.reason
        raise stop.error(stop.reason) from None
    return record


def site_of(activity: Activity, arg: Any) -> str | None:
    """The site whose agent must run this call: where the request's target is reached (every request that acts on a
    cluster says, `Targeted.target()`), when the activity is one that runs at a site."""
    if not isinstance(arg, Targeted):
        return None
    target = arg.target()
    return target.site if target.site and sites.runs_at_site(activity.value, provider=target.provider) else None


@runtime_checkable
class WaitsForAgents(Protocol):
    """A workflow that shows in its progress what it waits on that is not its own doing: a site's agent that
    is away, a cloud busy with an operation someone else started (None: no longer)."""

    def waiting_for_agent(self, text: str | None) -> None: ...


def _show_waiting(text: str | None) -> None:
    workflow.set_current_details(text or "")  # the Temporal UI's "current details", for every workflow
    instance = workflow.instance()
    if isinstance(instance, WaitsForAgents):
        instance.waiting_for_agent(text)


async def call_at_site(site: str, activity: Activity, arg: Any, result_type: Any, *, timeout: float,
                        heartbeat: float | None, retry: RetryPolicy = QUICK_CALL) -> Any:
    """The call on the site's own task queue. While no agent picks it up the operation waits, says
    so, and asks again, the wait doubling up to a cap: it never fails for an agent that is away. (Called by `call`
    for a targeted request; directly only for a request recorded before it named its target.)"""
    waits, waited = 0, 0.0
    while True:
        patience = sites.agent_wait_seconds(waits)
        try:
            result = await workflow.execute_activity(
                activity, arg, result_type=result_type,
                task_queue=sites.site_task_queue(workflow.info().task_queue, site),
                schedule_to_start_timeout=timedelta(seconds=patience),
                start_to_close_timeout=timedelta(seconds=timeout),
                heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
                retry_policy=retry,
            )
        except ActivityError as failure:
            if not (isinstance(failure.cause, TimeoutError) and failure.cause.type == TimeoutType.SCHEDULE_TO_START):
                raise
            waits, waited = waits + 1, waited + patience
            _show_waiting(sites.waiting_for_agent(site, waited))
            continue
        if waits:
            _show_waiting(None)
        return result


async def call_or_refuse(activity: Activity, arg: Any, result_type: Any, *, error_type: str) -> Any:
    """A call whose non-retryable refusal (an unknown cluster, a wave that makes no sense) ends
    the run at once with the activity's own type and message."""
    try:
        return await call(activity, arg, result_type)
    except ActivityError as failure:
        cause = failure.cause
        raise ApplicationError(str(getattr(cause, "message", failure)), type=getattr(cause, "type", None) or error_type,
                               non_retryable=True) from None


def request_token(what: str) -> str:
    """Unique per run and step: a retried start finds its own operation, a new run starts anew. At most 64
    characters (EKS's clientRequestToken): a step named too long for them keeps its first characters and a digest
    of the whole name, so two long names that begin alike never share a token."""
    token = f"{workflow.info().run_id}-{what}"
    if len(token) <= 64:
        return token
    digest = hashlib.sha256(what.encode()).hexdigest()[:12]
    return f"{token[:51]}-{digest}"


class Timing(Protocol):
    """The input fields that time a runbook's cloud operations and health gates."""

    poll_interval_seconds: float
    cloud_operation_timeout_seconds: float
    activity_heartbeat_timeout_seconds: float


class ClusterCalls:
    """The calls that act on one cluster and its cloud, timed by the operation's input."""

    def __init__(self, ref: ClusterRef, timing: Timing):
        self.ref = ref
        self.timing = timing

    def heartbeat(self) -> float:
        return heartbeat_seconds(at_least=self.timing.activity_heartbeat_timeout_seconds,
                                 poll_interval_seconds=self.timing.poll_interval_seconds)

    async def while_the_cloud_is_busy(self, attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
        """Run `attempt`; while the cloud answers that another operation runs on the cluster (EKS
        ResourceInUseException, GKE's 400 FAILED_PRECONDITION, AKS's 409 OperationNotAllowed: an auto-upgrade,
        a colleague's console), say so in the progress and ask again every poll interval, for as long as the
        operation's own timeout allows. The clouds' own operations run for hours; a retry budget of minutes
        would fail an upgrade that only had to wait."""
        waited, limit = 0.0, self.timing.cloud_operation_timeout_seconds
        while True:
            try:
                result = await attempt()
            except ActivityError as failure:
                if getattr(failure.cause, "type", None) != ErrorType.OPERATION_IN_PROGRESS or waited >= limit:
                    raise
                pause = self.timing.poll_interval_seconds
                _show_waiting(f"{what}: {getattr(failure.cause, 'message', failure)} Waiting for it to finish"
                              f" ({waited:.0f}s of at most {limit:.0f}s)")
                await workflow.sleep(timedelta(seconds=pause))
                waited += pause
                continue
            if waited:
                _show_waiting(None)
            return result

    async def cloud_operation(self, start: Activity, request: Any) -> CloudOperation:
        """Ask a cloud for a long-running change (waiting first for one someone else runs) and wait until it has finished."""
        operation: CloudOperation = await self.while_the_cloud_is_busy(
            lambda: call(start, request, CloudOperation), what=start.value.removeprefix("cloud.").replace("_", " "))
        timeout = self.timing.cloud_operation_timeout_seconds
        done: CloudOperation = await call(
            Activity.WAIT_FOR_OPERATION,
            WaitForOperation(cluster=self.ref, operation=operation, poll_interval_seconds=self.timing.poll_interval_seconds,
                             timeout_seconds=timeout),
            CloudOperation, timeout=timeout + 120, heartbeat=self.heartbeat())
        return done

    def reaches_cloud_and_cluster(self) -> bool:
        """Whether one activity may call both the cluster's cloud and its API (regatta/rules/sites.py)."""
        return sites.reaches_cloud_and_cluster(provider=self.ref.provider, site=self.ref.site)

    async def upgrade(self, *, target_version: str, request_token: str, node_pool: str | None = None,
                      node_image: str | None = None, gate_after: str, gate_timeout: float,
                      on_gate: Callable[[], None], describe_after: bool = False, launch_template_version: str | None = None,
                      force: bool = False, drain_timeout_seconds: float | None = None) -> UpgradeStepReport:
        """Upgrade the control plane (no `node_pool`) or one node pool, then gate on health: one
        activity where one worker reaches the cloud and the cluster; otherwise the upgrade centrally
        and the gate at the cluster's site. `on_gate` is called once the cloud's part is done and
        the gate is what is left (or what failed)."""
        together = self.reaches_cloud_and_cluster()
        gate = self._gate(gate_after, timeout=gate_timeout)
        step = RunUpgrade(cluster=self.ref, target_version=target_version, request_token=request_token,
                          node_pool=node_pool, node_image=node_image, launch_template_version=launch_template_version,
                          force=force, drain_timeout_seconds=drain_timeout_seconds,
                          poll_interval_seconds=self.timing.poll_interval_seconds,
                          timeout_seconds=self.timing.cloud_operation_timeout_seconds, gate=gate if together else None,
                          describe_after=describe_after)
        try:
            report: UpgradeStepReport = await self.while_the_cloud_is_busy(lambda: call(
                Activity.UPGRADE, step, UpgradeStepReport, heartbeat=self.heartbeat(),
                timeout=self.timing.cloud_operation_timeout_seconds + (gate_timeout if together else 0) + 120),
                what=f"upgrade of {'node pool ' + node_pool if node_pool else 'the control plane'}")
        except ActivityError as failure:
            if getattr(failure.cause, "type", None) == gate.failure_type:
                on_gate()
            raise
        on_gate()
        if not together:
            await self.health_gate(gate_after, timeout=gate_timeout)
        return report

    async def update_addons(self, *, target_version: str, request_token: str) -> list[AddonChange]:
        """Move the cloud-managed add-ons to their catalogue's default for the new version, each waited for."""
        timeout = self.timing.cloud_operation_timeout_seconds
        request = UpdateAddons(cluster=self.ref, target_version=target_version, request_token=request_token,
                               poll_interval_seconds=self.timing.poll_interval_seconds, timeout_seconds=timeout)
        changes: list[AddonChange] = await self.while_the_cloud_is_busy(
            lambda: call(Activity.UPDATE_ADDONS, request, list[AddonChange], timeout=4 * timeout + 120,
                         heartbeat=self.heartbeat()), what="update of the managed add-ons")
        return changes

    def _gate(self, after: str, *, timeout: float, failure_type: str = "HealthGateFailed",
              min_ready_nodes: int = 0) -> HealthGate:
        return HealthGate(cluster=self.ref, timeout_seconds=timeout, poll_interval_seconds=self.timing.poll_interval_seconds,
                          after=after, failure_type=failure_type, min_ready_nodes=min_ready_nodes)

    async def health_gate(self, after: str, *, timeout: float, failure_type: str = "HealthGateFailed",
                          min_ready_nodes: int = 0) -> None:
        """Wait until the cluster is healthy after `after`; fail with `failure_type` if it is not within `timeout`."""
        await call(Activity.HEALTH_GATE, self._gate(after, timeout=timeout, failure_type=failure_type,
                                                    min_ready_nodes=min_ready_nodes),
                   HealthReport, timeout=timeout + 120, heartbeat=self.heartbeat())

    async def health_checks(self, checks: Sequence[HealthCheck], after: str, *, results: list[str],
                            on_step: Callable[[str], None]) -> None:
        """The checks beyond node readiness (Prometheus queries, smoke tests), one after another;
        the first that fails stops the caller with its name and value. Each result is appended to
        `results`, whose length numbers the checks' request tokens within the run."""
        for check in checks:
            kind = "Prometheus query" if check.prometheus else "smoke test"
            on_step(f"health check {check.name} ({kind}) after {after}")
            if check.prometheus:
                timeout = check.prometheus.for_seconds + 120
                heartbeat = check.prometheus.interval_seconds + 60
                activity = Activity.CHECK_PROMETHEUS
            else:
                assert check.smoke_test is not None  # a check is exactly one of the two
                timeout, heartbeat, activity = check.smoke_test.timeout_seconds + 120, 60, Activity.RUN_SMOKE_TEST
            result: HealthCheckResult = await call(
                activity, RunHealthCheck(cluster=self.ref, check=check, after=after,
                                         request_token=request_token(f"check{len(results)}")),
                HealthCheckResult, timeout=timeout, heartbeat=heartbeat)
            results.append(f"{check.name} after {after}: {result.detail}")
