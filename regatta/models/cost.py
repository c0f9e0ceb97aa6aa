"""What a fleet costs and how long its versions are supported: the price list (per cloud, per
node size, per control plane), a cluster's estimated cost, and the clouds' support calendars.

Used by the cost and support rules, their file readers, `regatta clusters list`, the API's
/metrics and the fleet view.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from regatta.models.base import Model


class CloudPrices(Model):
    control_plane_hourly: float = Field(default=0, ge=0)
    nodes: dict[str, float] = Field(default_factory=dict, description="node size → price per node-hour")


class PriceList(Model):
    as_of: date
    currency: str = "USD"
    hours_per_month: float = Field(default=730, gt=0)
    clouds: dict[str, CloudPrices] = Field(default_factory=dict, description="eks | gke | aks | kubeconfig → prices")


class ClusterCost(Model):
    """A cluster's estimated cost from its node pools and the price list."""

    cluster: str
    hourly: float
    monthly: float
    currency: str = "USD"
    unpriced: list[str] = Field(default_factory=list, description="node pools whose size the price list lacks (counted as 0)")


class SupportCalendar(Model):
    """End of standard support per minor version: per cloud, and upstream for the rest."""

    as_of: date
    eks: dict[str, date] = Field(default_factory=dict)
    gke: dict[str, date] = Field(default_factory=dict)
    aks: dict[str, date] = Field(default_factory=dict)
    upstream: dict[str, date] = Field(default_factory=dict)
