"""What DRFailover and DRFailback share, as one object each of them holds: the pair lookup, the lock
on the other cluster, the check of the side that takes over, the approval gate, fencing, restore,
the traffic shift, verification, RTO and RPO, the result, and the one failure path.

Until fencing begins an `abort` stops either with nothing changed; from then on they finish,
because a half-moved service is worse than either side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

from workflows.pieces.calls import call, call_or_refuse
from workflows.pieces.controls import refuse_a_second_abort, refuse_own_approval, take_abort
from workflows.pieces.failures import stop_of
from workflows.pieces.inputs import check_start, parse_input
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ApproveInput,
        BackupInfo,
        ClusterHoldInput,
        ClusterHoldResult,
        ClusterInspection,
        ClusterRecord,
        ClusterRef,
        ClusterState,
        DRFailbackInput,
        DRFailoverInput,
        DrPair,
        DRProgress,
        DRResult,
        ErrorType,
        FenceReport,
        FenceWorkloads,
        RecordDrServing,
        RestoreReport,
        RestoreWorkloads,
        SetTraffic,
        TrafficRecord,
        WaitWorkloadsReady,
        WorkloadInventory,
    )
    from regatta.models.operations import WorkflowName
    from regatta.rules import operation_ids, recovery

# Phases after which an abort would leave the service half moved.
PAST_RETURN = ("backing_up", "fencing", "restoring", "verifying", "shifting_traffic", "returning_standby", "recording",
               "cleaning_up", "succeeded", "aborted", "failed")


Request = TypeVar("Request", DRFailoverInput, DRFailbackInput)


class Recovery(Generic[Request]):
    def __init__(self, *, operation: str, model: type[Request], raw: Request | dict[str, Any], example: str):
        self.input: Request
        self.input, self.input_error = parse_input(model, raw, example)
        self.state = DRProgress(operation=operation, cluster=self.input.cluster, source="?", target="?")
        self.trail = Trail(operation=operation, cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)
        self._source: ClusterRecord | None = None
        self._target: ClusterRecord | None = None
        self.held: workflow.ChildWorkflowHandle | None = None

    @property
    def source(self) -> ClusterRecord:
        """The side service moves away from (known once the pair is loaded)."""
        assert self._source is not None, "load_pair comes first"
        return self._source

    @property
    def target(self) -> ClusterRecord:
        """The side service moves to (known once the pair is loaded)."""
        assert self._target is not None, "load_pair comes first"
        return self._target

    # ------------------------------------------------------------------ the controls both take

    async def approve(self, request: ApproveInput) -> None:
        self.state.approved_by = request.approver
        await self.trail.record("approve", "approved", f"by {request.approver}: {request.comment}".rstrip(": "))

    def validate_approve(self, request: ApproveInput) -> None:
        refuse_own_approval(phase=self.state.phase, approver=request.approver, requested_by=self.input.requested_by,
                            what=self.trail.operation, approved_by=self.state.approved_by)

    async def abort(self, request: AbortInput) -> None:
        await take_abort(self.state, self.trail, request)

    def validate_abort(self, request: AbortInput) -> None:
        if self.state.phase in PAST_RETURN:
            raise ApplicationError(f"cannot abort: the {self.trail.operation} is {self.state.phase}"
                                   + ("" if self.state.phase in ("succeeded", "aborted", "failed") else
                                      " and will finish; a half-moved service is worse than either side"),
                                   type=ErrorType.TOO_LATE_TO_ABORT)
        refuse_a_second_abort(self.state.abort_requested)

    # ------------------------------------------------------------------ steps

    @staticmethod
    def refuse(message: str, error_type: str) -> ApplicationError:
        return ApplicationError(message, type=error_type, non_retryable=True)

    def heartbeat(self) -> float:
        return self.input.heartbeat_seconds()

    def velero_name(self, purpose: str) -> str:
        """A Velero object name that is the same on every retry of this run and new in the next run."""
        return f"{purpose}-{self.input.cluster}"[:54] + f"-{workflow.info().run_id[:8]}"

    async def load_pair(self, *, moving_to: str) -> DrPair:
        """The pair, and both clusters' records; `moving_to` is the side that will serve."""
        self.state.step = "looking the pair up in the inventory"
        pair: DrPair = await call_or_refuse(Activity.GET_DR_PAIR, self.input.cluster, DrPair, error_type=ErrorType.NOT_A_DR_PAIR)
        names = (pair.primary, pair.standby) if moving_to == "standby" else (pair.standby, pair.primary)
        self._source = await call_or_refuse(Activity.GET_CLUSTER, names[0], ClusterRecord, error_type=ErrorType.UNKNOWN_CLUSTER)
        self._target = await call_or_refuse(Activity.GET_CLUSTER, names[1], ClusterRecord, error_type=ErrorType.UNKNOWN_CLUSTER)
        self.state.source, self.state.target = self.source.name, self.target.name
        return pair

    async def hold(self, cluster: str) -> None:
        """Take the other cluster's lock for the whole run: its operation id, held by a child."""
        held = operation_ids.operation_id(cluster)
        self.state.step = f"holding {cluster} for this {self.trail.operation}"
        try:
            self.held = await workflow.start_child_workflow(
                WorkflowName.CLUSTER_HOLD, ClusterHoldInput(cluster=cluster, held_by=workflow.info().workflow_id, operation=self.trail.operation,
                                                ticket=self.input.ticket, requested_by=self.input.requested_by),
                id=held, result_type=ClusterHoldResult, parent_close_policy=workflow.ParentClosePolicy.TERMINATE)
        except WorkflowAlreadyStartedError:
            raise self.refuse(f"{cluster} is busy: operation {held} runs on it. Wait for it (regatta op status {held})"
                               f" or stop it, then start the {self.trail.operation} again", "ClusterBusy") from None

    async def release(self) -> None:
        if self.held is not None:
            await self.held.signal("release")
            await self.held
            self.held = None

    async def check_target(self, *, wanted: dict[str, int]) -> None:
        """Refuse, before anything changes, a target that is unhealthy, on an incompatible
        version, or without room for the pods it must start."""
        self.trail.step("checking", f"checking that {self.target.name} can take the workloads over")
        ref = self.target.ref
        described: ClusterState = await call(Activity.DESCRIBE_CLUSTER, ref, ClusterState)
        inspection: ClusterInspection = await call(Activity.INSPECT_CLUSTER, ref, ClusterInspection)
        present: WorkloadInventory = await call(Activity.INSPECT_WORKLOADS, ref, WorkloadInventory)
        shortfall = recovery.capacity_shortfall(
            needed=recovery.pods_to_place(wanted=wanted, present=present.deployments, drill=self.state.drill),
            free=recovery.free_pod_slots(inspection.nodes),
            pods_per_node=max((n.allocatable_pods for n in inspection.nodes), default=0))
        problems = recovery.target_problems(
            name=self.target.name, health=inspection.problems, source_version=self.source.control_plane_version,
            target_version=described.control_plane_version, shortfall=shortfall, override_capacity=self.input.override_capacity)
        if problems:
            raise ApplicationError("; ".join(problems), type=ErrorType.STANDBY_NOT_READY, non_retryable=True)
        if shortfall:
            await self.trail.record("capacity-override", "approved", f"{self.target.name}: {shortfall}; going ahead because:"
                              f" {self.input.override_capacity}")

    async def approval_gate(self) -> bool:
        """Wait for a second person where required. True when an abort came instead."""
        self.state.approval_required = recovery.dr_needs_approval(
            self.source.environment if self.trail.operation == WorkflowName.DR_FAILOVER else self.target.environment,
            requested=self.input.require_approval, drill=self.state.drill)
        if self.state.approval_required:
            self.trail.step("awaiting_approval", f"waiting for someone other than {self.input.requested_by} to approve")
            try:
                await workflow.wait_condition(lambda: bool(self.state.approved_by) or self.state.abort_requested,
                                              timeout=timedelta(seconds=self.input.approval_timeout_seconds))
            except TimeoutError:
                raise ApplicationError(f"no approval within {self.input.approval_timeout_seconds:g}s; start again when"
                                       " someone can approve", type=ErrorType.APPROVAL_TIMEOUT, non_retryable=True) from None
        return self.state.abort_requested

    async def fence(self, ref: ClusterRef, *, only: list[str] | None, must_reach: bool) -> None:
        self.trail.step("fencing", f"fencing {ref.name}: scaling its workloads to zero")
        report: FenceReport = await call(
            Activity.FENCE_WORKLOADS, FenceWorkloads(cluster=ref, only=only, reach_timeout_seconds=self.input.fence_timeout_seconds),
            FenceReport, timeout=self.input.fence_timeout_seconds + 120, heartbeat=self.heartbeat())
        if not report.reachable:
            if must_reach:
                raise ApplicationError(f"cannot fence {ref.name}: {report.error}", type=ErrorType.FENCE_FAILED, non_retryable=True)
            self.state.fencing = f"skipped: {report.error}; the region looks down, so nothing there can take writes we can stop"
            await self.trail.record("fence", "skipped", self.state.fencing)
            return
        self.state.fenced = report.fenced
        self.state.fencing = f"fenced {len(report.fenced)} deployments on {ref.name}"
        self.state.fenced_at = workflow.now()
        await self.trail.record("fence", "succeeded", f"{self.state.fencing}: "
                          + ", ".join(f"{k} ({n})" for k, n in sorted(report.fenced.items())))

    async def restore(self, ref: ClusterRef, backup: BackupInfo, *, purpose: str, mapping: dict[str, str],
                       included: list[str] | None = None) -> RestoreReport:
        self.trail.step("restoring", f"restoring backup {backup.name} on {ref.name}")
        report: RestoreReport = await call(
            Activity.RESTORE_WORKLOADS,
            RestoreWorkloads(cluster=ref, backup=backup.name, restore_name=self.velero_name(purpose),
                             namespace_mapping=mapping, included_namespaces=included,
                             timeout_seconds=self.input.restore_timeout_seconds,
                             poll_interval_seconds=self.input.poll_interval_seconds),
            RestoreReport, timeout=self.input.restore_timeout_seconds + 120, heartbeat=self.heartbeat())
        self.state.restored = report.deployments
        await self.trail.record("restore", "succeeded", f"backup {backup.name} (taken {backup.completed_at.isoformat()}) on"
                          f" {ref.name}: {len(report.deployments)} deployments, {len(report.namespaces)} new namespaces")
        return report

    async def wait_ready(self, ref: ClusterRef, deployments: list[str]) -> None:
        self.trail.step("verifying", f"waiting until {len(deployments)} workloads answer on {ref.name}")
        await call(
            Activity.WAIT_WORKLOADS_READY,
            WaitWorkloadsReady(cluster=ref, deployments=sorted(deployments), timeout_seconds=self.input.ready_timeout_seconds,
                               poll_interval_seconds=self.input.poll_interval_seconds),
            None, timeout=self.input.ready_timeout_seconds + 120, heartbeat=self.heartbeat())

    async def shift_traffic(self) -> None:
        """Every service whose record sends the source traffic now sends it to the target. The
        change id is fixed per run and service, and a record already shifted is left alone, so a
        retry or a new worker never shifts twice."""
        self.trail.step("shifting_traffic", f"shifting traffic from {self.source.name} to {self.target.name}")
        records: list[TrafficRecord] = await call(Activity.LIST_TRAFFIC, self.source.name, list[TrafficRecord])
        for record in records:
            weights = recovery.shifted_weights(record.weights, source=self.source.name, target=self.target.name)
            if weights is None:
                self.state.traffic[record.service] = record.weights
                continue
            self.state.step = f"shifting traffic of {record.service}"
            changed: TrafficRecord = await call(Activity.SET_TRAFFIC, SetTraffic(
                service=record.service, weights=weights, change_id=f"{workflow.info().workflow_id}/{workflow.info().run_id}/{record.service}"),
                TrafficRecord)
            self.state.traffic[record.service] = changed.weights
        await self.trail.record("traffic", "succeeded", "; ".join(
            f"{service}: " + " ".join(f"{cluster}={weight}" for cluster, weight in weights.items())
            for service, weights in sorted(self.state.traffic.items()))
                          or f"no service sent traffic to {self.source.name}")

    def measure(self, backup: BackupInfo | None) -> None:
        self.state.verified_at = workflow.now()
        assert self.state.started_at is not None  # set when the run begins
        self.state.rto_seconds, self.state.rpo_seconds = recovery.recovery_objectives(
            started=self.state.started_at, verified=self.state.verified_at,
            backup_completed=backup.completed_at if backup else None, writes_stopped=self.state.fenced_at)

    async def record_serving(self, serving: str) -> None:
        self.trail.step("recording", f"recording that the {serving} serves")
        await call(Activity.RECORD_DR_SERVING, RecordDrServing(
            primary=self.input.cluster, serving=serving, operation_id=workflow.info().workflow_id), None)

    async def run(self, body: Callable[[], Awaitable[str]]) -> DRResult:
        """Run the steps; turn any stop into a failed (or refused) run with its reason audited."""
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=self.input.cluster)
        self.state.started_at = workflow.now()
        try:
            outcome = await body()
        except (ActivityError, ApplicationError) as failure:
            stop = stop_of(failure, where=self.state.step, refused=self.state.phase == "checking",
                           default_type=f"{self.trail.operation}Failed")
            self.state.message = stop.message + ("; nothing was changed" if stop.refused else "")
            self.trail.step("failed", stop.where)
            await self.trail.record(self.trail.operation, "refused" if stop.refused else "failed", self.state.message)
            await self.release()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise stop.error(self.state.message) from None
        await self.trail.record(self.trail.operation, outcome, self.state.message)
        await self.release()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DRResult(
            operation_id=self.state.operation_id, operation=self.trail.operation, cluster=self.input.cluster,
            source=self.state.source, target=self.state.target, outcome=outcome, drill=self.state.drill,
            rto_seconds=self.state.rto_seconds, rpo_seconds=self.state.rpo_seconds,
            backup=self.state.backup.name if self.state.backup else None, fencing=self.state.fencing,
            restored=self.state.restored, scaled=self.state.scaled, traffic=self.state.traffic,
            approved_by=self.state.approved_by, message=self.state.message)

    def aborted(self) -> str:
        self.state.message = f"aborted ({self.state.abort_reason or 'no reason given'}) before anything changed"
        self.trail.step("aborted", "aborted")
        return "aborted"

    def objectives(self) -> str:
        rpo = f"{self.state.rpo_seconds:.0f}s" if self.state.rpo_seconds is not None else "unknown"
        return f"RTO {self.state.rto_seconds:.1f}s, RPO {rpo}"
