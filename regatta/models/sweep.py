"""FleetSweep: what a scheduled sweep reads into the inventory, its progress and result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regatta.models.base import Model
from regatta.models.calendar import ClusterSelector


class FleetSweepInput(Model):
    """What a scheduled FleetSweep runs with; `{}` sweeps the whole fleet."""

    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    batch_size: int = Field(default=100, ge=1, le=1000, description="clusters read by one activity")


class FleetSweepProgress(Model):
    operation_id: str = ""
    phase: Literal["listing", "sweeping", "succeeded"] = "listing"
    step: str = "starting"
    total: int = 0
    swept: int = 0
    health: dict[str, int] = Field(default_factory=dict, description="healthy / degraded / unreachable → clusters")


class FleetSweepResult(Model):
    operation_id: str
    total: int
    health: dict[str, int]
    message: str
