"""A staged rollout over the fleet, as PatchWave and PolicyRollout both run one: stage after stage, each
waiting for a second person's approval when it asks for one, its clusters started as slots free up (at
most the stage's concurrency at once, none while paused), a soak before the next stage; a failure budget
that halts the rollout when more clusters fail than it allows; a history that fills carried into a fresh
run; and at the end the clusters counted by what they came to.

The workflow keeps what is its own (which cluster may start now, what starting one does, its gates) and
hands this object the rest. Written once here, it is one definition of when a rollout stops starting
clusters (`stopping`) and of how it ends (`ended_as`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from temporalio import workflow

from workflows.pieces.fleet_clock import FleetClock
from workflows.pieces.trail import Trail


class Entry(Protocol):
    name: str
    status: Any
    detail: str


class Stage(Protocol):
    name: str
    status: Any
    concurrency: int
    soak_seconds: float
    soak_ends: Any
    approved_by: str | None


class Staged(Protocol):
    """The state fields a staged rollout reads and sets."""

    stages: Any
    paused: bool
    abort_requested: bool
    abort_reason: str | None
    halted_reason: str | None
    failed: int
    failure_budget: int
    message: str
    step: str


E = TypeVar("E", bound=Entry)


class StagedRollout(Generic[E]):
    def __init__(self, *, trail: Trail, state: Callable[[], Staged], clock: FleetClock, requested_by: Callable[[], str],
                 continue_after_events: Callable[[], int]):
        self.trail = trail
        self._state = state
        self.clock = clock
        self.requested_by = requested_by
        self.continue_after_events = continue_after_events
        self.in_flight = 0  # clusters started in this run and not ended
        self.continuing = False  # the history is full: start nothing more here, the next run starts the rest

    @property
    def state(self) -> Staged:
        return self._state()

    def halting(self) -> bool:
        """An abort was asked or the rollout halted (a failure budget spent, a gate): nothing new starts, ever."""
        return self.state.abort_requested or self.state.halted_reason is not None

    def stopping(self) -> bool:
        """Nothing new starts in this run: it halts, or its history is full and a fresh run goes on."""
        return self.halting() or self.continuing

    def history_full(self) -> bool:
        return (workflow.info().get_current_history_length() >= self.continue_after_events()
                or workflow.info().is_continue_as_new_suggested())

    def count_failure(self) -> None:
        """A cluster failed: counted against the failure budget (`halt_when_over_budget` weighs the count)."""
        self.state.failed += 1

    def halt_when_over_budget(self, entry: E) -> None:
        """The rollout halts once more clusters have failed than its failure budget allows, naming the last."""
        if self.state.failed > self.state.failure_budget and self.state.halted_reason is None:
            self.state.halted_reason = (f"{self.state.failed} clusters failed, more than the failure budget of"
                                        f" {self.state.failure_budget} (last: {entry.name}: {entry.detail})")

    async def await_approval(self, stage: Stage) -> None:
        """The stage waits for someone other than the requester to approve it (or for the rollout to stop)."""
        stage.status = "awaiting_approval"
        self.trail.step("awaiting_approval", f"stage {stage.name} waits for someone other than {self.requested_by()}"
                        " to approve")
        await workflow.wait_condition(lambda: bool(stage.approved_by) or self.stopping())

    async def run_stage(self, stage: Stage, *, left_now: Callable[[], bool], any_left: Callable[[], bool],
                        ready: Callable[[], Awaitable[E | None]], claim: Callable[[E], None],
                        work: Callable[[E], Awaitable[None]], stopped: Callable[[], None] | None = None) -> None:
        """Start the stage's clusters as slots free up, until none is left and none runs (a retried cluster is left
        again and is picked up here). `left_now` may settle the workflow's own bookkeeping and says whether a cluster
        waits to start; `any_left` says the same without changing anything (it is a wait's condition); `ready` gives
        the cluster that may start now, or None when none may yet (it has waited, if waiting was due); `claim` marks
        it started, at once, before the next look; `work` is what starting it does. `stopped` runs once the loop ends
        for a reason other than a full history, before what runs is awaited."""
        started: list[asyncio.Future[None]] = []

        async def counted(entry: E) -> None:
            try:
                await work(entry)
            finally:
                self.in_flight -= 1

        while not self.stopping():
            if not left_now():
                if self.in_flight == 0:
                    break
                await workflow.wait_condition(lambda: self.in_flight == 0 or any_left() or self.stopping())
                continue
            if self.history_full():
                self.continuing = True
                break
            await workflow.wait_condition(
                lambda: self.stopping() or (not self.state.paused and self.in_flight < stage.concurrency))
            if self.stopping():
                break
            entry = await ready()
            if entry is None:
                continue
            claim(entry)
            self.in_flight += 1
            started.append(asyncio.ensure_future(counted(entry)))
        if not self.continuing and stopped is not None:
            stopped()
        if started:
            await asyncio.gather(*started)

    async def soak(self, stage: Stage) -> None:
        """The stage soaks before the next one starts, on the fleet's clock; an abort or a halt ends it early."""
        stage.soak_ends = await self.clock.soak_end(stage.soak_seconds)
        stage.status = "soaking"
        self.trail.step("soaking", f"stage {stage.name} soaks for {stage.soak_seconds:g}s before the next stage")
        await self.clock.soak_until(stage.soak_ends, seconds=stage.soak_seconds, wake=self.stopping)

    async def continue_as_new(self, input: Any) -> NoReturn:
        """Carry the state into a fresh run once what this run started has ended (nothing is awaited across runs, so
        no cluster is left without a run watching it) and every callback note is out."""
        self.state.step = f"continuing as new after {workflow.info().get_current_history_length()} history events"
        await workflow.wait_condition(lambda: self.in_flight == 0)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.trail.delivered()
        workflow.continue_as_new(input.model_copy(update={"carried": self.state}))

    def tally(self) -> tuple[dict[str, int], dict[str, str], str]:
        """Every cluster counted by what it came to, the failed ones with why, and the counts in words."""
        counts: dict[str, int] = {}
        for stage in self.state.stages:
            for entry in stage.clusters:
                counts[entry.status] = counts.get(entry.status, 0) + 1
        failed = {c.name: c.detail for s in self.state.stages for c in s.clusters if c.status == "failed"}
        return counts, failed, ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no clusters"

    def ended_as(self, summary: str, *, done: str) -> str:
        """How it ended (halted, aborted or succeeded), said in the state's message with the summary."""
        if self.state.halted_reason:
            self.state.message = f"halted: {self.state.halted_reason}; {summary}"
            return "halted"
        if self.state.abort_requested:
            self.state.message = f"aborted ({self.state.abort_reason or 'no reason given'}); {summary}"
            return "aborted"
        self.state.message = f"{done}: {summary}"
        return "succeeded"
