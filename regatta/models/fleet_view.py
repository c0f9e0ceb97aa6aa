"""The fleet view's shapes: what a page of the fleet table asks for (filters, sort, page) and
what one row shows. Used by the fleet-view rules and the web pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model

SORTABLE = ("name", "provider", "region", "environment", "version", "skew", "end_of_support", "image_age", "health",
            "nodes", "pods", "cpu", "memory", "cost", "compliance", "violations", "drifts", "hold", "next_window",
            "operation", "readiness", "labels")
ComplianceFilter = Literal["", "compliant", "non_compliant", "drifted", "error", "pending", "none"]


class FleetQuery(Model):
    labels: dict[str, str] = Field(default_factory=dict)
    provider: str = ""
    region: str = ""
    environment: str = ""
    compliance: ComplianceFilter = Field(default="", description="clusters with a record in this state; none: no record")
    sort: str = "name"
    descending: bool = False
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=500)


class FleetRow(Model):
    name: str
    provider: str
    region: str
    environment: str
    labels: dict[str, str]
    control_plane: str
    node_versions: list[str]
    skew: int
    end_of_support: date | None
    support: str
    image_age_days: int | None
    health: str
    nodes: int
    pods: str = Field(description="free / capacity")
    cpu_used: float | None
    memory_used: float | None
    monthly_cost: float
    currency: str
    compliance: dict[str, int] = Field(default_factory=dict, description="state → bundles")
    violations: int = 0
    drifts: int = 0
    hold: str = ""
    operation: str = Field(default="", description="the operation in flight on it: its id")
    operation_type: str = ""
    next_window: datetime | None = Field(default=None, description="when its next maintenance window opens (scheduled waves)")
    next_window_schedule: str = ""
    readiness: str = Field(default="", description="its readiness for its next minor as the last sweep read it, e.g."
                           " '1.32: ready' or '1.32: 2 blocking'; empty when never read")
    readiness_blocking: int = 0
