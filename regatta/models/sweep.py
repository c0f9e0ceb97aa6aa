"""FleetSweep: what a scheduled sweep reads into the inventory, its progress and result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regatta.models.base import Model
from regatta.models.calendar import ClusterSelector
from regatta.models.fleet import TargetsAtSite
from regatta.models.operations import Reported


class FleetSweepInput(Model):
    """What a scheduled FleetSweep runs with; `{}` sweeps the whole fleet."""

    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    batch_size: int = Field(default=100, ge=1, le=1000, description="clusters read by one activity")
    move_displaced: bool = Field(default=True, description="after the sweep, start a MoveWorkloads for each placed"
                                 " application with a share on a cluster that left, is held for evacuation, or has been"
                                 " unhealthy past its placement's damping")
    lost_after_seconds: float = Field(default=30, gt=0, le=3600, description="those moves: how long a cluster they move"
                                      " off may not answer before it counts as lost (it keeps what it ran)")


class SweepClusters(TargetsAtSite, Model):
    """One batch of a sweep: clusters read by one activity, all reached at one `site` (or centrally)."""

    names: list[str]
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches these clusters: the call goes to its queue (left out for clusters reached"
        " centrally)"))


class FleetSweepProgress(Reported):
    operation_id: str = ""
    phase: Literal["listing", "sweeping", "succeeded"] = "listing"
    step: str = "starting"
    total: int = 0
    swept: int = 0
    health: dict[str, int] = Field(default_factory=dict, description="healthy / degraded / unreachable → clusters")
    moves: dict[str, str] = Field(default_factory=dict, description="placed application → the move started for it, and why")


class FleetSweepResult(Model):
    operation_id: str
    total: int
    health: dict[str, int]
    moves: dict[str, str] = Field(default_factory=dict)
    message: str
