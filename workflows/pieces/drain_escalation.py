"""The ladder a drain blocked by PodDisruptionBudgets climbs, as the drain policy for the node pool
and the blocked pods says (regatta/rules/disruption.py decides each step): keep evicting; after a
while tell the owner (an Event on each budget, the callback URL, the policy's owner webhook, the
audit trail, all in the same words); then, where the policy allows it, ask for an `approve`
Update; only once approved, delete exactly the pods the budgets hold. Without an approval the
upgrade gives up after its drain timeout, saying which budget kept which pods.

Steps are timed on the fleet's clock, so a simulated fleet's clock can be moved past them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.calls import call
from workflows.pieces.controls import refuse_own_approval
from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.trail import Trail, post_note

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        ApproveInput,
        BlockedDrain,
        CallbackNote,
        ClusterRef,
        ClusterUpgradeInput,
        ClusterUpgradeProgress,
        DeletePods,
        DrainEscalation,
        ErrorType,
        RecordEvent,
    )
    from regatta.rules import disruption


def blocked_by(escalation: DrainEscalation) -> str:
    if escalation.reason:
        return escalation.reason
    return f"PodDisruptionBudget {', '.join(escalation.budgets)} kept pods {', '.join(escalation.pods)} on it"


class EscalationLadder:
    def __init__(self, *, request: ClusterUpgradeInput, state: ClusterUpgradeProgress, clock: FleetClock, trail: Trail,
                 ref: Callable[[], ClusterRef]):
        self.request = request
        self.state = state
        self.clock = clock
        self.trail = trail
        self._ref = ref

    # ------------------------------------------------------------------ the approve Update

    def validate_approve(self, request: ApproveInput) -> None:
        escalation = self.state.drain_escalation
        if escalation is None or escalation.step != "awaiting_approval":
            raise ApplicationError("nothing to approve: no blocked drain waits for an approval",
                                   type=ErrorType.NOT_AWAITING_APPROVAL)
        if escalation.approved_by:  # approved once: the deletion is under way, a second yes changes nothing
            raise ApplicationError(f"already approved by {escalation.approved_by}: the pods on {escalation.node} are"
                                   " being deleted", type=ErrorType.NOT_AWAITING_APPROVAL)
        refuse_own_approval(phase=self.state.phase, approver=request.approver, requested_by=self.request.requested_by,
                            what="deletion of the pods that block the drain")

    async def approve(self, request: ApproveInput) -> None:
        escalation = self.state.drain_escalation
        assert escalation is not None  # the validator saw one waiting
        escalation.approved_by = request.approver
        await self.trail.record("approve", "approved", f"deleting {', '.join(escalation.pods)} on {escalation.node}, held by"
                                f" {', '.join(escalation.budgets)}; by {request.approver}: {request.comment}".rstrip(": "))

    # ------------------------------------------------------------------ the ladder

    async def drained(self) -> None:
        """The drain went through: a blocked drain that climbed the ladder says so, and steps down."""
        if self.state.drain_escalation is None:
            return
        escalation, self.state.drain_escalation = self.state.drain_escalation, None
        if self.state.phase == "awaiting_approval":  # the budget let go before anyone approved
            self.trail.step("node_pools", f"drained {escalation.node}")
        await self.trail.record("drain", "succeeded", f"node {escalation.node} drained after being blocked since"
                                f" {escalation.blocked_since.isoformat()} (last step: {escalation.step})")

    async def climb(self, blocked: BlockedDrain, pool: str) -> None:
        """One look at a blocked drain: move along its policy's ladder as far as the time blocked
        allows, stop the upgrade if it has waited too long, else return to drain again."""
        now = await self.clock.now()
        escalation = self.state.drain_escalation
        pods = [pod.name for pod in blocked.pods]
        if escalation is None or escalation.node != blocked.node:
            policy = disruption.drain_policy(self.request.drain_policies, node_pool=pool, pods=blocked.pods)
            escalation = self.state.drain_escalation = DrainEscalation(
                node=blocked.node, pods=pods, budgets=blocked.budgets, blocked_since=now, step_since=now, policy=policy,
                reason=blocked.reason)
            await self.trail.record("drain", "escalated", f"drain of {blocked.node} blocked: {blocked_by(escalation)}")
        escalation.pods, escalation.budgets, escalation.reason = pods, blocked.budgets, blocked.reason
        blocked_for = (now - escalation.blocked_since).total_seconds()
        while (step := disruption.next_escalation_step(escalation.policy, step=escalation.step, blocked_for=blocked_for,
                                                       approved=bool(escalation.approved_by))) is not None:
            if step == "owner_notified":  # the step says the owner was told: tell first
                await self._tell_owner(escalation, blocked)
            escalation.step, escalation.step_since = step, now  # type: ignore[assignment]
            if step == "awaiting_approval":
                since = f"{escalation.blocked_since:%Y-%m-%d %H:%M}Z"
                self.trail.step("awaiting_approval", f"drain of {blocked.node} blocked since {since}: approve to delete"
                                f" {', '.join(pods)}")
                await self.trail.record("drain", "escalated", f"asks for an approval to delete {', '.join(pods)} on"
                                        f" {blocked.node}: {blocked_by(escalation)}")
            elif step == "deleting_pods":
                self.trail.step("node_pools", f"deleting {', '.join(pods)} on {blocked.node}, approved by"
                                f" {escalation.approved_by}")
                deleted: list[str] = await call(Activity.DELETE_PODS, DeletePods(cluster=self._ref(), pods=pods), list[str])
                await self.trail.record("drain", "escalated", f"deleted {', '.join(deleted) or 'nothing (already gone)'} on"
                                        f" {blocked.node} without their budgets' consent, approved by"
                                        f" {escalation.approved_by}")
                escalation.step, escalation.approved_by = "retrying", None  # pods a controller puts back are evicted again
                return
        if escalation.step == "awaiting_approval":
            waited = (now - escalation.step_since).total_seconds()
            if waited >= escalation.policy.approval_timeout_seconds:
                raise ApplicationError(
                    f"nobody approved deleting {', '.join(pods)} on {blocked.node} within"
                    f" {escalation.policy.approval_timeout_seconds:g}s: {blocked_by(escalation)}. Restore the"
                    " workload's health or relax the budget, then start the upgrade again", type=ErrorType.DRAIN_TIMEOUT,
                    non_retryable=True)
            try:  # an approval (or an abort) wakes us at once; meanwhile the drain keeps trying
                await workflow.wait_condition(lambda: bool(escalation.approved_by) or self.state.abort_requested,
                                              timeout=timedelta(seconds=self.request.drain_blocked_report_seconds))
            except TimeoutError:
                pass
        elif blocked_for >= self.request.drain_timeout_seconds:
            raise ApplicationError(
                f"drain of node {blocked.node} timed out after {self.request.drain_timeout_seconds:g}s:"
                f" {blocked_by(escalation)}. Restore the workload's health or relax the budget, then start the"
                " upgrade again; raise drain_timeout_seconds if the workload is just slow to move, or give the pool a"
                " drain policy that may delete the blocking pods once approved", type=ErrorType.DRAIN_TIMEOUT,
                non_retryable=True)

    async def _tell_owner(self, escalation: DrainEscalation, blocked: BlockedDrain) -> None:
        """An Event on each blocking budget, a note to the callback URL and the policy's owner
        webhook, and a line in the audit trail: the same words everywhere."""
        policy, request = escalation.policy, self.request
        then = (f"an approval to delete them will be asked for at"
                f" {escalation.blocked_since + timedelta(seconds=policy.ask_approval_after_seconds):%Y-%m-%d %H:%M}Z"
                if policy.delete_blocking_pods else
                f"the upgrade stops at {escalation.blocked_since + timedelta(seconds=request.drain_timeout_seconds):%Y-%m-%d %H:%M}Z")
        message = (f"Regatta's upgrade of {request.cluster} ({workflow.info().workflow_id}) cannot drain node"
                   f" {blocked.node}: {blocked_by(escalation)}, blocked since"
                   f" {escalation.blocked_since:%Y-%m-%d %H:%M}Z. If it is still blocked, {then}")
        for budget in blocked.budget_refs:
            namespace, _, name = budget.partition("/")
            await call(Activity.RECORD_EVENT, RecordEvent(
                cluster=self._ref(), namespace=namespace, involved_kind="PodDisruptionBudget", involved_name=name,
                reason="DrainBlocked", message=message,
                name=disruption.drain_blocked_event_name(workflow.info().run_id, blocked.node, budget)), None)
        if request.callback_url:
            self.trail.tell("drain_blocked", message)
        if policy.owner_webhook:
            await post_note(CallbackNote(url=policy.owner_webhook, operation_id=workflow.info().workflow_id,
                                         workflow_type=workflow.info().workflow_type, cluster=request.cluster,
                                         ticket=request.ticket, phase="drain_blocked", step=message, sequence=0,
                                         at=workflow.now()))
        await self.trail.record("drain", "escalated", f"owner notified: {message}")
