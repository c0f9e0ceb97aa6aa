"""ClusterRollback: take a cluster's last upgrade back, one minor, where its cloud allows, the way an SRE's
runbook does it (regatta/rules/rollback.py says where that is: EKS, within 7 days):

1. Preflight: the cloud records an in-place upgrade of the control plane to the minor it runs, whose window is
   still open; no budget forbids every eviction; the cluster is healthy.
2. Each node pool ahead of the previous minor, one at a time: back to it by the cloud's own rolling update (a
   new node, a drain through the eviction API under every budget, the old node removed); health gate.
3. The control plane back to the previous minor (EKS: a VersionRollback); health gate.
4. Record the versions in the inventory and the outcome in the audit trail. The EKS managed add-ons stay where
   the upgrade moved them (EKS does not take them back, and they support both minors).

Between any two steps the operator may pause, resume, or abort (the step in flight finishes). Progress is a
Query. Every side effect is an activity.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.pieces.calls import ClusterCalls, call, call_inventory, look_up_cluster, request_token
from workflows.pieces.controls import PauseAndAbort
from workflows.pieces.failures import stop_of
from workflows.pieces.final_progress import keep_final_progress
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.holds import refuse_or_override_hold
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ClusterRef,
        ClusterRollbackInput,
        ClusterRollbackProgress,
        ClusterRollbackResult,
        ClusterState,
        ErrorType,
        PauseInput,
        PoolProgress,
        RecordClusterVersions,
        ResumeInput,
        UpgradeReads,
    )
    from regatta.models.operations import WorkflowName
    from regatta.rules import disruption, refusals, rollback

EXAMPLE = '{"cluster": "eks-prod-use1", "reason": "1.31 breaks the payments controller", "ticket": "CHG-9"}'


@workflow.defn(name=WorkflowName.CLUSTER_ROLLBACK)
class ClusterRollback:
    @workflow.init
    def __init__(self, input: ClusterRollbackInput | dict) -> None:
        self.input, self.input_error = parse_input(ClusterRollbackInput, input, EXAMPLE)
        self.state = ClusterRollbackProgress(cluster=self.input.cluster, reason=self.input.reason)
        self.ref: ClusterRef | None = None
        self.described: ClusterState | None = None
        self.insights_accepted = False  # EKS's rollback insights an operator went past: the control plane goes with force
        self.trail = Trail(operation=WorkflowName.CLUSTER_ROLLBACK, cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)
        self.clock = FleetClock()
        self.controls = PauseAndAbort(trail=self.trail, state=lambda: self.state, what="rollback")

    @workflow.query
    def progress(self) -> ClusterRollbackProgress:
        return self.state

    @workflow.update
    async def pause(self, request: PauseInput) -> ClusterRollbackProgress:
        await self.controls.pause(request)
        return self.state

    @pause.validator
    def validate_pause(self, request: PauseInput) -> None:
        self.controls.validate_pause(request)

    @workflow.update
    async def resume(self, request: ResumeInput) -> ClusterRollbackProgress:
        await self.controls.resume(request)
        return self.state

    @resume.validator
    def validate_resume(self, request: ResumeInput) -> None:
        self.controls.validate_resume(request)

    @workflow.update
    async def abort(self, request: AbortInput) -> ClusterRollbackProgress:
        await self.controls.abort(request)
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        self.controls.validate_abort(request)

    def waiting_for_agent(self, text: str | None) -> None:
        self.state.waiting_for = text

    # ------------------------------------------------------------------ steps

    def _ref(self) -> ClusterRef:
        assert self.ref is not None, "the cluster is looked up before anything acts on it"
        return self.ref

    @property
    def calls(self) -> ClusterCalls:
        return ClusterCalls(self._ref(), self.input)

    async def _hold_or_stop(self) -> bool:
        """Between steps: wait while paused; say whether an abort asked us to stop here."""
        return await self.controls.hold_while_paused()

    async def _preflight(self) -> rollback.RollbackScope:
        self.trail.step("preflight", "reading the control plane, its last version change, node pools, nodes and budgets")
        if self._ref().site is not None:
            raise ApplicationError(f"{self.input.cluster} sits behind the site agent of {self._ref().site}: Regatta does"
                                   " not roll such clusters back yet; use the cloud's console",
                                   type=ErrorType.CANNOT_ROLL_BACK, non_retryable=True)
        reads: UpgradeReads = await call(Activity.READ_FOR_ROLLBACK, self._ref(), UpgradeReads)
        state = reads.state
        try:
            scope = rollback.plan_rollback(provider=self._ref().provider, control_plane=state.control_plane_version,
                                           node_pools=state.node_pools, last_change=reads.last_change,
                                           now=await self.clock.now(), insights=reads.insights,
                                           accept_insights=self.input.accept_insights)
            disruption.refuse_unsatisfiable_pdbs(reads.inspection.pdbs)
        except refusals.Refusal as refusal:
            raise ApplicationError(str(refusal), type=refusal.error_type, non_retryable=True) from None
        if state.status != "ACTIVE":
            raise ApplicationError(f"{self.input.cluster} is {state.status} in the cloud (another change is in flight"
                                   " there); wait until it is ACTIVE and start the rollback again",
                                   type=ErrorType.CLUSTER_BUSY, non_retryable=True)
        if reads.inspection.problems:  # one bad sample is not a verdict: a short gate rather than a refusal
            self.state.step = "health gate before the rollback"
            await self.calls.health_gate("preflight checks", timeout=min(self.input.health_gate_timeout_seconds, 60),
                                         failure_type=ErrorType.CLUSTER_UNHEALTHY)
        if scope.accepted_insights:
            await self.trail.record("insights", "accepted", f"by {self.input.requested_by}: {self.input.accept_insights};"
                                    " " + "; ".join(insight.line() for insight in scope.accepted_insights))
        self.insights_accepted = bool(scope.accepted_insights)
        pools = {pool.name: pool for pool in state.node_pools}
        self.state.from_version, self.state.to_version = scope.from_version, scope.to_version
        self.state.window_ends = scope.window_ends
        self.state.kept = ["the EKS managed add-ons, where the upgrade moved them"]
        self.state.pools = [PoolProgress(name=name, from_version=pools[name].version, to_version=scope.to_version,
                                         strategy="surge", nodes_total=pools[name].node_count)
                            for name in scope.node_pools]
        return scope

    async def _roll_back(self, *, node_pool: str | None, after: str, last: bool) -> None:
        """The cloud's own rolling update of one node pool, or of the control plane, back to the previous minor;
        then the health gate."""
        self.described = None
        report = await self.calls.upgrade(
            target_version=self.state.to_version, request_token=request_token(f"rollback-{node_pool or 'cp'}"),
            node_pool=node_pool, gate_after=after, gate_timeout=self.input.health_gate_timeout_seconds,
            on_gate=lambda: setattr(self.state, "step", f"health gate after {after}"), describe_after=last,
            drain_timeout_seconds=self.input.drain_timeout_seconds if node_pool else None,
            force=node_pool is None and self.insights_accepted)
        self.described = report.state

    async def _record_versions(self) -> ClusterState:
        self.trail.step("recording", "recording the versions in the inventory")
        state = self.described or await call(Activity.DESCRIBE_CLUSTER, self._ref(), ClusterState)
        await call_inventory(Activity.RECORD_CLUSTER_VERSIONS, RecordClusterVersions(
            cluster=self.input.cluster, control_plane_version=state.control_plane_version, node_pools=state.node_pools),
            None)
        return state

    async def _end(self, outcome: str) -> ClusterRollbackResult:
        final = await self._record_versions()
        self.trail.step(outcome, outcome if outcome == "aborted" else "done")
        await self.trail.record("rollback", outcome, self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep_final_progress(self.state)
        return ClusterRollbackResult(operation_id=workflow.info().workflow_id, cluster=self.input.cluster,
                                     outcome=outcome, from_version=self.state.from_version,
                                     to_version=self.state.to_version,
                                     control_plane_version=final.control_plane_version, message=self.state.message)

    async def _stop_failed(self, failure: BaseException) -> None:
        stop = stop_of(failure, where=self.state.step, refused=self.state.phase == "preflight",
                       default_type=ErrorType.UPGRADE_FAILED)
        for progress in self.state.pools:
            if progress.status == "upgrading":
                progress.status = "failed"
        self.state.message = stop.message
        self.trail.step("failed", stop.where)
        await self.trail.record("rollback", "refused" if stop.refused else "failed", self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        keep_final_progress(self.state)
        raise stop.error(self.state.message)

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: ClusterRollbackInput | dict) -> ClusterRollbackResult:
        input = self.input
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=input.cluster)
        record = await look_up_cluster(input.cluster, trail=self.trail, state=self.state)
        self.ref = record.ref
        tag(operation=WorkflowName.CLUSTER_ROLLBACK, cluster=input.cluster, environment=record.environment, ticket=input.ticket)
        await self.trail.record("rollback", "started", f"because {input.reason} (requested by {input.requested_by})")
        if record.hold is not None:  # the inventory hands back a hold only while it is in force
            await refuse_or_override_hold(record.hold, request=input, state=self.state, trail=self.trail, action="rollback")
        try:
            scope = await self._preflight()
            self.trail.step("node_pools", f"taking node pools back to {scope.to_version}")
            for progress in self.state.pools:
                if await self._hold_or_stop():
                    break
                progress.status = "upgrading"
                self.state.step = f"node pool {progress.name} back to {scope.to_version} by the cloud's rolling update"
                await self._roll_back(node_pool=progress.name, after=f"node pool {progress.name}", last=False)
                progress.nodes_done, progress.status = progress.nodes_total, "done"
            if not self.state.abort_requested and not await self._hold_or_stop():
                if await self.clock.now() > scope.window_ends:  # the node groups took longer than the window had left
                    raise ApplicationError(
                        f"the rollback window closed {scope.window_ends:%Y-%m-%d %H:%M}Z while the node groups went back:"
                        f" they run {scope.to_version}, the control plane stays on {scope.from_version}. The way on is"
                        f" upgrading the node groups to {scope.from_version} again",
                        type=ErrorType.CANNOT_ROLL_BACK, non_retryable=True)
                self.trail.step("control_plane", f"taking the control plane back to {scope.to_version}")
                self.state.control_plane = "rolling_back"
                await self._roll_back(node_pool=None, after="the control plane rollback", last=True)
                self.state.control_plane = "done"
        except (ActivityError, ApplicationError) as failure:
            await self._stop_failed(failure)
        if self.state.abort_requested and self.state.control_plane != "done":  # an abort after the last step: done
            done = [p.name for p in self.state.pools if p.status == "done"]
            for progress in self.state.pools:
                if progress.status != "done":
                    progress.status = "aborted"
            until = f" (until {self.state.window_ends:%Y-%m-%d %H:%M}Z)" if self.state.window_ends else ""
            self.state.message = (f"aborted ({self.state.abort_reason or 'no reason given'}); node pools back on"
                                  f" {self.state.to_version}: {', '.join(done) or 'none'}; the control plane stays on"
                                  f" {self.state.from_version}. Start the rollback again to finish it{until}, or"
                                  " upgrade the pools again")
            return await self._end("aborted")
        self.state.message = (f"{input.cluster} is back on {self.state.to_version}, control plane and every node pool;"
                              " the EKS managed add-ons stay where the upgrade moved them")
        return await self._end("succeeded")
