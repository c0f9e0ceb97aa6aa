"""The activity that reads the fleet's calendar clock (see regatta/fleet_clock.py)."""

from __future__ import annotations

from temporalio import activity

from regatta.fleet_clock import read_fleet_clock
from regatta.models import Activity, FleetTime


class FleetClockActivities:
    def __init__(self, sim_url: str | None):
        self.sim_url = sim_url

    @activity.defn(name=Activity.READ_FLEET_CLOCK)
    def read_fleet_clock(self) -> FleetTime:
        return read_fleet_clock(self.sim_url)
