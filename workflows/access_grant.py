"""AccessGrant: a person's access to one cluster for a limited time, the way the runbook says:

1. Find the cluster; decide whether a second person must approve (every grant in production, `admin`
   anywhere: regatta/rules/access_grants.py), and wait for that approval (four eyes) or give up after
   `approval_timeout_seconds`.
2. Make a ServiceAccount in `regatta-access` and a ClusterRoleBinding of it to the cluster's ClusterRole of
   the role asked (view, edit or admin), and start the clock.
3. Hand the requester a kubeconfig once (the `hand_out` Update): a token for that account that expires with
   the grant, sealed to a key only the requester holds, so the history keeps ciphertext only.
4. At the end of the time, or when someone revokes it, delete the binding and the account: the token stops
   working at once. The end is a durable timer: if every Regatta process is down at that moment, it happens
   when they return (the fleet view shows the grant as overdue until then).

Every step is an `access` record in the audit trail, and the inventory's copy of the grant
(`regatta access list`) follows each change.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.pieces.calls import call
from workflows.pieces.controls import refuse_own_approval
from workflows.pieces.inputs import check_start, parse_input, tag
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        AccessGrantInput,
        AccessGrantProgress,
        AccessGrantRecord,
        AccessGrantResult,
        Activity,
        ApproveInput,
        ClusterRecord,
        GrantAccess,
        HandOutAccess,
        HandOutInput,
        RevokeAccess,
        RevokeInput,
        SealedKubeconfig,
    )
    from regatta.models.errors import ErrorType
    from regatta.models.operations import WorkflowName, ended
    from regatta.rules import access, access_grants

EXAMPLE = '{"cluster": "eks-dev-use1", "role": "view", "duration_seconds": 7200, "reason": "INC-42", "requested_by": "ana"}'
# A hand-out is asked a few times over half a minute: the person waits on it, and the grant's end waits for it.
HAND_OUT = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=10),
                       maximum_attempts=5)


@workflow.defn(name=WorkflowName.ACCESS_GRANT)
class AccessGrant:
    @workflow.init
    def __init__(self, input: AccessGrantInput | dict) -> None:
        self.input, self.input_error = parse_input(AccessGrantInput, input, EXAMPLE)
        self.state = AccessGrantProgress(cluster=self.input.cluster, person=self.input.requested_by, role=self.input.role)
        self.trail = Trail(operation="access", cluster=lambda: self.input.cluster, state=lambda: self.state,
                           asking=self.input)
        self.record: ClusterRecord | None = None
        self.revoke_asked: RevokeInput | None = None

    @workflow.query
    def progress(self) -> AccessGrantProgress:
        return self.state

    # ------------------------------------------------------------------ controls

    @workflow.update
    async def approve(self, request: ApproveInput) -> AccessGrantProgress:
        self.state.approved_by = request.approver
        await self.trail.record("approve", "approved", f"by {request.approver}: {request.comment}".rstrip(": "))
        return self.state

    @approve.validator
    def validate_approve(self, request: ApproveInput) -> None:
        if self.revoke_asked is not None:
            raise ApplicationError(f"nothing to approve: the request was withdrawn by {self.revoke_asked.requested_by}",
                                   type=ErrorType.NOT_AWAITING_APPROVAL)
        refuse_own_approval(phase=self.state.phase, approver=request.approver, requested_by=self.input.requested_by,
                            what="access grant", approved_by=self.state.approved_by)

    @workflow.update
    async def revoke(self, request: RevokeInput) -> AccessGrantProgress:
        self.revoke_asked = request
        await self.trail.record("revoke", "revoke_requested", f"by {request.requested_by}: {request.reason}".rstrip(": "))
        return self.state

    @revoke.validator
    def validate_revoke(self, request: RevokeInput) -> None:
        if ended(self.state.phase) or self.state.phase == "revoking":
            raise ApplicationError(f"nothing to revoke: the grant is {self.state.phase}", type=ErrorType.OPERATION_ENDED)
        if self.revoke_asked is not None:
            raise ApplicationError(f"already being revoked (asked by {self.revoke_asked.requested_by})",
                                   type=ErrorType.ABORT_REQUESTED)

    @workflow.update
    async def hand_out(self, request: HandOutInput) -> SealedKubeconfig:
        assert self.record is not None and self.state.expires_at is not None
        self.state.handed_out_at = workflow.now()  # first: a second hand-out asked meanwhile is refused
        try:
            sealed: SealedKubeconfig = await call(Activity.HAND_OUT_ACCESS, HandOutAccess(
                cluster=self.record.ref, account=self.state.account, recipient_key=request.recipient_key,
                expires_at=self.state.expires_at), SealedKubeconfig, retry=HAND_OUT)
        except ActivityError:
            self.state.handed_out_at = None  # nothing was handed out: it may be asked for again
            raise
        await self._keep()
        await self.trail.record("hand out", "handed_out", f"a kubeconfig for {self.state.account} to {request.requested_by};"
                                                           f" its token ends {sealed.expires_at:%Y-%m-%d %H:%M:%S} UTC")
        return sealed

    @hand_out.validator
    def validate_hand_out(self, request: HandOutInput) -> None:
        if self.state.phase != "granted" or self.revoke_asked is not None:
            raise ApplicationError(f"no kubeconfig to hand out: the grant is {self.state.phase}"
                                   + (" and being revoked" if self.revoke_asked else ""), type=ErrorType.NOT_GRANTED)
        if not access.same_person(request.requested_by, self.input.requested_by):
            raise ApplicationError(f"the grant is {self.input.requested_by}'s: only they receive its kubeconfig",
                                   type=ErrorType.NOT_THE_REQUESTER)
        if self.state.handed_out_at is not None:
            raise ApplicationError(f"its kubeconfig was handed out at {self.state.handed_out_at:%Y-%m-%d %H:%M:%S} UTC;"
                                   " it is handed out once (ask for a new grant)", type=ErrorType.ALREADY_HANDED_OUT)

    # ------------------------------------------------------------------ steps

    async def _keep(self) -> None:
        """The inventory's copy of the grant, as it stands now."""
        state = self.state
        await call(Activity.RECORD_ACCESS_GRANT, AccessGrantRecord(
            grant_id=state.operation_id, cluster=state.cluster, environment=state.environment, person=state.person,
            role=state.role, reason=self.input.reason, ticket=self.input.ticket, phase=state.phase,
            approved_by=state.approved_by, requested_at=workflow.info().start_time, granted_at=state.granted_at,
            expires_at=state.expires_at, handed_out_at=state.handed_out_at, revoked_at=state.revoked_at,
            revoked_by=state.revoked_by), type(None))

    async def _await_approval(self) -> bool:
        """True once a second person approved; False when the request was withdrawn or nobody approved in time."""
        self.trail.step("awaiting_approval", f"waiting for a second person to approve {self.input.role} on {self.input.cluster}")
        await self._keep()
        try:
            await workflow.wait_condition(lambda: self.state.approved_by is not None or self.revoke_asked is not None,
                                          timeout=timedelta(seconds=self.input.approval_timeout_seconds))
        except TimeoutError:
            self.state.message = (f"nobody approved it within {access_grants.human(self.input.approval_timeout_seconds)};"
                                  " nothing was granted")
            return False
        if self.revoke_asked is not None and self.state.approved_by is None:
            self.state.message = f"withdrawn by {self.revoke_asked.requested_by} before approval; nothing was granted"
            return False
        return True

    async def _grant(self, record: ClusterRecord) -> None:
        self.trail.step("granting", f"binding {self.state.account} to ClusterRole {self.input.role}")
        await call(Activity.GRANT_ACCESS, GrantAccess(cluster=record.ref, grant_id=self.state.operation_id,
                                                      account=self.state.account, role=self.input.role,
                                                      person=self.input.requested_by), type(None))
        self.state.granted_at = workflow.now()
        self.state.expires_at = access_grants.ends_at(self.state.granted_at, self.input.duration_seconds)
        self.trail.step("granted", f"{self.input.role} until {self.state.expires_at:%Y-%m-%d %H:%M:%S} UTC")
        await self._keep()
        await self.trail.record("grant", "granted", f"{self.input.role} on {self.input.cluster} to {self.input.requested_by}"
                                                    f" until {self.state.expires_at:%Y-%m-%d %H:%M:%S} UTC"
                                                    f" (approved by {self.state.approved_by or 'nobody: not needed'})")

    async def _take_back(self, record: ClusterRecord, *, why: str, ending: str) -> None:
        """Delete the binding and the account, through the worker that reaches the cluster (a site's agent for a
        cluster in a private network), until it is done: each refusal is an alarm in the trail and a durable pause,
        never the end of the run with the access left in place."""
        self.trail.step("revoking", f"deleting {self.state.account}'s binding and account ({why})")
        await self._keep()
        attempts = 0
        while True:
            try:
                removed: list[str] = await call(Activity.REVOKE_ACCESS, RevokeAccess(
                    cluster=record.ref, grant_id=self.state.operation_id, account=self.state.account), list[str])
                break
            except ActivityError as failure:
                attempts += 1
                pause = access_grants.revocation_pause(attempts)
                said = str(getattr(failure.cause, "message", failure))[:300]
                self.state.step = f"taking the access back failed {attempts} time(s) ({said}); trying again in {pause:g} s"
                await self.trail.record("revoke", "failed", f"the access is still on the cluster: {said}; tried again"
                                                            f" in {pause:g} s until it is gone")
                await workflow.sleep(timedelta(seconds=pause))
        self.state.revoked_at = workflow.now()
        self.state.revoked_by = self.revoke_asked.requested_by if self.revoke_asked and ending == "revoked" else None
        self.trail.step(ending, f"access ended: {why}")
        await self._keep()
        await self.trail.record("revoke", "revoked" if ending == "revoked" else ("expired" if ending == "expired" else "failed"),
                                f"{why}: deleted {', '.join(removed) or 'nothing (already gone)'}")

    def _result(self, outcome: str) -> AccessGrantResult:
        return AccessGrantResult(operation_id=self.state.operation_id, cluster=self.input.cluster, person=self.state.person,
                                 role=self.input.role, outcome=outcome, approved_by=self.state.approved_by,
                                 granted_at=self.state.granted_at, ended_at=self.state.revoked_at, message=self.state.message)

    # ------------------------------------------------------------------ the runbook

    @workflow.run
    async def run(self, input: AccessGrantInput | dict) -> AccessGrantResult:
        input = self.input
        check_start(trail=self.trail, state=self.state, input_error=self.input_error, cluster=None)
        try:
            record: ClusterRecord = await call(Activity.GET_CLUSTER, input.cluster, ClusterRecord)
        except ActivityError as failure:
            self.trail.step("failed", "looking the cluster up in the inventory")
            raise ApplicationError(str(getattr(failure.cause, "message", failure)), type=ErrorType.UNKNOWN_CLUSTER,
                                   non_retryable=True) from None
        self.record = record
        self.state.environment = record.environment
        self.state.account = access_grants.account_name(self.state.operation_id)
        self.state.needs_approval = access_grants.needs_approval(record.environment, input.role)
        tag(operation=WorkflowName.ACCESS_GRANT, cluster=input.cluster, environment=record.environment, ticket=input.ticket)
        await self._keep()  # listed from the moment it is asked for
        await self.trail.record("access request", "started",
                                f"{input.requested_by} asks {input.role} on {input.cluster} for"
                                f" {access_grants.human(input.duration_seconds)}: {input.reason}")
        if self.state.needs_approval and not await self._await_approval():
            self.trail.step("refused", self.state.message)
            await self._keep()
            await self.trail.record("access request", "refused", self.state.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._result("refused")
        if self.revoke_asked is not None:  # withdrawn before anything was made
            self.state.message = f"withdrawn by {self.revoke_asked.requested_by} before it was granted; nothing was granted"
            self.trail.step("refused", self.state.message)
            await self._keep()
            await self.trail.record("access request", "refused", self.state.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._result("refused")
        try:
            await self._grant(record)
        except ActivityError as failure:
            self.state.message = f"the cluster did not grant it: {getattr(failure.cause, 'message', failure)}"
            await self._take_back(record, why="the grant failed half made", ending="failed")
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(self.state.message, type=ErrorType.ACCESS_REFUSED, non_retryable=True) from None
        assert self.state.granted_at is not None and self.state.expires_at is not None
        remaining = self.state.expires_at - workflow.now()
        try:
            await workflow.wait_condition(lambda: self.revoke_asked is not None, timeout=remaining)
            ending, why = "revoked", f"revoked by {self.revoke_asked.requested_by if self.revoke_asked else '?'}"
        except TimeoutError:
            ending, why = "expired", f"its {access_grants.human(input.duration_seconds)} ended"
        # a hand-out in flight finishes first (its token dies with the account a moment later)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._take_back(record, why=why, ending=ending)
        self.state.message = f"{input.role} on {input.cluster} for {input.requested_by} ended: {why}"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result(ending)
