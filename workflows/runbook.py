"""What every runbook shares: calling activities with the standard retry policy, waiting on a
cloud operation while it heartbeats, health gates, the audit trail, the fleet's calendar clock,
and reading a plain-JSON input without ever getting stuck on one that does not fit.

Workflows subclass `Runbook`; it holds no state of its own beyond what they set up
(`self.input`, `self.state`, `self.ref`, `self.audit_seq`, and for those that read the fleet's
clock `self.reads_fleet_clock`, `self.clock`, `self.clock_read_at`), so histories stay as they
were, except the queue of callback notes, made only when an input names a `callback_url`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from regatta.models import (
        Activity,
        CallbackNote,
        CloudOperation,
        FleetTime,
        HealthGate,
        HealthReport,
        OperationRecord,
        WaitForOperation,
    )
    from regatta.models.search_attributes import CLUSTER, ENVIRONMENT, OPERATION, TICKET
    from regatta.rules import operation_ids

# Quick calls to a cloud or API server: throttling and 5xx are retried with backoff for a
# while; what cannot succeed arrives as a non-retryable ApplicationError and stops at once.
QUICK_CALL = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=25)

# A callback receiver that is down gets a few tries over about a minute, then the note is dropped
# (and logged): an operation does not wait on its observers.
CALLBACK_DELIVERY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                maximum_interval=timedelta(seconds=20), maximum_attempts=5)
FINAL_PHASES = frozenset({"succeeded", "failed", "aborted", "halted", "not_started", "released"})

InputModel = TypeVar("InputModel", bound=BaseModel)


def parse_input(model: type[InputModel], raw: InputModel | dict, example: str) -> tuple[InputModel, str | None]:
    """The input as its model, or a stand-in built without validation and the reason it does not
    fit, which the workflow raises as a non-retryable InvalidInput. (An input the data converter
    cannot decode would instead fail workflow tasks forever and leave the workflow Running.)"""
    if isinstance(raw, model):
        return raw, None
    try:
        return model.model_validate(raw), None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors())
        # Required fields keep what was sent, as text (enough to name the cluster in progress);
        # optional ones take their defaults, so the stand-in always fits the state model.
        stand_in = model.model_construct(**{
            name: str(raw.get(name, "?")) if field.is_required() else field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
        })
        return stand_in, f"the input is not a valid {workflow.info().workflow_type} request ({problems}). Example: {example}"


class Runbook:
    operation: str  # the workflow type, as the audit trail names it

    @property
    def cluster_name(self) -> str:
        raise NotImplementedError

    def _check_start(self) -> None:
        """Refuse at once an input that does not fit its model, or a start under any workflow id
        but cluster-<name>: that id is the lock that keeps two operations off one cluster."""
        self.state.operation_id = workflow.info().workflow_id
        if self.input_error:
            self._step("failed", "reading the input")
            raise ApplicationError(self.input_error, type="InvalidInput", non_retryable=True)
        expected = operation_ids.operation_id(self.cluster_name)
        if self.state.operation_id != expected:
            self._step("failed", "checking the operation id")
            raise ApplicationError(
                f"start this {self.operation} with workflow id {expected!r}, not {self.state.operation_id!r}:"
                " that id is what keeps two operations off one cluster",
                type="WrongOperationId", non_retryable=True,
            )

    def _check_approval(self, approver: str, *, what: str) -> None:
        """Refuse an approval when nothing waits for one, or when it comes from the requester:
        four eyes means a second person."""
        if self.state.phase != "awaiting_approval":
            raise ApplicationError(f"nothing to approve: the {what} is {self.state.phase}", type="NotAwaitingApproval")
        if approver.strip().lower() == self.input.requested_by.strip().lower():
            raise ApplicationError(f"{approver} asked for this {what} and cannot approve it; a second person must",
                                   type="SelfApproval")

    def _tag(self, environment: str) -> None:
        """Search attributes, so the Temporal UI finds this run by cluster, environment, type and ticket."""
        ticket = self.input.ticket
        workflow.upsert_search_attributes([
            CLUSTER.value_set(self.cluster_name), ENVIRONMENT.value_set(environment), OPERATION.value_set(self.operation),
            *([TICKET.value_set(ticket)] if ticket else []),
        ])

    def _step(self, phase: str, step: str) -> None:
        changed = phase != self.state.phase
        self.state.phase = phase
        self.state.step = step
        workflow.logger.info("%s: %s", self.cluster_name, step)
        if getattr(self.input, "callback_url", None) and (changed or "_callback_notes" not in self.__dict__):
            self._tell_callback(phase, step)  # the first step is news too

    # ------------------------------------------------------------------ callbacks

    def _tell_callback(self, phase: str, step: str) -> None:
        """Queue a note for the callback URL; one coroutine posts them in order, so a slow
        receiver never holds the runbook up (a terminal phase waits for them in `_audit`)."""
        notes = self.__dict__.setdefault("_callback_notes", [])
        sequence = self.__dict__["_callback_sequence"] = self.__dict__.get("_callback_sequence", 0) + 1
        notes.append(CallbackNote(url=self.input.callback_url, operation_id=workflow.info().workflow_id,
                                  workflow_type=workflow.info().workflow_type, cluster=self.cluster_name,
                                  ticket=self.input.ticket, phase=phase, step=step, sequence=sequence, at=workflow.now()))
        if "_callback_poster" not in self.__dict__:
            self.__dict__["_callback_poster"] = asyncio.ensure_future(self._post_callbacks(notes))

    async def _post_callbacks(self, notes: list) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(notes))
            try:
                await workflow.execute_activity(Activity.POST_CALLBACK, notes[0], start_to_close_timeout=timedelta(seconds=30),
                                                retry_policy=CALLBACK_DELIVERY)
            except ActivityError as failure:  # the receiver's trouble must not stop the operation
                workflow.logger.warning("callback %s not delivered: %s", notes[0].sequence, failure.cause or failure)
            notes.pop(0)

    async def _callbacks_delivered(self) -> None:
        notes = self.__dict__.get("_callback_notes")
        if notes:
            await workflow.wait_condition(lambda: not notes)

    async def _call(self, activity: Activity, arg, result_type, *, timeout: float = 60, heartbeat: float | None = None):
        return await workflow.execute_activity(
            activity, arg, result_type=result_type,
            start_to_close_timeout=timedelta(seconds=timeout),
            heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
            retry_policy=QUICK_CALL,
        )

    async def _call_or_refuse(self, activity: Activity, arg, result_type, *, error_type: str):
        """A call whose non-retryable refusal (an unknown cluster, a wave that makes no sense) ends
        the run at once with the activity's own type and message."""
        try:
            return await self._call(activity, arg, result_type)
        except ActivityError as failure:
            cause = failure.cause
            raise ApplicationError(str(getattr(cause, "message", failure)), type=getattr(cause, "type", None) or error_type,
                                   non_retryable=True) from None

    async def _audit(self, action: str, outcome: str, detail: str = "") -> None:
        self.audit_seq += 1
        record = OperationRecord(
            operation_id=workflow.info().workflow_id, operation=self.operation, cluster=self.cluster_name,
            requested_by=self.input.requested_by, ticket=self.input.ticket, action=action,
            outcome=outcome, detail=detail, seq=self.audit_seq, run_id=workflow.info().run_id,  # type: ignore[arg-type]
        )
        await self._call(Activity.RECORD_OPERATION, record, None)
        if self.state.phase in FINAL_PHASES:  # the last word: every callback is out before the run ends
            await self._callbacks_delivered()

    # ------------------------------------------------------------------ the fleet's clock
    # Subclasses that read it set `reads_fleet_clock`, `clock` (None) and `clock_read_at` in __init__.

    async def _fleet_now(self) -> datetime:
        """The fleet's calendar time, for windows and freezes. A real fleet's clock is the wall
        clock Temporal's timers follow: read once, then Temporal's own time. A simulated fleet's
        clock may be moved (to open a window in a test or a demo): it is read again once it is
        `recheck_seconds` old."""
        if not self.reads_fleet_clock:  # a run that began before waves read the fleet's clock
            return workflow.now()
        clock = self.clock
        if clock is None or (clock.recheck_seconds is not None
                             and workflow.now() - self.clock_read_at >= timedelta(seconds=clock.recheck_seconds)):
            clock = self.clock = await workflow.execute_activity(
                Activity.READ_FLEET_CLOCK, result_type=FleetTime, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=QUICK_CALL)
            self.clock_read_at = workflow.now()
        return self._fleet_time()

    def _fleet_time(self) -> datetime:
        """The fleet's time from the last reading, without reading again (for Queries and stamps)."""
        clock = self.clock
        if clock is None or clock.recheck_seconds is None:
            return workflow.now()
        return clock.now + (workflow.now() - self.clock_read_at)

    def _heartbeat(self) -> float:
        return max(self.input.activity_heartbeat_timeout_seconds, 3 * self.input.poll_interval_seconds)

    async def _wait(self, operation: CloudOperation) -> CloudOperation:
        return await self._call(
            Activity.WAIT_FOR_OPERATION,
            WaitForOperation(cluster=self.ref, operation=operation, poll_interval_seconds=self.input.poll_interval_seconds,
                             timeout_seconds=self.input.cloud_operation_timeout_seconds),
            CloudOperation,
            timeout=self.input.cloud_operation_timeout_seconds + 120,
            heartbeat=self._heartbeat(),
        )

    def _token(self, what: str) -> str:
        # Unique per run and step: a retried start finds its own operation, a new run starts anew.
        return f"{workflow.info().run_id}-{what}"[:64]

    async def _cloud_operation(self, start: Activity, request) -> CloudOperation:
        """Ask a cloud for a long-running change and wait until it has finished."""
        return await self._wait(await self._call(start, request, CloudOperation))

    async def _health_gate(self, after: str, *, timeout: float, failure_type: str = "HealthGateFailed",
                           min_ready_nodes: int = 0) -> None:
        self.state.step = f"health gate after {after}"
        await self._call(
            Activity.HEALTH_GATE,
            HealthGate(cluster=self.ref, timeout_seconds=timeout, poll_interval_seconds=self.input.poll_interval_seconds,
                       after=after, failure_type=failure_type, min_ready_nodes=min_ready_nodes),
            HealthReport,
            timeout=timeout + 120,
            heartbeat=self._heartbeat(),
        )
