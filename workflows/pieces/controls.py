"""The controls every operation that pauses or aborts takes, and the refusals every control's validator shares.
Validators raise to refuse, so the caller of an Update learns at once, and nothing in the workflow changes.

`PauseAndAbort` is pause, resume and abort, composed into each workflow that takes them (ClusterUpgrade,
ClusterRollback, a staged rollout's StageControls; DecommissionCluster and the DR runbooks take its abort): each accepted
control sets the run's state and is an audit line, and the run holds between steps while paused. The workflow keeps
its own `@workflow.update` handlers (Temporal finds them on the class) and hands their work to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import AbortInput, ErrorType, PauseInput, ResumeInput
    from regatta.models.operations import ended
    from regatta.rules import access


def refuse_when_ended(phase: str, *, verb: str, what: str, error_type: str = ErrorType.OPERATION_ENDED,
                      words: str | None = None) -> None:
    if ended(phase):
        raise ApplicationError(words or f"cannot {verb}: the {what} already ended ({phase})", type=error_type)


def refuse_a_second_abort(abort_requested: bool) -> None:
    if abort_requested:
        raise ApplicationError("an abort is already under way", type=ErrorType.ABORT_REQUESTED)


def refuse_own_approval(*, phase: str, approver: str, requested_by: str, what: str,
                        approved_by: str | None = None) -> None:
    """Refuse an approval when nothing waits for one, when one was given already (the phase moves on
    only once its audit line is written: a second yes meanwhile would be written again), or when it
    comes from the requester: four eyes means a second person."""
    if phase != "awaiting_approval":
        raise ApplicationError(f"nothing to approve: the {what} is {phase}", type=ErrorType.NOT_AWAITING_APPROVAL)
    if approved_by:
        raise ApplicationError(f"already approved by {approved_by}", type=ErrorType.NOT_AWAITING_APPROVAL)
    refuse_self_approval(approver=approver, requested_by=requested_by, what=what)


def refuse_self_approval(*, approver: str, requested_by: str, what: str) -> None:
    if access.same_person(approver, requested_by):
        raise ApplicationError(f"{approver} asked for this {what} and cannot approve it; a second person must",
                               type=ErrorType.SELF_APPROVAL)


class Abortable(Protocol):
    """The state fields an abort sets."""

    abort_requested: bool
    abort_reason: str | None


class Pausable(Abortable, Protocol):
    """The state fields pause, resume and abort read and set."""

    phase: Any
    step: str
    paused: bool
    pause_reason: str | None


async def take_abort(state: Abortable, trail: Trail, request: AbortInput) -> None:
    """An accepted abort: the run stops at its next step (or where its runbook says it may), and the trail says who
    asked and why. Every workflow that aborts takes it this way."""
    state.abort_requested, state.abort_reason = True, request.reason or None
    await trail.record("abort", "abort_requested", f"by {request.requested_by}: {request.reason}".rstrip(": "))


class PauseAndAbort:
    """Pause (nothing new starts; what is in flight finishes), resume, and abort (the run stops at its next step and
    says where it stopped). `what` names the operation in the refusals ("upgrade", "wave"); `refuse_when_finished(verb)`
    is the run's own refusal once it has ended; `hold(hold=, stop=)`, when given, is told of each change (a controller
    of the cluster's own machines holds its rollout too)."""

    def __init__(self, *, trail: Trail, state: Callable[[], Pausable], what: str,
                 refuse_when_finished: Callable[[str], None] | None = None,
                 hold: Callable[..., Awaitable[None]] | None = None):
        self.trail = trail
        self._state = state
        self.what = what
        self.refuse_when_finished = refuse_when_finished or (
            lambda verb: refuse_when_ended(self.state.phase, verb=verb, what=self.what))
        self._hold = hold

    @property
    def state(self) -> Pausable:
        return self._state()

    async def pause(self, request: PauseInput) -> None:
        self.state.paused, self.state.pause_reason = True, request.reason or None
        await self.trail.record("pause", "paused", f"by {request.requested_by}: {request.reason}".rstrip(": "))
        if self._hold is not None:
            await self._hold(hold=True)

    def validate_pause(self, request: PauseInput) -> None:
        self.refuse_when_finished("pause")
        if self.state.paused:
            raise ApplicationError(f"the {self.what} is already paused; resume it or abort it",
                                   type=ErrorType.ALREADY_PAUSED)
        refuse_a_second_abort(self.state.abort_requested)

    async def resume(self, request: ResumeInput) -> None:
        self.state.paused, self.state.pause_reason = False, None
        await self.trail.record("resume", "resumed", f"by {request.requested_by}")
        if self._hold is not None:
            await self._hold(hold=False)

    def validate_resume(self, request: ResumeInput) -> None:
        self.refuse_when_finished("resume")
        if self.state.abort_requested:  # an abort is not undone by a resume
            raise ApplicationError(f"the {self.what} is stopping (an abort is under way): a resume does not undo it",
                                   type=ErrorType.ABORT_REQUESTED)
        if not self.state.paused:
            raise ApplicationError(f"the {self.what} is not paused; there is nothing to resume", type=ErrorType.NOT_PAUSED)

    async def abort(self, request: AbortInput) -> None:
        await take_abort(self.state, self.trail, request)
        if self._hold is not None:
            await self._hold(hold=True, stop=True)

    def validate_abort(self, request: AbortInput) -> None:
        self.refuse_when_finished("abort")
        refuse_a_second_abort(self.state.abort_requested)

    async def hold_while_paused(self) -> bool:
        """Between steps: wait while paused (the step says so); whether an abort asked the run to stop here."""
        if self.state.paused and not self.state.abort_requested:
            step = self.state.step
            self.state.step = f"paused before: {step}"
            await workflow.wait_condition(lambda: not self.state.paused or self.state.abort_requested)
            self.state.step = step
        return self.state.abort_requested
