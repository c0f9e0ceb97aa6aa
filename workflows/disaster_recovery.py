"""DRFailover and DRFailback: move a service between a primary and its standby the way the DR
runbook says, and measure how long it took (RTO) and how much was lost (RPO).

DRFailover (the primary's region is failing):
1. Check the standby: healthy, on a compatible version, with room for the primary's workloads
   as the newest backup records them. Refuse before anything changes if it is not.
2. Wait for a second person's approval where the environment requires it (prod always).
3. Fence the primary, so two sites never take writes at once: scale its workloads to zero,
   noting what ran. A primary that cannot be reached is not fenced, and the run says why.
4. Restore the primary's workloads on the standby from the newest backup; scale up the copies
   pre-deployed there.
5. Wait until they answer, shift every service's traffic to the standby, and verify.
6. Record RTO (start to verified) and RPO (age of the backup when writes stopped), the pair's
   new serving side, and every step in the audit trail.

A drill (`drill: true`) restores into `dr-drill-*` namespaces beside the real ones, verifies,
reports the RTO a failover would have had, and removes what it restored: nothing is fenced and
no traffic moves.

DRFailback (the primary is healthy again) runs the same steps the other way: a fresh backup of
the standby (the resync point, so state created there is not lost), fence the standby's copies,
restore what is new onto the primary and give the primary's fenced workloads their replicas
back, verify, shift traffic home, and return the standby to waiting.

Until fencing begins an `abort` stops either with nothing changed; from then on they finish,
because a half-moved service is worse than either side.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

from workflows.runbook import Runbook, parse_input

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
        FenceReport,
        FenceWorkloads,
        LatestBackup,
        RecordDrServing,
        RemoveRestored,
        RestoreReport,
        RestoreWorkloads,
        SetReplicas,
        SetTraffic,
        TrafficRecord,
        VeleroBackup,
        WaitWorkloadsReady,
        WorkloadInventory,
    )
    from regatta.rules import operation_ids, recovery

FAILOVER_EXAMPLE = '{"cluster": "eks-prod-use1", "standby": "eks-dr-usw2", "ticket": "INC-42"}'
FAILBACK_EXAMPLE = '{"cluster": "eks-prod-use1", "ticket": "CHG-43"}'
# Phases after which an abort would leave the service half moved.
PAST_RETURN = ("backing_up", "fencing", "restoring", "verifying", "shifting_traffic", "returning_standby", "recording",
               "cleaning_up", "succeeded", "aborted", "failed")


class DisasterRecoveryRunbook(Runbook):
    """What failover and failback share: the pair lookup, the check of the side that takes over,
    the approval gate, restore, traffic shift, verification and the result."""

    input: DRFailoverInput | DRFailbackInput
    state: DRProgress

    def _setup(self, model, raw, example: str, *, operation: str) -> None:
        self.input, self.input_error = parse_input(model, raw, example)
        self.state = DRProgress(operation=operation, cluster=self.input.cluster, source="?", target="?")
        self.ref = None
        self.audit_seq = 0
        self.source: ClusterRecord | None = None
        self.target: ClusterRecord | None = None
        self.hold: workflow.ChildWorkflowHandle | None = None

    @property
    def cluster_name(self) -> str:
        return self.input.cluster

    @workflow.query
    def progress(self) -> DRProgress:
        return self.state

    @workflow.update
    async def approve(self, request: ApproveInput) -> DRProgress:
        self.state.approved_by = request.approver
        await self._audit("approve", "approved", f"by {request.approver}: {request.comment}".rstrip(": "))
        return self.state

    @approve.validator
    def validate_approve(self, request: ApproveInput) -> None:
        self._check_approval(request.approver, what=self.operation)

    @workflow.update
    async def abort(self, request: AbortInput) -> DRProgress:
        self.state.abort_requested = True
        self.state.abort_reason = request.reason or None
        await self._audit("abort", "abort_requested", f"by {request.requested_by}: {request.reason}".rstrip(": "))
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        if self.state.phase in PAST_RETURN:
            raise ApplicationError(f"cannot abort: the {self.operation} is {self.state.phase}"
                                   + ("" if self.state.phase in ("succeeded", "aborted", "failed") else
                                      " and will finish; a half-moved service is worse than either side"),
                                   type="TooLateToAbort")
        if self.state.abort_requested:
            raise ApplicationError("an abort is already under way", type="AbortRequested")

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _refuse(message: str, error_type: str) -> ApplicationError:
        return ApplicationError(message, type=error_type, non_retryable=True)

    def _velero_name(self, purpose: str) -> str:
        """A Velero object name that is the same on every retry of this run and new in the next run."""
        return f"{purpose}-{self.input.cluster}"[:54] + f"-{workflow.info().run_id[:8]}"

    async def _load_pair(self, *, moving_to: str) -> DrPair:
        """The pair, and both clusters' records; `moving_to` is the side that will serve."""
        self.state.step = "looking the pair up in the inventory"
        pair: DrPair = await self._call_or_refuse(Activity.GET_DR_PAIR, self.input.cluster, DrPair, error_type="NotADrPair")
        names = (pair.primary, pair.standby) if moving_to == "standby" else (pair.standby, pair.primary)
        self.source = await self._call_or_refuse(Activity.GET_CLUSTER, names[0], ClusterRecord, error_type="UnknownCluster")
        self.target = await self._call_or_refuse(Activity.GET_CLUSTER, names[1], ClusterRecord, error_type="UnknownCluster")
        self.state.source, self.state.target = self.source.name, self.target.name
        return pair

    async def _hold(self, cluster: str) -> None:
        """Take the other cluster's lock for the whole run: its operation id, held by a child."""
        held = operation_ids.operation_id(cluster)
        self.state.step = f"holding {cluster} for this {self.operation}"
        try:
            self.hold = await workflow.start_child_workflow(
                "ClusterHold", ClusterHoldInput(cluster=cluster, held_by=workflow.info().workflow_id, operation=self.operation,
                                                ticket=self.input.ticket, requested_by=self.input.requested_by),
                id=held, result_type=ClusterHoldResult, parent_close_policy=workflow.ParentClosePolicy.TERMINATE)
        except WorkflowAlreadyStartedError:
            raise self._refuse(f"{cluster} is busy: operation {held} runs on it. Wait for it (regatta op status {held})"
                               f" or stop it, then start the {self.operation} again", "ClusterBusy") from None

    async def _release(self) -> None:
        if self.hold is not None:
            await self.hold.signal("release")
            await self.hold
            self.hold = None

    async def _check_target(self, *, wanted: dict[str, int]) -> None:
        """Refuse, before anything changes, a target that is unhealthy, on an incompatible
        version, or without room for the pods it must start."""
        self._step("checking", f"checking that {self.target.name} can take the workloads over")
        ref = self.target.ref
        described: ClusterState = await self._call(Activity.DESCRIBE_CLUSTER, ref, ClusterState)
        inspection: ClusterInspection = await self._call(Activity.INSPECT_CLUSTER, ref, ClusterInspection)
        present: WorkloadInventory = await self._call(Activity.INSPECT_WORKLOADS, ref, WorkloadInventory)
        shortfall = recovery.capacity_shortfall(
            needed=recovery.pods_to_place(wanted=wanted, present=present.deployments, drill=self.state.drill),
            free=recovery.free_pod_slots(inspection.nodes),
            pods_per_node=max((n.allocatable_pods for n in inspection.nodes), default=0))
        problems = recovery.target_problems(
            name=self.target.name, health=inspection.problems, source_version=self.source.control_plane_version,
            target_version=described.control_plane_version, shortfall=shortfall, override_capacity=self.input.override_capacity)
        if problems:
            raise ApplicationError("; ".join(problems), type="StandbyNotReady", non_retryable=True)
        if shortfall:
            await self._audit("capacity-override", "approved", f"{self.target.name}: {shortfall}; going ahead because:"
                              f" {self.input.override_capacity}")

    async def _approval_gate(self) -> bool:
        """Wait for a second person where required. True when an abort came instead."""
        self.state.approval_required = recovery.dr_needs_approval(
            self.source.environment if self.operation == "DRFailover" else self.target.environment,
            requested=self.input.require_approval, drill=self.state.drill)
        if self.state.approval_required:
            self._step("awaiting_approval", f"waiting for someone other than {self.input.requested_by} to approve")
            try:
                await workflow.wait_condition(lambda: bool(self.state.approved_by) or self.state.abort_requested,
                                              timeout=timedelta(seconds=self.input.approval_timeout_seconds))
            except TimeoutError:
                raise ApplicationError(f"no approval within {self.input.approval_timeout_seconds:g}s; start again when"
                                       " someone can approve", type="ApprovalTimeout", non_retryable=True) from None
        return self.state.abort_requested

    async def _fence(self, ref: ClusterRef, *, only: list[str] | None, must_reach: bool) -> None:
        self._step("fencing", f"fencing {ref.name}: scaling its workloads to zero")
        report: FenceReport = await self._call(
            Activity.FENCE_WORKLOADS, FenceWorkloads(cluster=ref, only=only, reach_timeout_seconds=self.input.fence_timeout_seconds),
            FenceReport, timeout=self.input.fence_timeout_seconds + 120, heartbeat=self._heartbeat())
        if not report.reachable:
            if must_reach:
                raise ApplicationError(f"cannot fence {ref.name}: {report.error}", type="FenceFailed", non_retryable=True)
            self.state.fencing = f"skipped: {report.error}; the region looks down, so nothing there can take writes we can stop"
            await self._audit("fence", "skipped", self.state.fencing)
            return
        self.state.fenced = report.fenced
        self.state.fencing = f"fenced {len(report.fenced)} deployments on {ref.name}"
        self.state.fenced_at = workflow.now()
        await self._audit("fence", "succeeded", f"{self.state.fencing}: "
                          + ", ".join(f"{k} ({n})" for k, n in sorted(report.fenced.items())))

    async def _restore(self, ref: ClusterRef, backup: BackupInfo, *, purpose: str, mapping: dict[str, str],
                       included: list[str] | None = None) -> RestoreReport:
        self._step("restoring", f"restoring backup {backup.name} on {ref.name}")
        report: RestoreReport = await self._call(
            Activity.RESTORE_WORKLOADS,
            RestoreWorkloads(cluster=ref, backup=backup.name, restore_name=self._velero_name(purpose),
                             namespace_mapping=mapping, included_namespaces=included,
                             timeout_seconds=self.input.restore_timeout_seconds,
                             poll_interval_seconds=self.input.poll_interval_seconds),
            RestoreReport, timeout=self.input.restore_timeout_seconds + 120, heartbeat=self._heartbeat())
        self.state.restored = report.deployments
        await self._audit("restore", "succeeded", f"backup {backup.name} (taken {backup.completed_at.isoformat()}) on"
                          f" {ref.name}: {len(report.deployments)} deployments, {len(report.namespaces)} new namespaces")
        return report

    async def _wait_ready(self, ref: ClusterRef, deployments: list[str]) -> None:
        self._step("verifying", f"waiting until {len(deployments)} workloads answer on {ref.name}")
        await self._call(
            Activity.WAIT_WORKLOADS_READY,
            WaitWorkloadsReady(cluster=ref, deployments=sorted(deployments), timeout_seconds=self.input.ready_timeout_seconds,
                               poll_interval_seconds=self.input.poll_interval_seconds),
            None, timeout=self.input.ready_timeout_seconds + 120, heartbeat=self._heartbeat())

    async def _shift_traffic(self) -> None:
        """Every service whose record sends the source traffic now sends it to the target. The
        change id is fixed per run and service, and a record already shifted is left alone, so a
        retry or a new worker never shifts twice."""
        self._step("shifting_traffic", f"shifting traffic from {self.source.name} to {self.target.name}")
        records: list[TrafficRecord] = await self._call(Activity.LIST_TRAFFIC, self.source.name, list[TrafficRecord])
        for record in records:
            weights = recovery.shifted_weights(record.weights, source=self.source.name, target=self.target.name)
            if weights is None:
                self.state.traffic[record.service] = record.weights
                continue
            self.state.step = f"shifting traffic of {record.service}"
            changed: TrafficRecord = await self._call(Activity.SET_TRAFFIC, SetTraffic(
                service=record.service, weights=weights, change_id=f"{workflow.info().workflow_id}/{workflow.info().run_id}/{record.service}"),
                TrafficRecord)
            self.state.traffic[record.service] = changed.weights
        await self._audit("traffic", "succeeded", "; ".join(
            f"{service}: " + " ".join(f"{cluster}={weight}" for cluster, weight in weights.items())
            for service, weights in sorted(self.state.traffic.items()))
                          or f"no service sent traffic to {self.source.name}")

    def _measure(self, backup: BackupInfo | None) -> None:
        self.state.verified_at = workflow.now()
        self.state.rto_seconds, self.state.rpo_seconds = recovery.recovery_objectives(
            started=self.state.started_at, verified=self.state.verified_at,
            backup_completed=backup.completed_at if backup else None, writes_stopped=self.state.fenced_at)

    async def _record_serving(self, serving: str) -> None:
        self._step("recording", f"recording that the {serving} serves")
        await self._call(Activity.RECORD_DR_SERVING, RecordDrServing(
            primary=self.input.cluster, serving=serving, operation_id=workflow.info().workflow_id), None)  # type: ignore[arg-type]

    async def _runbook(self, body) -> DRResult:
        """Run the steps; turn any stop into a failed (or refused) run with its reason audited."""
        self._check_start()
        self.state.started_at = workflow.now()
        try:
            outcome = await body()
        except (ActivityError, ApplicationError) as failure:
            cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
            refused = self.state.phase == "checking"
            self.state.message = (f"{'refused' if refused else 'stopped'} during {self.state.step}: "
                                  f"{getattr(cause, 'message', cause)}")
            if refused:
                self.state.message += "; nothing was changed"
            self._step("failed", self.state.step)
            await self._audit(self.operation, "refused" if refused else "failed", self.state.message)
            await self._release()
            raise ApplicationError(self.state.message, type=getattr(cause, "type", None) or f"{self.operation}Failed",
                                   non_retryable=True) from None
        await self._audit(self.operation, outcome, self.state.message)
        await self._release()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DRResult(
            operation_id=self.state.operation_id, operation=self.operation, cluster=self.input.cluster,  # type: ignore[arg-type]
            source=self.state.source, target=self.state.target, outcome=outcome, drill=self.state.drill,
            rto_seconds=self.state.rto_seconds, rpo_seconds=self.state.rpo_seconds,
            backup=self.state.backup.name if self.state.backup else None, fencing=self.state.fencing,
            restored=self.state.restored, scaled=self.state.scaled, traffic=self.state.traffic,
            approved_by=self.state.approved_by, message=self.state.message)

    def _aborted(self) -> str:
        self.state.message = f"aborted ({self.state.abort_reason or 'no reason given'}) before anything changed"
        self._step("aborted", "aborted")
        return "aborted"

    def _objectives(self) -> str:
        rpo = f"{self.state.rpo_seconds:.0f}s" if self.state.rpo_seconds is not None else "unknown"
        return f"RTO {self.state.rto_seconds:.1f}s, RPO {rpo}"


