"""The controls a staged fleet operation answers — a PatchWave, a PolicyRollout: pause and resume
(nothing new starts while paused) and abort (nothing new starts), as every operation takes them
(`PauseAndAbort`); approve the stage that waits (a second person, naming the stage if they like);
and the words every refusal uses. Each accepted control is an audit line. The workflow keeps its own `@workflow.update` handlers (Temporal finds
them on the class) and hands their work to this object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.pieces.controls import PauseAndAbort, refuse_own_approval, refuse_when_ended
from workflows.pieces.trail import Trail

with workflow.unsafe.imports_passed_through():
    from regatta.models import AbortInput, ApproveInput, PauseInput, ResumeInput
    from regatta.models.errors import ErrorType


class Steered(Protocol):
    """The state fields the controls read and set."""

    phase: Any
    step: str
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
        self.pausing = PauseAndAbort(trail=trail, state=state, what=what, refuse_when_finished=self.refuse_when_finished)

    @property
    def state(self) -> Steered:
        return self._state()

    def refuse_when_finished(self, verb: str) -> None:
        refuse_when_ended(self.state.phase, verb=verb, what=self.what, error_type=self.ended_type,
                          words=f"cannot {verb} the {self.what}: it has {self.state.phase}")

    async def pause(self, request: PauseInput) -> None:
        await self.pausing.pause(request)

    def validate_pause(self, request: PauseInput) -> None:
        self.pausing.validate_pause(request)

    async def resume(self, request: ResumeInput) -> None:
        await self.pausing.resume(request)

    def validate_resume(self, request: ResumeInput) -> None:
        self.pausing.validate_resume(request)

    async def abort(self, request: AbortInput) -> None:
        await self.pausing.abort(request)

    def validate_abort(self, request: AbortInput) -> None:
        self.pausing.validate_abort(request)

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
