"""The replay gate before a new build takes over (issue 32; `regatta deploy check`): the histories of every open
operation in the live namespace, and of a sample of recently closed ones, replayed on the workflow code of this
build. A history this code cannot replay (its commands differ from what the history recorded) is a run the new build
would break: the gate names its workflow, its run and the event where replay parted from the history, and refuses.

The replayer is the worker's own: the same workflow classes (WORKFLOWS), the same data converter as the client (the
payload codec included, so encrypted histories replay), the same interceptors, and no sandbox, as the worker runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from regatta.telemetry import OperationContext

OPEN = "ExecutionStatus = 'Running'"
CLOSED = "ExecutionStatus != 'Running'"
# The runs a new build takes over: those that move to the current build (auto-upgrade), and those begun before the
# workers were versioned (they move at the first promotion). Runs pinned to a build never replay on another.
MOVING = "(TemporalWorkflowVersioningBehavior IS NULL OR TemporalWorkflowVersioningBehavior = 'AutoUpgrade')"
# Where the SDK's message names the event: "HistoryEvent(id: 5, ActivityTaskScheduled)", or "event id 5".
_EVENT = (re.compile(r"HistoryEvent\(id: (\d+)"), re.compile(r"\bevent(?:[ _]id)?[ =:#]*(\d+)", re.IGNORECASE))


@dataclass(frozen=True)
class ReplayVerdict:
    workflow_id: str
    run_id: str
    workflow_type: str
    open: bool
    verdict: Literal["replays", "breaks"]
    event_id: int | None = None
    detail: str = ""


def _event_of(failure: Exception, history: WorkflowHistory) -> int | None:
    """The history event where replay parted from it: named in the SDK's message when it says so, otherwise the last
    event the history holds (replay got no further)."""
    for pattern in _EVENT:
        found = pattern.search(str(failure))
        if found:
            return int(found.group(1))
    return history.events[-1].event_id if history.events else None


async def _histories(client: Client, query: str, limit: int | None, seen: dict[str, tuple[str, bool]],
                     open_: bool) -> AsyncIterator[WorkflowHistory]:
    listed = client.list_workflows(query, limit=limit)
    async for execution in listed:
        seen[execution.run_id] = (execution.workflow_type, open_)
        yield await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()


async def _remembered(stream: AsyncIterator[WorkflowHistory], into: dict[str, WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    async for history in stream:
        into[history.run_id] = history
        yield history


async def check(client: Client, *, workflows: Sequence[type] | None = None, closed_sample: int = 20,
                scope: str | None = None, task_queue: str | None = None, include_pinned: bool = False) -> list[ReplayVerdict]:
    """Replay every open run that would move to this build (and the `closed_sample` most recently closed) on this
    build's workflow code: of `task_queue` (Regatta's; other applications' runs in a shared namespace are not ours to
    judge), pinned runs aside unless `include_pinned`. `scope` narrows them further (`WorkflowType = 'PatchWave'`)."""
    if workflows is None:
        from workers.main import WORKFLOWS

        workflows = WORKFLOWS
    replayer = Replayer(workflows=list(workflows), data_converter=client.data_converter, interceptors=[OperationContext()],
                        workflow_runner=UnsandboxedWorkflowRunner())
    verdicts: list[ReplayVerdict] = []
    for query, limit, open_ in ((OPEN, None, True), (CLOSED, closed_sample, False)):
        if limit == 0:
            continue
        seen: dict[str, tuple[str, bool]] = {}
        histories: dict[str, WorkflowHistory] = {}
        parts = [query, *([f"TaskQueue = '{task_queue}'"] if task_queue else []), *([] if include_pinned else [MOVING]),
                 *([f"({scope})"] if scope else [])]
        full = " AND ".join(parts)
        results = await replayer.replay_workflows(_remembered(_histories(client, full, limit, seen, open_), histories),
                                                  raise_on_replay_failure=False)
        for run_id, history in histories.items():
            failure = results.replay_failures.get(run_id)
            workflow_type, was_open = seen.get(run_id, ("?", open_))
            verdicts.append(ReplayVerdict(
                workflow_id=history.workflow_id, run_id=run_id, workflow_type=workflow_type, open=was_open,
                verdict="breaks" if failure is not None else "replays",
                event_id=_event_of(failure, history) if failure is not None else None,
                detail=f"{type(failure).__name__}: {failure}"[:500] if failure is not None else ""))
    return verdicts


def summary(verdicts: Sequence[ReplayVerdict]) -> dict[str, Any]:
    """What a promotion rests on: the open runs that would break (a closed run that breaks is a warning: it will never
    run again, though a query of it would fail)."""
    broken = [v for v in verdicts if v.verdict == "breaks" and v.open]
    return {"replayed": len(verdicts), "open": sum(v.open for v in verdicts), "breaks": len(broken),
            "closed_breaks": sum(v.verdict == "breaks" and not v.open for v in verdicts), "promotable": not broken}
