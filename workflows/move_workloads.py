"""MoveWorkloads: move an application's replicas off some clusters without dropping below what it
needs, the way an SRE moves a service by hand:

1. Plan over the inventory as it is now: every cluster that stays keeps what it runs; the leaving
   clusters' share goes to the others (for a placement of N clusters, a replacement is chosen by
   score within the spread). Steps are no larger than the workload's PodDisruptionBudget lets go.
2. Each step: give the receiving clusters their larger share and wait until the new replicas are
   available (the bundle's health gate); point the service's traffic at the shares as they will
   be; only then lower the leaving cluster. The total never drops below what it was.
3. Take the bundle off each cluster left with nothing (its objects carrying the bundle's label,
   then its record); record the new placement.

A leaving cluster that cannot be reached (a lost cluster, `unreachable_ok`) keeps what it ran
there, said so in the result; its share runs elsewhere already. One move per application at a
time (workflow id `move-<app>`). Every step is in the audit trail.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.pieces.calls import call, call_or_refuse, site_of
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, SetTraffic, TrafficRecord
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName
    from regatta.models.placement import (
        MovePlan,
        MoveWorkloadsInput,
        MoveWorkloadsProgress,
        MoveWorkloadsResult,
        PlanMove,
    )
    from regatta.models.policy import GiveBundle, GiveReport, WithdrawBundle
    from regatta.rules import operation_ids, sites

EXAMPLE = '{"app": "web", "leaving": ["eks-prod-use1"], "reason": "blue/green replacement of the cluster"}'
# A cluster that may be lost gets two tries, not the quick call's twenty-five.
LEAVING_MAY_BE_LOST = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)


@workflow.defn(name=WorkflowName.MOVE_WORKLOADS)
class MoveWorkloads:
    @workflow.init
    def __init__(self, input: MoveWorkloadsInput | dict) -> None:
        self.input, self.input_error = parse_input(MoveWorkloadsInput, input, EXAMPLE)
        self.state = MoveWorkloadsProgress(app=str(self.input.app))
        self.trail = Trail(operation=WorkflowName.MOVE_WORKLOADS, cluster=lambda: operation_ids.move_id(self.input.app),
                           state=lambda: self.state, asking=self.input)
        self.lost: list[str] = []

    @workflow.query
    def progress(self) -> MoveWorkloadsProgress:
        return self.state

    # ------------------------------------------------------------------ steps

    def _lost_at(self, activity: Activity, request: GiveBundle | WithdrawBundle) -> dict:
        """Where a call to a cluster that may be lost goes: where its request says the cluster is reached (`site_of`,
        as every call), and an agent that does not pick it up within lost_after_seconds counts as the cluster lost (a
        call to a site otherwise waits for its agent as long as it takes)."""
        site = site_of(activity, request)
        if site is None:
            return {}
        return {"task_queue": sites.site_task_queue(workflow.info().task_queue, site),
                "schedule_to_start_timeout": timedelta(seconds=self.input.lost_after_seconds)}

    async def _give(self, cluster: str, plan: MovePlan) -> None:
        """The cluster's whole share as it stands now; done once its replicas are available."""
        share = self.state.shares[cluster]
        may_be_lost = cluster in plan.leaving and self.input.unreachable_ok
        site = plan.sites.get(cluster)  # its agent alone reaches it
        request = GiveBundle(bundle=self.input.app, revision=plan.revision, cluster=cluster, site=site, replicas=share,
                             rollout=self.state.operation_id, timeout_seconds=self.input.timeout_seconds,
                             poll_interval_seconds=self.input.poll_interval_seconds,
                             answer_timeout_seconds=self.input.lost_after_seconds if may_be_lost else None)
        timeout = timedelta(seconds=2 * self.input.timeout_seconds + 120)
        heartbeat = timedelta(seconds=self.input.heartbeat_seconds())
        if may_be_lost:
            await workflow.execute_activity(Activity.GIVE_BUNDLE, request, result_type=GiveReport,
                                            start_to_close_timeout=timeout, heartbeat_timeout=heartbeat,
                                            retry_policy=LEAVING_MAY_BE_LOST, **self._lost_at(Activity.GIVE_BUNDLE, request))
        else:
            await call(Activity.GIVE_BUNDLE, request, GiveReport, timeout=timeout.total_seconds(),
                       heartbeat=heartbeat.total_seconds())
        words = ", ".join(f"{n} of {key}" for key, n in share.items())
        await self.trail.record("give_share", "succeeded", f"{self.input.app}: {words}", cluster=cluster)

    async def _lower(self, cluster: str, plan: MovePlan) -> None:
        try:
            await self._give(cluster, plan)
        except ActivityError as failure:
            if not self.input.unreachable_ok:
                raise
            cause = failure.cause or failure
            self.lost.append(cluster)
            await self.trail.record("give_share", "failed", f"{cluster} could not be reached, so it keeps what it ran"
                                    f" (its share runs elsewhere now): {getattr(cause, 'message', cause)}", cluster=cluster)

    async def _follow_traffic(self, plan: MovePlan, service: str | None) -> None:
        """Point the service at the shares as they are once this step is done."""
        if service is None:
            return
        weights = {name: sum(share.values()) for name, share in self.state.shares.items() if name not in self.lost}
        if not any(weights.values()):
            return
        self.state.step = f"pointing {service}'s traffic at the replicas: {weights}"
        record: TrafficRecord = await call(Activity.SET_TRAFFIC, SetTraffic(
            service=service, weights=weights, change_id=f"{workflow.info().run_id}-{self.state.steps_done}"), TrafficRecord)
        await self.trail.record("traffic", "succeeded", f"{service}: {record.weights}")

    async def _service_with_a_record(self, plan: MovePlan) -> str | None:
        """The service whose traffic follows the replicas, when the traffic manager holds a record for it."""
        if plan.service is None:
            return None
        record: TrafficRecord | None = await call(Activity.READ_TRAFFIC, plan.service, TrafficRecord | None)
        return plan.service if record is not None else None

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: MoveWorkloadsInput | dict) -> MoveWorkloadsResult:
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        tag(operation=WorkflowName.MOVE_WORKLOADS, ticket=self.input.ticket)
        self.trail.step("planning", f"planning the move of {self.input.app} off {', '.join(self.input.leaving)}")
        try:
            plan: MovePlan = await call_or_refuse(Activity.PLAN_MOVE, PlanMove(
                app=self.input.app, leaving=self.input.leaving, reason=self.input.reason,
                operation_id=self.state.operation_id, now=workflow.now()), MovePlan, error_type=ErrorType.NOT_PLACED)
        except ApplicationError as refusal:
            self.state.message = f"refused while planning: {refusal.message}"
            self.trail.step("failed", "planning the move")
            await self.trail.record("move", "failed", self.state.message)
            raise
        self.state.shares = {name: dict(share) for name, share in plan.before.items()}
        if not plan.steps and not plan.withdraw:
            self.state.message = f"{self.input.app} holds nothing on {', '.join(self.input.leaving)}: nothing to move"
            self.trail.step("succeeded", "done")
            await self.trail.record("move", "succeeded", self.state.message)
            return MoveWorkloadsResult(operation_id=self.state.operation_id, app=self.input.app, outcome="nothing_to_move",
                                       shares=self.state.shares, withdrawn=[], message=self.state.message)
        self.state.steps = len(plan.steps)
        await self.trail.record("move", "started", f"{self.input.app} off {', '.join(self.input.leaving)}"
                                f" ({self.input.reason}) in {len(plan.steps)} steps, to "
                                + ", ".join(f"{s.cluster} {s.replicas}" for s in plan.decision.chosen))
        service = await self._service_with_a_record(plan)
        try:
            withdrawn = await self._move(plan, service)
        except ActivityError as failure:
            cause = failure.cause or failure
            self.state.message = (f"the move of {self.input.app} stopped at step {self.state.steps_done + 1} of"
                                  f" {len(plan.steps)}: {getattr(cause, 'message', cause)}; nothing was lowered before its"
                                  " replacement was available, so it runs with at least what it had (shares now:"
                                  f" {self.state.shares}); fix the cause and start the move again")
            self.trail.step("failed", self.state.step)
            await self.trail.record("move", "failed", self.state.message)
            raise ApplicationError(self.state.message, type=getattr(cause, "type", None) or ErrorType.WORKLOADS_NOT_READY,
                                   non_retryable=True) from None
        await call(Activity.RECORD_PLACEMENT, plan.decision, None)
        kept = f"; {', '.join(self.lost)} could not be reached and keep what they ran" if self.lost else ""
        self.state.message = (f"{self.input.app} moved off {', '.join(self.input.leaving)}: now "
                              + ", ".join(f"{s.cluster} {sum(s.replicas.values())}" for s in plan.decision.chosen) + kept)
        self.trail.step("succeeded", "done")
        await self.trail.record("move", "succeeded", self.state.message)
        return MoveWorkloadsResult(operation_id=self.state.operation_id, app=self.input.app, outcome="succeeded",
                                   shares={s.cluster: s.replicas for s in plan.decision.chosen}, withdrawn=withdrawn,
                                   kept_unreachable=self.lost, traffic=plan.traffic if service else {},
                                   message=self.state.message)

    async def _move(self, plan: MovePlan, service: str | None) -> list[str]:
        """The steps, then the bundle taken off the clusters left with nothing; those it was taken off."""
        for step in plan.steps:
            self.trail.step("moving", f"step {self.state.steps_done + 1} of {len(plan.steps)}: up on"
                            f" {', '.join(sorted(step.raise_to)) or 'none'}, then down on"
                            f" {', '.join(sorted(step.lower_to)) or 'none'}")
            for name, share in step.raise_to.items():
                self.state.shares.setdefault(name, {}).update(share)
            # Up first, every receiver at once; down only once all of them have their replicas available.
            await asyncio.gather(*(self._give(name, plan) for name in sorted(step.raise_to)))
            for name, share in step.lower_to.items():
                self.state.shares.setdefault(name, {}).update(share)
            await self._follow_traffic(plan, service)
            for name in sorted(step.lower_to):
                if name not in self.lost:
                    await self._lower(name, plan)
            self.state.steps_done += 1
        withdrawn: list[str] = []
        for name in plan.withdraw:
            if name in self.lost:
                continue
            self.trail.step("withdrawing", f"taking {self.input.app} off {name}")
            audit = self.trail.line("withdraw", "succeeded", f"{self.input.app} taken off", cluster=name)
            site = plan.sites.get(name)
            request = WithdrawBundle(bundle=self.input.app, cluster=name, site=site,
                                     operation_id=self.state.operation_id, audit=audit)
            try:
                if self.input.unreachable_ok:
                    await workflow.execute_activity(Activity.WITHDRAW_BUNDLE, request, result_type=list[str],
                                                    start_to_close_timeout=timedelta(seconds=120),
                                                    retry_policy=LEAVING_MAY_BE_LOST, **self._lost_at(Activity.WITHDRAW_BUNDLE, request))
                else:
                    await call(Activity.WITHDRAW_BUNDLE, request, list[str], timeout=120)
            except ActivityError:
                if not self.input.unreachable_ok:
                    raise
                self.lost.append(name)
                continue
            withdrawn.append(name)
            self.state.shares.pop(name, None)
        return withdrawn
