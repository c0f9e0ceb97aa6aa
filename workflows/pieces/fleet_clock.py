"""The fleet's calendar clock, as a workflow reads it: what maintenance windows, freezes and drain
escalations are timed on.

A real fleet's clock is the wall clock Temporal's timers follow: read once, then Temporal's own
time. A simulated fleet's clock may be moved (to open a window in a test or a demo): it is read
again once the last reading is `recheck_seconds` old, and a nap on it never sleeps longer than
that. `sleep_until` is the window wait ClusterUpgrade and PatchWave share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.pieces.calls import QUICK_CALL

with workflow.unsafe.imports_passed_through():
    from regatta.models import Activity, FleetTime


class FleetClock:
    def __init__(self, *, reads_the_fleet: bool = True):
        # False for a run that began before workflows read the fleet's clock (recorded histories).
        self.reads_the_fleet = reads_the_fleet
        self.reading: FleetTime | None = None
        self.read_at = datetime.min

    async def now(self) -> datetime:
        """The fleet's time, read again through an activity when the last reading is stale."""
        if not self.reads_the_fleet:
            return workflow.now()
        reading = self.reading
        if reading is None or (reading.recheck_seconds is not None
                               and workflow.now() - self.read_at >= timedelta(seconds=reading.recheck_seconds)):
            self.reading = await workflow.execute_activity(
                Activity.READ_FLEET_CLOCK, result_type=FleetTime, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=QUICK_CALL)
            self.read_at = workflow.now()
        return self.time()

    def time(self) -> datetime:
        """The fleet's time from the last reading, without reading again (for Queries and stamps)."""
        reading = self.reading
        if reading is None or reading.recheck_seconds is None:
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
