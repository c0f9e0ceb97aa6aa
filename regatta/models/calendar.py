"""Which clusters, and when: cluster selectors, maintenance windows, freezes, and a reading of the fleet's clock.

Used by waves, upgrades, the window rules and the fleet clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model, ProviderKind

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ClusterSelector(Model):
    """Which clusters: every given field must match (an empty selector matches every cluster)."""

    labels: dict[str, str] = Field(default_factory=dict)
    environment: str | None = None
    provider: ProviderKind | None = None
    region: str | None = None
    clusters: list[str] | None = Field(default=None, description="an explicit group: these cluster names only")


class MaintenanceWindow(Model):
    """A recurring window in which the clusters it applies to may be touched."""

    name: str = ""
    applies_to: ClusterSelector = Field(default_factory=ClusterSelector)
    days: list[Weekday] = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
    duration_minutes: int = Field(ge=1, le=7 * 24 * 60)
    timezone: str = "UTC"


class Freeze(Model):
    """A period in which nothing in the fleet is touched (end of year, a product launch)."""

    name: str
    start: datetime
    end: datetime


class FleetTime(Model):
    """A reading of the fleet's calendar clock (regatta/fleet_clock.py)."""

    now: datetime
    recheck_seconds: float | None = Field(default=None, description="None: the wall clock, which Temporal's timers"
                                          " follow; else a clock that may jump (the simulator's), to be read again"
                                          " this often while anything waits on it")