@workflow.defn(name="DRFailover")
class DRFailover(DisasterRecoveryRunbook):
    operation = "DRFailover"

    @workflow.init
    def __init__(self, input: DRFailoverInput | dict) -> None:
        self._setup(DRFailoverInput, input, FAILOVER_EXAMPLE, operation="DRFailover")
        self.state.drill = bool(self.input.drill)

    @workflow.run
    async def run(self, input: DRFailoverInput | dict) -> DRResult:
        return await self._runbook(self._failover)

    async def _failover(self) -> str:
        input = self.input
        if input.standby == input.cluster:
            raise self._refuse(f"{input.cluster} cannot fail over to itself; name its standby", "InvalidInput")
        if input.override_capacity is not None and not input.override_capacity.strip():
            raise self._refuse("override_capacity needs a reason saying why the standby may run short", "InvalidInput")
        pair = await self._load_pair(moving_to="standby")
        if pair.standby != input.standby:
            raise self._refuse(f"the standby of {pair.primary} is {pair.standby}, not {input.standby}", "NotADrPair")
        if pair.serving == "standby" and not input.drill:
            raise self._refuse(f"{pair.standby} already serves {pair.primary}'s workloads (since {pair.last_operation});"
                               f" fail back first: regatta failback {pair.primary}", "AlreadyFailedOver")
        self._tag(self.source.environment)
        await self._hold(self.target.name)
        kind = "drill" if input.drill else "failover"
        await self._audit(kind, "started", f"{self.source.name} → {self.target.name}, requested by {input.requested_by}")

        self._step("checking", f"finding the newest backup of {self.source.name}")
        backup: BackupInfo = await self._call(Activity.LATEST_BACKUP, LatestBackup(
            cluster=self.target.ref, source=self.source.name), BackupInfo)
        self.state.backup = backup
        await self._check_target(wanted=backup.replicas)
        if await self._approval_gate():
            return self._aborted()

        if input.drill:
            self.state.fencing = "not in a drill"
        else:
            await self._fence(self.source.ref, only=None, must_reach=False)

        namespaces = {key.split("/", 1)[0] for key in backup.replicas}
        mapping = recovery.drill_namespaces(namespaces) if input.drill else {}
        restored = await self._restore(self.target.ref, backup, purpose=kind, mapping=mapping)
        if not input.drill:
            present: WorkloadInventory = await self._call(Activity.INSPECT_WORKLOADS, self.target.ref, WorkloadInventory)
            self.state.scaled = recovery.scale_up_plan(wanted=backup.replicas, present=present.deployments)
            if self.state.scaled:
                self.state.step = f"scaling up {len(self.state.scaled)} pre-deployed workloads"
                await self._call(Activity.SET_REPLICAS, SetReplicas(cluster=self.target.ref, replicas=self.state.scaled),
                                 list[str])
                await self._audit("scale-up", "succeeded", ", ".join(f"{k} → {n}" for k, n in sorted(self.state.scaled.items())))
        # Traffic goes only to workloads that answer; the check after the shift is the verification.
        serving = sorted(set(restored.deployments) | set(self.state.scaled))
        await self._wait_ready(self.target.ref, serving)
        if not input.drill:
            await self._shift_traffic()
            await self._wait_ready(self.target.ref, serving)
        self._measure(backup)

        if input.drill:
            self._step("cleaning_up", f"removing the drill's {len(restored.namespaces)} namespaces from {self.target.name}")
            await self._call(Activity.REMOVE_RESTORED, RemoveRestored(cluster=self.target.ref, namespaces=restored.namespaces),
                             list[str])
            self.state.message = (f"drill: {self.target.name} could take over {self.source.name} with {self._objectives()}"
                                  f" (backup {backup.name}); nothing was fenced and no traffic moved")
        else:
            await self._record_serving("standby")
            self.state.message = (f"{self.target.name} serves {self.source.name}'s workloads: {self._objectives()}"
                                  f" (backup {backup.name}); "
                                  + (self.state.fencing if self.state.fenced_at else f"{self.source.name} not fenced (unreachable)"))
        self._step("succeeded", "done")
        return "succeeded"


