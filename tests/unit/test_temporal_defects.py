"""Defects in Temporal's SDK that Regatta's chaos benchmark ran into, kept as the histories that show
them and replayed here: each is expected to fail with its own error, so the day a temporalio release fixes it
this test fails (nothing raised) and says the note in docs/benchmarks.md can go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from workers.main import WORKFLOWS

DEFECTS = Path(__file__).parent.parent / "temporal_defects"


async def test_an_approval_taken_in_the_task_after_a_killed_worker_does_not_replay_yet():
    """temporalio 1.35.0: an Update accepted in the workflow task that follows one that timed out
    (its worker was killed) is replayed before the commands the same task issued first: the history
    has the activity scheduled, then the update accepted; replay offers them the other way round.
    Like sdk-rust#943; open as sdk-rust#1146 (workflow tasks collapsed inconsistently)."""
    recorded = json.loads((DEFECTS / "update_after_timed_out_task.json").read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    with pytest.raises(NondeterminismError, match="Update machine does not handle this event.*ActivityTaskScheduled"):
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
