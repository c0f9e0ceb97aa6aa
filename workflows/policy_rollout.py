"""PolicyRollout: give a bundle (policies, configuration, any Kubernetes objects) to the clusters
its targets name, stage by stage, the way a careful platform team would by hand:

1. Plan: every cluster of the fleet with why it is in or out; which stage takes each (one canary
   first by default, never the whole fleet at once); the bundle's content is kept at its revision.
2. Policy-engine objects go out in audit first: an audit pass over every stage, then an enforce
   pass, stage by stage. Before a stage is enforced, its clusters' violations (read fresh from the
   engines' reports) must be within the stage's `max_violations`; after an enforcing stage, its
   violations gate the next one.
3. For each stage: wait for a second person's approval when it asks for one; give its clusters
   the bundle, at most `concurrency` at once: server-side apply as field manager `regatta`, prune
   what the revision drops, wait until every object is observed, record the revision in the
   cluster, then the health gate and the stage's health checks. Soak before the next stage.
4. Halt when more clusters have failed than the failure budget allows: nothing new starts, what
   runs finishes, and the result names every failure.

Controls: pause, resume, abort, approve a stage, skip a cluster with a reason, retry a failed
cluster of the running stage. Every step, cluster and control is in the audit trail.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

from workflows.pieces.calls import ClusterCalls, call, call_or_refuse
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.patches import SKIP_WHILE_WAITING, patched
from workflows.pieces.stage_controls import StageControls
from workflows.pieces.staged_rollout import StagedRollout
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import AbortInput, Activity, PauseInput, ResumeInput, SetTraffic, TrafficRecord
    from regatta.models.controls import RetryClusterInput, SkipClusterInput, StageApproveInput
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName
    from regatta.models.placement import MoveWorkloadsInput, MoveWorkloadsResult
    from regatta.models.policy import (
        BundleSpec,
        CountViolations,
        GiveBundle,
        GiveReport,
        PlanPolicy,
        PolicyClusterState,
        PolicyPlan,
        PolicyRolloutInput,
        PolicyRolloutProgress,
        PolicyRolloutResult,
        PolicyStageState,
    )
    from regatta.rules import bundle_targets, bundles, operation_ids

EXAMPLE = ('{"name": "baseline", "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team",'
           ' "namespace": "kube-system"}, "data": {"owner": "{{ cluster.labels.team }}"}}]}')


@workflow.defn(name=WorkflowName.POLICY_ROLLOUT)
class PolicyRollout:
    @workflow.init
    def __init__(self, input: PolicyRolloutInput | dict) -> None:
        self.input, self.input_error = parse_input(PolicyRolloutInput, input, EXAMPLE)
        # A continued run picks the rollout up where the last one left it.
        self.state = self.input.carried or PolicyRolloutProgress(bundle=str(self.input.name))
        self.trail = Trail(operation=WorkflowName.POLICY_ROLLOUT, cluster=lambda: operation_ids.policy_id(self.input.name),
                           state=lambda: self.state, asking=self.input)
        self.stage_controls = StageControls(trail=self.trail, state=lambda: self.state, what="rollout",
                                      ended_type=ErrorType.ROLLOUT_FINISHED, requested_by=lambda: self.input.requested_by)
        self.clock = FleetClock()
        self.rollout: StagedRollout[PolicyClusterState] = StagedRollout(
            trail=self.trail, state=lambda: self.state, clock=self.clock, requested_by=lambda: self.input.requested_by,
            continue_after_events=lambda: self.input.continue_as_new_after_events)
        self.checks: dict[str, list[str]] = {}  # cluster → its health checks' results in this run
        self.moved = ""  # a placed application: what moving the share of clusters not given it did

    @workflow.query
    def progress(self) -> PolicyRolloutProgress:
        return self.state

    # ------------------------------------------------------------------ controls

    @workflow.update
    async def approve(self, request: StageApproveInput) -> PolicyRolloutProgress:
        await self.stage_controls.approve(self._stage(), request)
        return self.state

    @approve.validator
    def validate_approve(self, request: StageApproveInput) -> None:
        self.stage_controls.validate_approve(request, stage=request.stage)

    @workflow.update
    async def pause(self, request: PauseInput) -> PolicyRolloutProgress:
        await self.stage_controls.pause(request)
        return self.state

    @pause.validator
    def validate_pause(self, request: PauseInput) -> None:
        self.stage_controls.validate_pause(request)

    @workflow.update
    async def resume(self, request: ResumeInput) -> PolicyRolloutProgress:
        await self.stage_controls.resume(request)
        return self.state

    @resume.validator
    def validate_resume(self, request: ResumeInput) -> None:
        self.stage_controls.validate_resume(request)

    @workflow.update
    async def abort(self, request: AbortInput) -> PolicyRolloutProgress:
        await self.stage_controls.abort(request)
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        self.stage_controls.validate_abort(request)

    @workflow.update
    async def skip(self, request: SkipClusterInput) -> PolicyRolloutProgress:
        for entry in self._entries(request.cluster):
            if entry.status == "pending":
                entry.status, entry.detail = "skipped", f"skipped by {request.requested_by}: {request.reason}"
        await self.trail.record("skip", "skipped", f"by {request.requested_by}: {request.reason}", cluster=request.cluster)
        return self.state

    @skip.validator
    def validate_skip(self, request: SkipClusterInput) -> None:
        self.stage_controls.refuse_a_skip_without_reason(request.reason)
        entries = self._entries(request.cluster)
        if not entries:
            raise ApplicationError(f"{request.cluster} is not in this rollout", type=ErrorType.NOT_IN_ROLLOUT)
        if not any(e.status == "pending" for e in entries):
            raise ApplicationError(f"{request.cluster} is {entries[-1].status}; only a cluster not yet given the bundle"
                                   " can be skipped", type=ErrorType.TOO_LATE_TO_SKIP)

    @workflow.update
    async def retry(self, request: RetryClusterInput) -> PolicyRolloutProgress:
        entry = next(e for e in self._stage().clusters if e.name == request.cluster)
        entry.status, entry.detail = "pending", f"retry asked by {request.requested_by} after: {entry.detail}"
        self.state.failed -= 1
        await self.trail.record("retry", "resumed", f"by {request.requested_by}", cluster=request.cluster)
        return self.state

    @retry.validator
    def validate_retry(self, request: RetryClusterInput) -> None:
        self.stage_controls.refuse_when_finished("retry a cluster of")
        if self.rollout.halting():
            raise ApplicationError(f"the rollout is stopping ({self.state.halted_reason or 'aborted'}); start it again"
                                   " to retry", type=ErrorType.ROLLOUT_STOPPING)
        entries = self._entries(request.cluster)
        if not entries:
            raise ApplicationError(f"{request.cluster} is not in this rollout", type=ErrorType.NOT_IN_ROLLOUT)
        entry = next((e for e in self._stage().clusters if e.name == request.cluster), None) if self.state.stage else None
        if entry is None or self._stage().status != "running":
            raise ApplicationError(f"{request.cluster}'s stage is over or not started; a new rollout retries it",
                                   type=ErrorType.STAGE_OVER)
        if entry.status != "failed":
            raise ApplicationError(f"{request.cluster} is {entry.status}; only a failed cluster can be retried",
                                   type=ErrorType.NOT_FAILED)

    def _stage(self) -> PolicyStageState:
        return next(s for s in self.state.stages if s.name == self.state.stage)

    def _entries(self, cluster: str) -> list[PolicyClusterState]:
        return [c for s in self.state.stages for c in s.clusters if c.name == cluster]

    def _sites(self) -> dict[str, str]:
        """Cluster → the site whose agent alone reaches it, as the plan found them."""
        return {c.name: c.site for s in self.state.stages for c in s.clusters if c.site}

    # ------------------------------------------------------------------ steps

    async def _plan(self) -> None:
        self.trail.step("planning", "planning the rollout over the inventory")
        try:
            plan: PolicyPlan = await call_or_refuse(Activity.PLAN_POLICY, PlanPolicy(bundle=self._bundle(), now=await self.clock.now()),
                                                    PolicyPlan, error_type=ErrorType.INVALID_BUNDLE)
        except ApplicationError:
            self.trail.step("failed", "planning the rollout")
            raise
        self.state.revision, self.state.stages, self.state.failure_budget = plan.revision, plan.stages, plan.failure_budget
        self.state.left_out = {d.cluster: d.because for d in plan.decisions if not d.included}
        if plan.placement is not None:
            await self.trail.record("placement", "succeeded", "; ".join(
                f"{s.cluster} score {s.score:g}: {', '.join(f'{n} of {k}' for k, n in s.replicas.items())}"
                for s in plan.placement.chosen))

    async def _violations_within(self, clusters: list[str], limit: int, why: str) -> bool:
        """Read the clusters' violations now; halt (saying so) when they exceed the limit."""
        if not clusters:
            return True
        counts: dict[str, int] = {}
        for site, members in bundle_targets.by_site(clusters, self._sites()):  # a site's agent reads its clusters
            counts.update(await call(Activity.COUNT_VIOLATIONS, CountViolations(
                bundle=self.input.name, revision=self.state.revision, clusters=members, site=site,
                operation_id=self.state.operation_id), dict[str, int], timeout=600, heartbeat=60))
        for stage in self.state.stages:
            for entry in stage.clusters:
                if entry.name in counts:
                    entry.violations = counts[entry.name]
        total = sum(counts.values())
        if total <= limit:
            return True
        worst = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5] if n)
        self.state.halted_reason = (f"{why}: its clusters report {total} violations, more than max_violations {limit}"
                                    f" ({worst}); fix them or raise max_violations, then start the rollout again")
        await self.trail.record("gate", "failed", self.state.halted_reason)
        return False

    async def _gate(self, index: int) -> bool:
        """The promotion gate before stage `index`, on fresh violation counts."""
        for members, limit, why in bundle_targets.gates_before(self.state.stages, index):
            if not await self._violations_within(members, limit, why):
                return False
        return True

    async def _give(self, entry: PolicyClusterState, stage: PolicyStageState) -> None:
        """One cluster: the bundle, then its health gate and the stage's checks; count the outcome."""
        try:
            entry.status, entry.detail = "applying", f"{stage.mode or 'apply'} revision {self.state.revision}"
            # One activity per cluster: apply, prune, observed, recorded in the cluster, healthy,
            # compliance and its audit line (numbered here, so a retry writes it once).
            audit = self.trail.line("give_bundle", "succeeded", f"{stage.name}: revision {self.state.revision}"
                                    f"{' in ' + stage.mode if stage.mode else ''}", cluster=entry.name)
            report: GiveReport = await call(Activity.GIVE_BUNDLE, GiveBundle(
                bundle=self.input.name, revision=self.state.revision, cluster=entry.name, site=entry.site, mode=stage.mode,
                rollout=self.state.operation_id, force=self.input.force, prune=self.input.prune, replicas=entry.replicas,
                timeout_seconds=self.input.timeout_seconds, poll_interval_seconds=self.input.poll_interval_seconds,
                audit=audit), GiveReport, timeout=2 * self.input.timeout_seconds + 120,
                heartbeat=self.input.heartbeat_seconds())
            assert report.ref is not None
            calls = ClusterCalls(report.ref, self.input)
            spec_stage = next((s for s in self.input.stages if stage.name in (s.name, f"{s.name}-audit", f"{s.name}-enforce")),
                              None)
            if spec_stage is not None and spec_stage.health_checks:
                await calls.health_checks(spec_stage.health_checks, f"bundle {self.input.name}",
                                          results=self.checks.setdefault(entry.name, []), on_step=lambda _: None)
        except ActivityError as failure:
            cause = failure.cause or failure
            entry.status, entry.detail = "failed", str(getattr(cause, "message", cause))
            self.rollout.count_failure()
            await self.trail.record("give_bundle", "failed", entry.detail, cluster=entry.name)
            self.rollout.halt_when_over_budget(entry)
            return
        changed = [c for c in report.changes if c.action != "unchanged"]
        self.state.applied_objects += len(changed)
        entry.status, entry.violations, entry.detail = "applied", report.violations, bundles.describe(report)

    async def _run_stage(self, stage: PolicyStageState) -> None:
        stage.status = "running"
        self.trail.step("running", f"stage {stage.name}: up to {stage.concurrency} clusters at once"
                        + (f" in {stage.mode}" if stage.mode else ""))
        looked: list[PolicyClusterState | None] = [None]

        def pending() -> PolicyClusterState | None:
            return next((c for c in stage.clusters if c.status == "pending"), None)

        def left_now() -> bool:
            looked[0] = pending()
            return looked[0] is not None

        async def ready() -> PolicyClusterState | None:
            # The cluster pending once a slot is free: one skipped while the rollout waited for the slot is not given
            # the bundle (and one retried meanwhile, listed before it, goes first). A run begun before gave the one it
            # had looked at before waiting. The patch is asked only when the two differ: a run takes its marker then.
            now = pending()
            if now is looked[0]:
                return now
            return now if patched(SKIP_WHILE_WAITING) else looked[0]

        def claim(entry: PolicyClusterState) -> None:
            entry.status = "applying"

        await self.rollout.run_stage(stage, left_now=left_now, any_left=lambda: pending() is not None, ready=ready,
                                     claim=claim, work=lambda entry: self._give(entry, stage))

    def _bundle(self) -> BundleSpec:
        """The bundle itself, without what only the rollout carries."""
        return BundleSpec.model_validate(self.input.model_dump(include=set(BundleSpec.model_fields)))

    async def _replace_what_was_not_given(self) -> None:
        """A placed application whose chosen cluster failed or was skipped (within the failure
        budget) runs that cluster's share elsewhere: a MoveWorkloads, new replicas up before any
        go, the lost cluster keeping whatever it still runs."""
        entries: dict[str, list[PolicyClusterState]] = {}
        for stage in self.state.stages:
            for entry in stage.clusters:
                entries.setdefault(entry.name, []).append(entry)
        lost = sorted(name for name, mine in entries.items() if any(sum(e.replicas.values()) for e in mine)
                      and any(e.status in ("failed", "skipped") for e in mine) and not all(e.status == "applied" for e in mine))
        if not lost:
            return
        self.trail.step("running", f"moving the share of {', '.join(lost)} to the clusters that have {self.input.name}")
        why = "; ".join(f"{name}: {next(e.detail for e in entries[name] if e.status != 'applied')}" for name in lost)
        try:
            result: MoveWorkloadsResult = await workflow.execute_child_workflow(
                WorkflowName.MOVE_WORKLOADS, MoveWorkloadsInput(
                    app=self.input.name, leaving=lost, reason=f"not given {self.input.name} by {self.state.operation_id} ({why})",
                    unreachable_ok=True, requested_by=self.input.requested_by, ticket=self.input.ticket,
                    timeout_seconds=self.input.timeout_seconds, lost_after_seconds=self.input.timeout_seconds,
                    poll_interval_seconds=self.input.poll_interval_seconds),
                id=operation_ids.move_id(self.input.name), result_type=MoveWorkloadsResult)
            self.moved, outcome = result.message, "succeeded"
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as failure:
            cause = getattr(failure, "cause", None) or failure
            self.moved, outcome = f"the share of {', '.join(lost)} did not move: {getattr(cause, 'message', cause)}", "failed"
        await self.trail.record("move", outcome, self.moved)

    async def _point_traffic_at_the_replicas(self) -> None:
        """A placed application whose service has a traffic record: its weights follow the shares."""
        assert self.input.placement is not None
        service = self.input.placement.service or self.input.name
        weights: dict[str, int] = {}
        for stage in self.state.stages:
            for entry in stage.clusters:
                if entry.status == "applied":
                    weights[entry.name] = sum(entry.replicas.values())
        if not any(weights.values()):
            return
        record: TrafficRecord | None = await call(Activity.READ_TRAFFIC, service, TrafficRecord | None)
        if record is None:
            return
        changed: TrafficRecord = await call(Activity.SET_TRAFFIC, SetTraffic(
            service=service, weights=weights, change_id=f"{workflow.info().run_id}-placement"), TrafficRecord)
        await self.trail.record("traffic", "succeeded", f"{service}: {changed.weights} (was {record.weights})")

    async def _finish(self) -> PolicyRolloutResult:
        if self.state.abort_requested:
            for entry in (c for s in self.state.stages for c in s.clusters if c.status == "pending"):
                entry.status, entry.detail = "aborted", "not given the bundle: the rollout was aborted"
        counts, failed, summary = self.rollout.tally()
        outcome = self.rollout.ended_as(summary, done=f"{self.input.name} {self.state.revision} rolled out")
        if self.moved:
            self.state.message += f"; {self.moved}"
        self.trail.step(outcome, "done")
        await self.trail.record("rollout", outcome if outcome != "halted" else "failed", self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PolicyRolloutResult(operation_id=self.state.operation_id, bundle=self.input.name, revision=self.state.revision,
                                   outcome=outcome, counts=counts, failed=failed, applied_objects=self.state.applied_objects,
                                   message=self.state.message)

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: PolicyRolloutInput | dict) -> PolicyRolloutResult:
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        if self.input.carried is None:
            tag(operation=WorkflowName.POLICY_ROLLOUT, ticket=self.input.ticket)
            await self._plan()
            total = len({c.name for s in self.state.stages for c in s.clusters})
            await self.trail.record("rollout", "started", f"revision {self.state.revision} to {total} clusters in"
                                    f" {len(self.state.stages)} stages; {len(self.state.left_out)} left out; failure"
                                    f" budget {self.state.failure_budget}")
        for index, stage in enumerate(self.state.stages):
            if stage.status == "done":
                continue
            if self.rollout.halting():
                break
            self.state.stage = stage.name
            if not await self._gate(index):
                stage.status = "halted"
                break
            if stage.approval_required and not stage.approved_by and any(c.status == "pending" for c in stage.clusters):
                await self.rollout.await_approval(stage)
                if self.rollout.halting():
                    break
            await self._run_stage(stage)
            if self.rollout.continuing and not self.rollout.halting():
                await self.rollout.continue_as_new(self.input)
            if self.rollout.halting():
                stage.status = "halted"
                break
            if stage.soak_seconds and stage is not self.state.stages[-1]:
                await self.rollout.soak(stage)
            stage.status = "done"
        if self.input.placement is not None and not self.rollout.halting():
            await self._replace_what_was_not_given()
            if not self.moved:  # a move points the traffic itself
                await self._point_traffic_at_the_replicas()
        return await self._finish()