@workflow.defn(name="DRFailback")
class DRFailback(DisasterRecoveryRunbook):
    operation = "DRFailback"

    @workflow.init
    def __init__(self, input: DRFailbackInput | dict) -> None:
        self._setup(DRFailbackInput, input, FAILBACK_EXAMPLE, operation="DRFailback")

    @workflow.run
    async def run(self, input: DRFailbackInput | dict) -> DRResult:
        return await self._runbook(self._failback)

    async def _failback(self) -> str:
        input = self.input
        if input.override_capacity is not None and not input.override_capacity.strip():
            raise self._refuse("override_capacity needs a reason saying why the primary may run short", "InvalidInput")
        pair = await self._load_pair(moving_to="primary")
        if pair.serving != "standby":
            raise self._refuse(f"{pair.primary} serves its own workloads already; there is nothing to fail back",
                               "NotFailedOver")
        self._tag(self.target.environment)
        await self._hold(self.source.name)
        await self._audit("failback", "started", f"{self.source.name} → {self.target.name}, requested by {input.requested_by}")

        self._step("checking", f"reading what runs on {self.source.name}")
        on_standby: WorkloadInventory = await self._call(Activity.INSPECT_WORKLOADS, self.source.ref, WorkloadInventory)
        # What the failover put to work on the standby, and nothing the standby runs for itself.
        moved = {key: state.replicas for key, state in on_standby.deployments.items()
                 if state.restored_by or state.dr_replicas is not None}
        await self._check_target(wanted=moved)
        if await self._approval_gate():
            return self._aborted()

        self._step("backing_up", f"taking a backup of {self.source.name}: the state it created while it served")
        backup: BackupInfo = await self._call(Activity.TAKE_BACKUP, VeleroBackup(
            cluster=self.source.ref, name=self._velero_name("resync"),
            timeout_seconds=input.restore_timeout_seconds, poll_interval_seconds=input.poll_interval_seconds),
            BackupInfo, timeout=input.restore_timeout_seconds + 120, heartbeat=None)
        self.state.backup = backup
        await self._audit("backup", "succeeded", f"resync point {backup.name} of {self.source.name}")
        await self._fence(self.source.ref, only=sorted(moved), must_reach=True)

        namespaces = sorted({key.split("/", 1)[0] for key in moved})
        # Only the namespaces the failover put to work: never what the standby runs for itself.
        restored = (await self._restore(self.target.ref, backup, purpose="failback", mapping={}, included=namespaces)
                    if namespaces else RestoreReport(restore="", deployments=[], namespaces=[]))
        self.state.step = f"giving {self.target.name}'s fenced workloads their replicas back"
        self.state.scaled = await self._call(Activity.UNFENCE_WORKLOADS, self.target.ref, dict[str, int])
        await self._audit("unfence", "succeeded", ", ".join(f"{k} → {n}" for k, n in sorted(self.state.scaled.items()))
                          or "nothing was fenced")
        serving = sorted(set(restored.deployments) | {k for k, n in self.state.scaled.items() if n})
        await self._wait_ready(self.target.ref, serving)
        await self._shift_traffic()
        await self._wait_ready(self.target.ref, serving)
        self._measure(backup)

        self._step("returning_standby", f"returning {self.source.name} to standby")
        after: WorkloadInventory = await self._call(Activity.INSPECT_WORKLOADS, self.source.ref, WorkloadInventory)
        to_zero, restored_namespaces, restored_deployments = recovery.warm_standby_plan(after)
        await self._call(Activity.SET_REPLICAS, SetReplicas(cluster=self.source.ref, replicas=to_zero, clear_fence=True),
                         list[str])
        removed = await self._call(Activity.REMOVE_RESTORED, RemoveRestored(
            cluster=self.source.ref, namespaces=restored_namespaces, deployments=restored_deployments), list[str])
        await self._audit("standby", "succeeded", f"{len(to_zero)} pre-deployed copies at 0; removed {', '.join(removed) or 'nothing'}")
        await self._record_serving("primary")
        self.state.message = (f"{self.target.name} serves its own workloads again: {self._objectives()}"
                              f" (resync backup {backup.name}); {self.source.name} is back on standby")
        self._step("succeeded", "done")
        return "succeeded"
