"""The controls a staged fleet operation answers — a PatchWave, a PolicyRollout: pause and resume
(nothing new starts while paused), abort (nothing new starts), approve the stage that waits (a
second person, naming the stage if they like), and the words every refusal uses. Each accepted
control is an audit line. The workflow keeps its own `@workflow.update` handlers (Temporal finds
them on the class) and hands their work to this object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.controls import refuse_a_second_abort, refuse_own_approval, refuse_when_ended
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import AbortInput, ApproveInput, PauseInput, ResumeInput
    from regatta.models.errors import ErrorType


class Steered(Protocol):
    """The state fields the controls read and set."""

    phase: Any
    stage: str | None
    paused: bool
    pause_reason: str | None
    abort_requested: bool
    abort_reason: str | None
    stages: Any  # each with `name` and `approved_by`


class StageControls:
    def __init__(self, *, trail: Trail, state: Callable[[], Steered], what: str, ended_type: str, requested_by: Callable[[], str]):
        self.trail = trail
        self._state = state
        self.what = what  # "wave", "rollout": how the refusals name the operation
        self.ended_type = ended_type
        self.requested_by = requested_by

    @property
    def state(self) -> Steered:
        return self._state()

    def refuse_when_finished(self, verb: str) -> None:
        refuse_when_ended(self.state.phase, verb=verb, what=self.what, error_type=self.ended_type,
                          words=f"cannot {verb} the {self.what}: it has {self.state.phase}")

    async def pause(self, request: PauseInput) -> None:
        self.state.paused, self.state.pause_reason = True, request.reason or None
        await self.trail.record("pause", "paused", f"by {request.requested_by}: {request.reason}".rstrip(": "))

    def validate_pause(self, request: PauseInput) -> None:
        self.refuse_when_finished("pause")
        if self.state.paused:
            raise ApplicationError(f"the {self.what} is already paused", type=ErrorType.ALREADY_PAUSED)

    async def resume(self, request: ResumeInput) -> None:
        self.state.paused, self.state.pause_reason = False, None
        await self.trail.record("resume", "resumed", f"by {request.requested_by}")

    def validate_resume(self, request: ResumeInput) -> None:
        self.refuse_when_finished("resume")
        if not self.state.paused:
            raise ApplicationError(f"the {self.what} is not paused", type=ErrorType.NOT_PAUSED)

    async def abort(self, request: AbortInput) -> None:
        self.state.abort_requested, self.state.abort_reason = True, request.reason or None
        await self.trail.record("abort", "abort_requested", f"by {request.requested_by}: {request.reason}".rstrip(": "))

    def validate_abort(self, request: AbortInput) -> None:
        self.refuse_when_finished("abort")
        refuse_a_second_abort(self.state.abort_requested)

    async def approve(self, stage: Any, request: ApproveInput) -> None:
        """`stage` is the one waiting (its `approved_by` is set)."""
        stage.approved_by = request.approver
        await self.trail.record("approve", "approved", f"stage {stage.name} by {request.approver}: {request.comment}".rstrip(": "))

    def validate_approve(self, request: ApproveInput, *, stage: str | None) -> None:
        """A second approval while the first is being written down (the stage moves on only after its
        audit line) is refused, as is one from the requester or naming another stage."""
        waiting = next((s for s in getattr(self.state, "stages", []) if s.name == self.state.stage), None)
        refuse_own_approval(phase=self.state.phase, approver=request.approver, requested_by=self.requested_by(),
                            what=f"{self.what} stage", approved_by=getattr(waiting, "approved_by", None))
        if stage is not None and stage != self.state.stage:
            raise ApplicationError(f"stage {self.state.stage} is the one waiting for approval, not {stage}",
                                   type=ErrorType.WRONG_STAGE)

    def refuse_a_skip_without_reason(self, reason: str) -> None:
        self.refuse_when_finished("skip a cluster of")
        if not reason.strip():
            raise ApplicationError("say why the cluster is skipped (reason): the audit trail keeps it",
                                   type=ErrorType.REASON_REQUIRED)
