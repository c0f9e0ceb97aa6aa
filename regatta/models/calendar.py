"""Which clusters, and when: cluster selectors, maintenance windows, freezes, and a reading of the fleet's clock.

Used by waves, upgrades, the window rules and the fleet clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from regatta.models.base import Model, ProviderKind

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# A label's key as Kubernetes writes one: an optional DNS-subdomain prefix and a slash, then a name.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


class LabelRequirement(Model):
    """One of a selector's `matchExpressions`, as Kubernetes' LabelSelectorRequirement: In and NotIn name values,
    Exists and DoesNotExist none. NotIn and DoesNotExist take a cluster without the label."""

    key: str = Field(pattern=LABEL_KEY)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> LabelRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"{self.key} {self.operator}: name at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"{self.key} {self.operator}: takes no values")
        return self


class ClusterSelector(Model):
    """Which clusters: every given field must match (an empty selector matches every cluster). Labels select as
    Kubernetes' label selectors do: `labels` (or `matchLabels`) by equality, `match_expressions` (or
    `matchExpressions`) by In, NotIn, Exists and DoesNotExist."""

    labels: dict[str, str] = Field(default_factory=dict, validation_alias=AliasChoices("labels", "matchLabels"))
    # left out while empty: a worker of the release before, which refuses keys it does not know, still takes it
    match_expressions: list[LabelRequirement] = Field(
        default_factory=list, max_length=50, validation_alias=AliasChoices("match_expressions", "matchExpressions"),
        exclude_if=lambda expressions: not expressions)
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
