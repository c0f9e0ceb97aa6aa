"""Replaying a run's history on today's workflow code (DESIGN rule 9), and keeping it under tests/histories when
pytest runs with --record-histories: what every test that records a history shares."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.main import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
REPLAYER = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


def save(name: str, handle, history) -> None:
    recorded = {"workflow_id": handle.id, "history": json.loads(history.to_json())}
    (HISTORIES / f"{name}.json").write_text(json.dumps(recorded))


async def replays(handle, request, name: str):
    """The run's history replays on today's code; with --record-histories it is kept as `name`."""
    history = await handle.fetch_history()
    await REPLAYER.replay_workflow(history)
    if request.config.getoption("--record-histories"):
        save(name, handle, history)
    return history


def patch_ids(history) -> list[str]:
    """The patch id of every patch marker in the history, in order."""
    return [json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
            for e in history.events if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == "core_patch"]
