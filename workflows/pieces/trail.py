"""The audit trail of one operation, the steps it reports, and the callback notes that follow them.

`Trail.step(phase, step)` is how a runbook says where it is: the state's phase and step change,
the worker logs it, and when the input names a `callback_url` a note is queued for it (on every
change of phase, the first step included). One coroutine posts the notes in order, so a slow
receiver never holds the runbook up; `record` at a final phase waits until every note is out.

`Trail.record(action, outcome, detail)` writes one audit line through a (local) activity (DESIGN
rule 10), numbered within the run so a retried write is recorded once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.pieces.calls import CALLBACK_DELIVERY, call_inventory
from workflows.pieces.patches import EVERY_ENDING_DELIVERED, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, CallbackNote, OperationRecord
    from regatta.models.operations import ended

# The endings whose callbacks were always delivered before the run ended; the others (an access grant's) since
# EVERY_ENDING_DELIVERED.
DELIVERED_BEFORE = frozenset({"succeeded", "failed", "aborted", "halted", "not_started", "released", "rolled_back"})


class Stepping(Protocol):
    """Every operation's state object has a phase and the step in flight (each workflow's own
    Literal of phases: the trail sets what the workflow asks it to)."""

    @property
    def phase(self) -> str: ...
    @phase.setter
    def phase(self, value: Any) -> None: ...
    @property
    def step(self) -> str: ...
    @step.setter
    def step(self, value: str) -> None: ...


class Asking(Protocol):
    """Every operation's input says who asked, under which ticket, and where to tell."""

    requested_by: str
    ticket: str | None
    callback_url: str | None


class Trail:
    def __init__(self, *, operation: str, cluster: Callable[[], str], state: Callable[[], Stepping], asking: Asking):
        """`cluster` and `state` are read when used: the cluster's name is known only once the
        input is read, and a continued wave replaces its state object."""
        self.operation = operation
        self._cluster = cluster
        self._state = state
        self.asking = asking
        self.seq = 0
        self._notes: list[CallbackNote] | None = None
        self._sequence = 0
        self._poster: asyncio.Future[None] | None = None

    @property
    def cluster(self) -> str:
        return self._cluster()

    def step(self, phase: str, step: str) -> None:
        state = self._state()
        changed = phase != state.phase
        state.phase = phase
        state.step = step
        workflow.logger.info("%s: %s", self.cluster, step, extra={"cluster": self.cluster})
        if self.asking.callback_url and (changed or self._notes is None):
            self.tell(phase, step)  # the first step is news too

    def tell(self, phase: str, step: str) -> None:
        """Queue a note for the callback URL (posted in order by one coroutine)."""
        if self._notes is None:
            self._notes = []
        self._sequence += 1
        assert self.asking.callback_url is not None
        self._notes.append(CallbackNote(url=self.asking.callback_url, operation_id=workflow.info().workflow_id,
                                        workflow_type=workflow.info().workflow_type, cluster=self.cluster,
                                        ticket=self.asking.ticket, phase=phase, step=step, sequence=self._sequence,
                                        at=workflow.now()))
        if self._poster is None:
            self._poster = asyncio.ensure_future(self._post(self._notes))

    async def _post(self, notes: list[CallbackNote]) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(notes))
            try:
                await workflow.execute_activity(Activity.POST_CALLBACK, notes[0], start_to_close_timeout=timedelta(seconds=30),
                                                retry_policy=CALLBACK_DELIVERY)
            except ActivityError as failure:  # the receiver's trouble must not stop the operation
                workflow.logger.warning("callback %s not delivered: %s", notes[0].sequence, failure.cause or failure)
            notes.pop(0)

    async def delivered(self) -> None:
        """Wait until every queued callback note is out (before a run ends or continues as new)."""
        notes = self._notes
        if notes:
            await workflow.wait_condition(lambda: not notes)

    def line(self, action: str, outcome: str, detail: str = "", *, cluster: str | None = None) -> OperationRecord:
        """The next numbered audit line, for an activity to write with what it did (a retried
        activity writes it once: the number is the run's)."""
        self.seq += 1
        return OperationRecord(operation_id=workflow.info().workflow_id, operation=self.operation,
                               cluster=cluster or self.cluster, requested_by=self.asking.requested_by,
                               ticket=self.asking.ticket, action=action, outcome=outcome, detail=detail, seq=self.seq,
                               run_id=workflow.info().run_id)

    async def record(self, action: str, outcome: str, detail: str = "", *, cluster: str | None = None) -> None:
        """One audit line, filed under the operation's cluster (or `cluster`: a rollout's line about
        one of the clusters it changes)."""
        self.seq += 1
        await call_inventory(Activity.RECORD_OPERATION, OperationRecord(
            operation_id=workflow.info().workflow_id, operation=self.operation, cluster=cluster or self.cluster,
            requested_by=self.asking.requested_by, ticket=self.asking.ticket, action=action,
            outcome=outcome, detail=detail, seq=self.seq, run_id=workflow.info().run_id,
        ), None)
        phase = self._state().phase
        if ended(phase) and (phase in DELIVERED_BEFORE or patched(EVERY_ENDING_DELIVERED)):
            await self.delivered()  # the last word: every callback is out before the run ends


async def post_note(note: CallbackNote) -> None:
    """One signed note to a URL other than the operation's callback (a drain policy's owner
    webhook); a receiver that is down is logged, never a reason to stop."""
    try:
        await workflow.execute_activity(Activity.POST_CALLBACK, note, start_to_close_timeout=timedelta(seconds=30),
                                        retry_policy=CALLBACK_DELIVERY)
    except ActivityError as failure:
        workflow.logger.warning("note to %s not delivered: %s", note.url, failure.cause or failure)
