"""The fleet's calendar clock, as a workflow reads it: what maintenance windows, freezes and drain
escalations are timed on.

Every look at the clock (`now`) reads it through an activity, so every decision taken on the
calendar (a window open, a drain blocked long enough to tell its owner) rests on a value recorded
in the history. It used to read once and then add the time passed since (`workflow.now()`), but
a worker that picks a workflow up after another died may compute that difference otherwise than a
replay does: the chaos benchmark caught an upgrade whose replay read the clock where its first run
had not, and whose workflow task then failed for ever (docs/benchmarks.md, Chaos). Runs that began
before keep the old reading under their recorded commands (`EACH_LOOK`, DESIGN rule 9).

A real fleet's clock is the wall clock; a simulated fleet's may be moved (to open a window in a
test or a demo), and a nap on it never sleeps longer than `recheck_seconds`. `sleep_until` is the
window wait ClusterUpgrade and PatchWave share; `soak_end` and `soak_until` the wait after a stage or
a minor, timed on the same clock, so moving a simulated fleet's clock forward ends a soak as it opens
a window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.pieces.calls import QUICK_CALL
from workflows.pieces.patches import EACH_LOOK, SOAKS_ON_FLEET_CLOCK, patched

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, FleetTime


class FleetClock:
    def __init__(self, *, reads_the_fleet: bool = True):
        # False for a run that began before workflows read the fleet's clock (recorded histories).
        self.reads_the_fleet = reads_the_fleet
        self.reading: FleetTime | None = None
        self.read_at = datetime.min
        self.each_look = False
        self.soaks_on_fleet_clock = False

    async def now(self) -> datetime:
        """The fleet's time, read through an activity (before EACH_LOOK: again only once the last
        reading was stale)."""
        if not self.reads_the_fleet:
            return workflow.now()
        reading = self.reading
        self.each_look = patched(EACH_LOOK)
        if reading is None or self.each_look or (
                reading.recheck_seconds is not None
                and workflow.now() - self.read_at >= timedelta(seconds=reading.recheck_seconds)):
            self.reading = await workflow.execute_activity(
                Activity.READ_FLEET_CLOCK, result_type=FleetTime, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=QUICK_CALL)
            self.read_at = workflow.now()
        return self.time()

    def time(self) -> datetime:
        """The fleet's time from the last reading, without reading again (for Queries and stamps)."""
        reading = self.reading
        if reading is None or (reading.recheck_seconds is None and not self.each_look):
            return workflow.now()
        return reading.now + (workflow.now() - self.read_at)

    async def sleep_until(self, opens: datetime, *, wake: Callable[[], bool]) -> None:
        """One nap toward `opens` on the last reading, at least a second, no longer than a clock
        that may jump allows, ended early when `wake()` turns true (an operator's control)."""
        timeout = opens - self.time()
        if self.reading is not None and self.reading.recheck_seconds is not None:
            timeout = min(timeout, timedelta(seconds=self.reading.recheck_seconds))
        try:
            await workflow.wait_condition(wake, timeout=max(timeout, timedelta(seconds=1)))
        except TimeoutError:
            pass

    async def soak_end(self, seconds: float) -> datetime:
        """When a soak of `seconds` that starts now ends on the fleet's clock (read now, so that the end shown is
        the one waited for: a clock moved while it is read moves the end too)."""
        self.soaks_on_fleet_clock = patched(SOAKS_ON_FLEET_CLOCK)
        if not self.soaks_on_fleet_clock:  # a run begun before: from the last reading
            return self.time() + timedelta(seconds=seconds)
        return await self.now() + timedelta(seconds=seconds)

    async def soak_until(self, ends: datetime, *, seconds: float, wake: Callable[[], bool]) -> None:
        """Wait until the fleet's clock reads `ends` (from `soak_end`), ended early when `wake()` turns true. On the
        wall clock, and in a run begun before the patch, it is one Temporal timer of `seconds`; on a simulated
        fleet's clock it naps at most `recheck_seconds` at a time at first and ends once the clock reads past
        `ends`, however it got there."""
        if not self.soaks_on_fleet_clock or self.reading is None or self.reading.recheck_seconds is None:
            # the wall clock: one timer on Temporal's clock (a worker's clock, behind by some seconds, cuts nothing)
            try:
                await workflow.wait_condition(wake, timeout=timedelta(seconds=seconds))
            except TimeoutError:
                pass
            return
        # A clock that may be moved: a look every recheck_seconds at first, then ever fewer (up to one a minute), so
        # that a long soak left to run keeps its history short and a clock moved at its start is seen at once.
        began, most = workflow.now(), timedelta(seconds=self.reading.recheck_seconds)
        while not wake() and await self.now() < ends:
            if workflow.now() - began > timedelta(minutes=1):
                most = max(min(most * 2, timedelta(minutes=1)), most)
            try:
                await workflow.wait_condition(wake, timeout=max(min(ends - self.time(), most), timedelta(milliseconds=10)))
            except TimeoutError:
                pass
