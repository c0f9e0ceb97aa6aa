"""PatchWave: bring every cluster a selector names to a new version, stage by stage, the way the
monthly patch runbook says:

1. Plan: which clusters, in which stage, which already run the target (counted, not touched),
   and when each one's maintenance window next opens outside every freeze.
2. For each stage in order: wait for an `approve` from someone other than the requester when
   the stage asks for one; then upgrade its clusters as child ClusterUpgrades, at most
   `concurrency` at once, each only inside its maintenance window (a cluster outside it waits,
   visibly, with the time it will start); then soak before the next stage.
3. Halt when more clusters have failed than the failure budget allows: nothing new starts,
   what runs finishes, and the result names every failure. A cluster whose upgrade refuses it
   for blocking readiness findings nobody accepted is held out (not_ready, naming them), not failed;
   a stage that upgraded none because every one was held out halts the wave.

Controls: pause and resume (nothing new starts while paused), abort (nothing new starts; each
upgrade in flight is told to abort too, so it finishes the step it is in, returns cordoned nodes to
service and stops: a cluster is consistent at a step boundary, not in the middle of one),
approve a stage, skip a cluster with a reason, retry a failed or not-ready cluster of the running stage. A cluster held by another operation is skipped
with the name of that operation. Children are abandoned, not killed, if the wave itself is
terminated: a half-drained cluster is worse than an unfinished wave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)

from workflows.pieces.calls import call, call_inventory, call_or_refuse
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.patches import APPROVAL_FOR_HELD, REHEARSAL_ATTACHED, patched
from workflows.pieces.stage_controls import StageControls
from workflows.pieces.staged_rollout import StagedRollout
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AbortInput,
        Activity,
        ClusterUpgradeResult,
        MaintenanceHold,
        PatchWaveApproveInput,
        PatchWaveInput,
        PatchWaveProgress,
        PatchWaveResult,
        PatchWaveRetryInput,
        PatchWaveSkipInput,
        PauseInput,
        PlanWave,
        ResumeInput,
        WaveClusterState,
        WaveForecast,
        WavePlan,
        WaveStageState,
    )
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName, ended
    from regatta.models.rehearsal import AttachedRehearsal, AttachRehearsal, HoldAgainstRehearsal
    from regatta.models.search_attributes import operation_tags
    from regatta.rules import forecasts, operation_ids, waves, windows

EXAMPLE = ('{"name": "nov-patch", "target_version": "1.31", "stages": [{"name": "canary", "selector": {"environment":'
           ' "canary"}}, {"name": "prod", "selector": {"environment": "prod"}, "approval_required": true}]}')
NOT_STARTED = ("pending", "waiting_window", "held")


@workflow.defn(name=WorkflowName.PATCH_WAVE)
class PatchWave:
    @workflow.init
    def __init__(self, input: PatchWaveInput | dict) -> None:
        self.input, self.input_error = parse_input(PatchWaveInput, input, EXAMPLE)
        self.state = PatchWaveProgress(wave=self.input.name, target_version=str(self.input.target_version),
                                       node_images=dict(self.input.node_images))
        if self.input.carried is not None:  # a continued run picks the wave up where the last one left it
            self.state = self.input.carried
        # Wave-level audit lines are filed under the wave's own id.
        self.trail = Trail(operation=WorkflowName.PATCH_WAVE, cluster=lambda: operation_ids.wave_id(self.input.name),
                           state=lambda: self.state, asking=self.input)
        # The child upgrades of this run that have started, by cluster: an abort is passed on to them.
        self.children: dict[str, workflow.ChildWorkflowHandle] = {}
        self.clock = FleetClock()  # the fleet's calendar clock: windows, freezes and holds are read on it
        self.cursor = 0  # clusters of the running stage before this index have all started
        self.controls_sent = 0  # counts operator controls, so a wave waiting for a window wakes on any
        self.stage_controls = StageControls(trail=self.trail, state=lambda: self.state, what="wave",
                                      ended_type=ErrorType.WAVE_FINISHED, requested_by=lambda: self.input.requested_by)
        self.rollout: StagedRollout[WaveClusterState] = StagedRollout(
            trail=self.trail, state=lambda: self.state, clock=self.clock, requested_by=lambda: self.input.requested_by,
            continue_after_events=lambda: self.input.continue_as_new_after_events)

    @workflow.query
    def progress(self) -> PatchWaveProgress:
        return self.state

    @workflow.query
    def forecast(self) -> WaveForecast:
        """When each cluster will first be touched, from where the wave stands now."""
        timed = self.state.finished_upgrades
        seconds = (self.state.finished_upgrade_seconds / timed if timed
                   else self.input.estimated_upgrade_minutes * 60)
        stopped = None
        if ended(self.state.phase) or self.rollout.stopping():
            stopped = f"the wave {self.state.phase if ended(self.state.phase) else 'is stopping'}"
        result = forecasts.forecast(wave=self.input, stages=self.state.stages, now=self.clock.time(),
                                    upgrade_seconds=seconds, started=self.state.started,
                                    unstaged=self.state.unstaged_reasons, stopped=stopped,
                                    joined_later=self.state.joined_later)
        if timed:
            result.assumes[0] += f" (the mean of the {timed} this wave has timed)"
        if self.state.paused:
            result.assumes.append("the wave is paused: nothing starts until it is resumed")
        return result

    # ------------------------------------------------------------------ controls

    @workflow.update
    async def approve(self, request: PatchWaveApproveInput) -> PatchWaveProgress:
        await self.stage_controls.approve(self._stage(), request)
        self.controls_sent += 1
        return self.state

    @approve.validator
    def validate_approve(self, request: PatchWaveApproveInput) -> None:
        self.stage_controls.validate_approve(request, stage=request.stage)

    @workflow.update
    async def pause(self, request: PauseInput) -> PatchWaveProgress:
        await self.stage_controls.pause(request)
        self.controls_sent += 1
        return self.state

    @pause.validator
    def validate_pause(self, request: PauseInput) -> None:
        self.stage_controls.validate_pause(request)

    @workflow.update
    async def resume(self, request: ResumeInput) -> PatchWaveProgress:
        await self.stage_controls.resume(request)
        self.controls_sent += 1
        return self.state

    @resume.validator
    def validate_resume(self, request: ResumeInput) -> None:
        self.stage_controls.validate_resume(request)

    @workflow.update
    async def abort(self, request: AbortInput) -> PatchWaveProgress:
        await self.stage_controls.abort(request)
        await asyncio.gather(*(self._abort_child(cluster) for cluster in list(self.children)))
        self.controls_sent += 1
        return self.state

    @abort.validator
    def validate_abort(self, request: AbortInput) -> None:
        self.stage_controls.validate_abort(request)

    @workflow.update
    async def skip(self, request: PatchWaveSkipInput) -> PatchWaveProgress:
        entry = self._entry(request.cluster)
        assert entry is not None  # the validator found it
        entry.status, entry.detail = "skipped", f"skipped by {request.requested_by}: {request.reason}"
        await self.trail.record("skip", "skipped", f"{request.cluster} by {request.requested_by}: {request.reason}")
        self.controls_sent += 1
        return self.state

    @skip.validator
    def validate_skip(self, request: PatchWaveSkipInput) -> None:
        self.stage_controls.refuse_a_skip_without_reason(request.reason)
        entry = self._entry(request.cluster)
        if entry is None:
            raise ApplicationError(f"{request.cluster} is not in this wave", type=ErrorType.NOT_IN_WAVE)
        if entry.status not in NOT_STARTED:
            raise ApplicationError(f"{request.cluster} is {entry.status}; only a cluster that has not started can be"
                                   " skipped", type=ErrorType.TOO_LATE_TO_SKIP)

    @workflow.update
    async def retry(self, request: PatchWaveRetryInput) -> PatchWaveProgress:
        entry = self._entry(request.cluster)
        assert entry is not None  # the validator found it
        if entry.status == "failed":
            self.state.failed -= 1
        entry.status, entry.detail = "pending", f"retry asked by {request.requested_by} after: {entry.detail}"
        self.cursor = 0  # the retried cluster may sit before it
        await self.trail.record("retry", "resumed", f"{request.cluster} by {request.requested_by}")
        self.controls_sent += 1
        return self.state

    @retry.validator
    def validate_retry(self, request: PatchWaveRetryInput) -> None:
        self.stage_controls.refuse_when_finished("retry a cluster of")
        if self.rollout.stopping():
            raise ApplicationError(f"the wave is stopping ({self.state.halted_reason or 'aborted'}); start it again to"
                                   " retry: clusters already at the target are skipped", type=ErrorType.WAVE_STOPPING)
        entry = self._entry(request.cluster)
        if entry is None:
            raise ApplicationError(f"{request.cluster} is not in this wave", type=ErrorType.NOT_IN_WAVE)
        if entry.status not in ("failed", "not_ready"):
            raise ApplicationError(f"{request.cluster} is {entry.status}; only a failed cluster, or one held out as not"
                                   " ready, can be retried", type=ErrorType.NOT_FAILED)
        stage = next(s for s in self.state.stages if entry in s.clusters)
        if stage.name != self.state.stage or stage.status != "running":
            raise ApplicationError(f"{request.cluster}'s stage {stage.name} is over; a new wave retries it (clusters at"
                                   " the target are skipped)", type=ErrorType.STAGE_OVER)

    async def _abort_child(self, cluster: str) -> None:
        """Pass the wave's abort on to one upgrade in flight (it stops after its current step)."""
        request = AbortInput(reason=f"wave {self.input.name} aborted: {self.state.abort_reason or 'no reason given'}",
                                           requested_by=operation_ids.wave_id(self.input.name))
        try:
            await self.children[cluster].signal("abort_from_wave", request)
        except FailureError:
            pass  # it ended meanwhile: nothing left to stop

    def _stage(self) -> WaveStageState:
        return next(s for s in self.state.stages if s.name == self.state.stage)

    def _entry(self, cluster: str) -> WaveClusterState | None:
        return next((c for s in self.state.stages for c in s.clusters if c.name == cluster), None)

    # ------------------------------------------------------------------ steps

    async def _plan(self) -> None:
        self.trail.step("planning", "planning the wave over the inventory")
        try:
            plan: WavePlan = await call_or_refuse(
                Activity.PLAN_WAVE, PlanWave(wave=self.input, now=await self.clock.now()), WavePlan,
                error_type=ErrorType.INVALID_WAVE)
        except ApplicationError:
            self.trail.step("failed", "planning the wave")
            raise
        self.state.stages, self.state.unstaged, self.state.failure_budget = plan.stages, plan.unstaged, plan.failure_budget
        self.state.unstaged_reasons = plan.unstaged_reasons

    async def _attach_rehearsal(self) -> None:
        """The wave's rehearsal on a twin (`regatta wave rehearse`), if one was taken: the latest of a wave of this name
        and target before it started. Attached, it is what the wave holds itself against when it ends. Bookkeeping
        that fails does not stop the wave: the trail says so."""
        try:
            attached: AttachedRehearsal | None = await call_inventory(
                Activity.ATTACH_REHEARSAL, AttachRehearsal(wave=self.input.name, target_version=self.input.target_version,
                                                           operation_id=self.state.operation_id, started=workflow.now()),
                AttachedRehearsal | None)
        except ActivityError as failure:
            await self.trail.record("rehearsal", "failed", f"could not look for the wave's rehearsal: {failure.cause or failure}")
            return
        if attached is not None:
            self.state.rehearsal_id = attached.rehearsal_id
            await self.trail.record("rehearsal", "attached", f"{attached.rehearsal_id}, rehearsed"
                                    f" {attached.rehearsed_at:%Y-%m-%d %H:%M}Z: {attached.summary}")

    async def _hold_against_rehearsal(self, rehearsal_id: str) -> str:
        """The wave held against its rehearsal, kept with the rehearsal; in a line for its result and trail."""
        try:
            held: str = await call_inventory(Activity.HOLD_AGAINST_REHEARSAL, HoldAgainstRehearsal(
                rehearsal_id=rehearsal_id, operation_id=self.state.operation_id), str)
        except ActivityError as failure:
            held = f"could not be held against {rehearsal_id}: {failure.cause or failure}"
        await self.trail.record("rehearsal", "compared", held)
        return held

    async def _next_in_window(self, stage: WaveStageState) -> tuple[WaveClusterState | None, datetime | None]:
        """The first cluster of the stage that may start now: not started, inside one of its
        maintenance windows and outside every freeze. Else None and when the earliest one may:
        the others are marked waiting, with the time they will start."""
        self._advance_cursor(stage)
        waiting = self._not_started(stage)
        calendar = bool(self.input.maintenance_windows or self.input.freezes)
        now, earliest = (await self.clock.now() if calendar else None), None
        for entry in waiting:
            if not calendar and entry.status != "held":
                return entry, None  # no calendar and no hold: it may start now
            if now is None:
                now = await self.clock.now()
            if entry.status in ("waiting_window", "held") and entry.earliest_start is not None and entry.earliest_start > now:
                start: datetime | None = entry.earliest_start  # still ahead: no need to work it out again
            else:
                start = windows.next_start(windows=[self.input.maintenance_windows[i] for i in entry.windows],
                                             freezes=self.input.freezes, after=now)
            if start is None:
                entry.status, entry.detail = "skipped", "no maintenance window opens outside the freezes within a year"
            elif start <= now:
                return entry, None
            elif entry.status == "held":  # the hold's words stay; the time is when it may start
                entry.earliest_start = start
                earliest = start if earliest is None else min(earliest, start)
            else:
                entry.status, entry.earliest_start = "waiting_window", start
                entry.detail = f"waits for its maintenance window: starts {start.isoformat()}"
                earliest = start if earliest is None else min(earliest, start)
        return None, earliest

    async def _wait_for_window(self, opens: datetime | None) -> None:
        """Sleep until the next window opens (or the simulated clock is due another look); an
        operator's control wakes the wave at once."""
        if opens is None:  # nothing waits: every remaining cluster was skipped
            return
        await self.clock.now()
        controls = self.controls_sent
        await self.clock.sleep_until(opens, wake=lambda: self.rollout.stopping() or self.controls_sent != controls)

    async def _upgrade(self, entry: WaveClusterState) -> None:
        """One cluster's ClusterUpgrade as a child; count the outcome."""
        try:
            entry.status, entry.detail = "upgrading", f"ClusterUpgrade {operation_ids.operation_id(entry.name)}"
            request = waves.upgrade_request(self.input, entry, stage=self.state.stage)
            try:
                child = await workflow.start_child_workflow(
                    WorkflowName.CLUSTER_UPGRADE, request, id=operation_ids.operation_id(entry.name), result_type=ClusterUpgradeResult,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    # as an operator's start sets them, so the upgrade need not write them again
                    search_attributes=operation_tags(operation=WorkflowName.CLUSTER_UPGRADE, cluster=entry.name,
                                                     environment=entry.environment or None, ticket=self.input.ticket))
                self.children[entry.name] = child
                if self.state.abort_requested:  # the abort came while the child was being started
                    await self._abort_child(entry.name)
                result: ClusterUpgradeResult = await child
            except WorkflowAlreadyStartedError:
                entry.status = "skipped"
                entry.detail = (f"busy: another operation holds {operation_ids.operation_id(entry.name)}; a new wave takes it"
                                " once that ends")
                return
            except ChildWorkflowError as failure:
                cause = failure.cause or failure  # the upgrade's own error says what stopped it
                kind, message = getattr(cause, "type", None), str(getattr(cause, "message", cause))
                if kind == ErrorType.ALREADY_AT_VERSION:
                    entry.status, entry.detail = "at_target", message
                    return
                if kind == ErrorType.CLUSTER_HELD and isinstance(cause, ApplicationError):  # it waits for the hold to end
                    hold = MaintenanceHold.model_validate(cause.details[0])
                    entry.status, entry.earliest_start, entry.detail = "held", hold.until, waves.describe_hold(hold)
                    self.cursor = 0  # it sits behind the cursor now
                    return
                if kind == ErrorType.NOT_READY_FOR_UPGRADE:  # held out, naming its findings: fixed, it is retried
                    # the wave's state is carried across runs: the upgrade's own refusal says the rest
                    entry.status, entry.detail = "not_ready", message if len(message) <= 500 else message[:499] + "…"
                    return
                if kind == ErrorType.UNKNOWN_CLUSTER:  # it left the fleet after the wave planned: not a failure
                    entry.status = "skipped"
                    entry.detail = "no longer in the fleet (deregistered after the wave planned it)"
                    return
                entry.status, entry.detail = "failed", str(getattr(cause, "message", cause))
                self.rollout.count_failure()
                self.rollout.halt_when_over_budget(entry)
                return
            # A success needs no words (the state is carried across runs: keep it small); an abort does.
            entry.status, entry.detail = ("succeeded", "") if result.outcome == "succeeded" else ("aborted", result.message)
            if result.outcome == "succeeded" and entry.name in self.state.started:  # timed, for the forecast
                self.state.finished_upgrades += 1
                self.state.finished_upgrade_seconds += (self.clock.time() - self.state.started[entry.name]).total_seconds()
        finally:
            self.children.pop(entry.name, None)
            self.state.started.pop(entry.name, None)

    def _advance_cursor(self, stage: WaveStageState) -> None:
        """Move the cursor past the stage's clusters that have started or settled. Called by the
        stage loop between waits, never from a wait condition: a condition must not change state."""
        clusters = stage.clusters
        while self.cursor < len(clusters) and clusters[self.cursor].status not in NOT_STARTED:
            self.cursor += 1

    def _not_started(self, stage: WaveStageState) -> Iterator[WaveClusterState]:
        """The stage's clusters not started yet. Every cluster before `self.cursor` has started or
        been settled, so a look costs O(1) amortised rather than a scan of the stage: wait
        conditions look on every activation, and a 10,000-cluster stage would scan 10^8 entries."""
        clusters = stage.clusters
        return (clusters[i] for i in range(self.cursor, len(clusters)) if clusters[i].status in NOT_STARTED)

    def _left(self, stage: WaveStageState) -> bool:
        return next(self._not_started(stage), None) is not None

    async def _run_stage(self, stage: WaveStageState) -> None:
        """Start the stage's clusters as slots free up and their windows open, until none is left
        and none runs (a retried cluster becomes pending again and is picked up here)."""
        stage.status = "running"
        self.trail.step("running", f"stage {stage.name}: upgrading up to {stage.concurrency} clusters at once")
        self.cursor = 0

        def left_now() -> bool:
            self._advance_cursor(stage)
            return self._left(stage)

        async def ready() -> WaveClusterState | None:
            entry, opens = await self._next_in_window(stage)
            if entry is None:
                await self._wait_for_window(opens)
            return entry

        def claim(entry: WaveClusterState) -> None:
            entry.status, entry.detail = "upgrading", "starting"
            self.state.started[entry.name] = self.clock.time()

        def never_started() -> None:  # stopped: what waited for its window was never started
            for entry in stage.clusters:
                if entry.status == "waiting_window":
                    entry.status, entry.detail = "pending", "not started"

        await self.rollout.run_stage(stage, left_now=left_now, any_left=lambda: self._left(stage), ready=ready,
                                     claim=claim, work=self._upgrade, stopped=never_started)

    async def _finish(self) -> PatchWaveResult:
        counts, failed, summary = self.rollout.tally()
        if patched("joined-later"):  # waves that began before this look ended without it
            await self._note_clusters_that_joined_later()
        if self.state.joined_later:
            summary += (f"; not in this wave (joined the fleet after it planned): {', '.join(self.state.joined_later[:20])}"
                        + (f" and {len(self.state.joined_later) - 20} more" if len(self.state.joined_later) > 20 else ""))
        outcome = self.rollout.ended_as(summary, done=f"{self.input.name} done")
        held = None
        if self.state.rehearsal_id is not None and patched(REHEARSAL_ATTACHED):
            held = await self._hold_against_rehearsal(self.state.rehearsal_id)
        self.trail.step(outcome, "done")
        await self.trail.record("wave", outcome if outcome != "halted" else "failed", self.state.message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PatchWaveResult(operation_id=self.state.operation_id, wave=self.input.name,
                               target_version=self.input.target_version, outcome=outcome,
                               counts=counts, failed=failed, joined_later=self.state.joined_later,
                               rehearsal_id=self.state.rehearsal_id, held_against_rehearsal=held,
                               message=self.state.message)

    async def _note_clusters_that_joined_later(self) -> None:
        """The wave's membership is the snapshot it planned; a cluster the selector takes now that
        was not in it joined the fleet since, and is reported as not in this wave (a new one takes it)."""
        names: list[str] = await call(Activity.LIST_CLUSTER_NAMES, self.input.selector, list[str])
        planned = {c.name for s in self.state.stages for c in s.clusters} | set(self.state.unstaged)
        self.state.joined_later = sorted(name for name in names if name not in planned)

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: PatchWaveInput | dict) -> PatchWaveResult:
        # Waves started before the fleet clock existed replay without reading it (tests/histories).
        self.clock.reads_the_fleet = patched("fleet-clock")
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        if self.input.carried is None:
            tag(operation=WorkflowName.PATCH_WAVE, ticket=self.input.ticket)
            freeze = windows.freeze_at(self.input.freezes, await self.clock.now())
            if self.input.start_only_outside_freezes and freeze is not None:
                self.state.message = f"not started: the freeze {freeze.name} is in force until {freeze.end.isoformat()}"
                self.trail.step("not_started", "done")
                await self.trail.record("wave", "skipped", self.state.message)
                return PatchWaveResult(operation_id=self.state.operation_id, wave=self.input.name,
                                       target_version=self.input.target_version, outcome="not_started", counts={},
                                       message=self.state.message)
            await self._plan()
            total = sum(len(s.clusters) for s in self.state.stages)
            await self.trail.record("wave", "started", f"{total} clusters in {len(self.state.stages)} stages to"
                              f" {self.input.target_version}; failure budget {self.state.failure_budget}")
            if patched(REHEARSAL_ATTACHED):
                await self._attach_rehearsal()

        for stage in self.state.stages:
            if stage.status == "done":  # finished in an earlier run
                continue
            if self.rollout.stopping():
                break
            self.state.stage = stage.name
            if waves.asks_approval(stage, held_too=False) or (waves.asks_approval(stage, held_too=True)
                                                              and patched(APPROVAL_FOR_HELD)):
                await self.rollout.await_approval(stage)
                if self.rollout.stopping():
                    break
            await self._run_stage(stage)
            if not self.rollout.stopping() and (held_out := waves.held_out_stage(stage)) is not None:
                self.state.halted_reason = held_out  # the next stage must not start on a version nobody ran
            if self.state.abort_requested or self.state.halted_reason:
                stage.status = "halted"
                break
            if self.rollout.continuing:
                await self.rollout.continue_as_new(self.input)
            if stage.soak_seconds and stage is not self.state.stages[-1]:
                await self.rollout.soak(stage)
            stage.status, stage.soak_ends = "done", None
        return await self._finish()
