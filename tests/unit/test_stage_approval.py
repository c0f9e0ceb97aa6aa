"""A staged operation's approval (workflows/pieces/stage_controls.py), asked of its validator the way
Temporal asks before it accepts the Update: a second approval while the first is being written
down is refused, not written twice (found by benchmarks/chaos.py for a drain's approval)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from temporalio.exceptions import ApplicationError

from regatta.models import ApproveInput
from workflows.pieces.stage_controls import StageControls


@dataclass
class Stage:
    name: str
    approved_by: str | None = None


@dataclass
class WaveState:
    phase: str = "awaiting_approval"
    stage: str | None = "prod"
    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    stages: list[Stage] = field(default_factory=lambda: [Stage("canary", "sre-bob"), Stage("prod")])


def controls(state: WaveState) -> StageControls:
    return StageControls(trail=None, state=lambda: state, what="wave",  # type: ignore[arg-type]
                         ended_type="WaveEnded", requested_by=lambda: "sre-alice")


def refusal(state: WaveState, approver: str, stage: str | None = None) -> str:
    with pytest.raises(ApplicationError) as refused:
        controls(state).validate_approve(ApproveInput(approver=approver), stage=stage)
    return str(refused.value)


def test_the_waiting_stage_is_approved_once_by_a_second_person():
    state = WaveState()
    controls(state).validate_approve(ApproveInput(approver="sre-bob"), stage="prod")  # accepted: no exception
    assert "cannot approve it; a second person must" in refusal(state, "sre-alice")
    assert "stage prod is the one waiting for approval, not canary" in refusal(state, "sre-bob", "canary")
    state.stages[1].approved_by = "sre-bob"  # the first yes, its audit line not yet written
    assert refusal(state, "sre-carol").endswith("already approved by sre-bob")


def test_an_earlier_stage_approval_does_not_stand_for_the_waiting_one():
    state = WaveState()  # canary was approved by sre-bob; prod waits
    controls(state).validate_approve(ApproveInput(approver="sre-carol"), stage=None)


def test_nothing_to_approve_when_no_stage_waits():
    assert "nothing to approve: the wave stage is running" in refusal(WaveState(phase="running"), "sre-bob")
