"""Placement of an application bundle: which clusters run it, how each workload's replicas are
divided between them, why (a score and its terms per cluster, a reason for every cluster left
out), and the moves that take a share off a cluster without dropping below what the workload
needs.

Used by the placement rules, the PolicyRollout plan, the MoveWorkloads and EvacuateCluster
workflows, the fleet sweep's re-placement, the inventory, the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from regatta.models.base import Model
from regatta.models.calendar import ClusterSelector
from regatta.models.operations import Reported
from regatta.models.timings import KubeTimings

APP_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The kinds whose replicas a placement divides.
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


class PlacementSpread(Model):
    """Pick clusters spread over a field: the clusters picked per value differ by at most `max_skew`
    (Kubernetes' topology spread, over clusters)."""

    over: str = Field(default="region", description="region, provider, environment, or label:<key> (a zone label, say)")
    max_skew: int = Field(default=1, ge=1, le=1000)


class PreferredClusters(Model):
    """A soft affinity: clusters the selector takes score `weight` more."""

    selector: ClusterSelector
    weight: int = Field(ge=1, le=100)


class ReplicaWeight(Model):
    """Static weight for dividing replicas: the first rule whose selector takes a cluster gives its weight."""

    selector: ClusterSelector
    weight: int = Field(ge=0, le=1000)


class FreeCapacity(Model):
    """What a cluster must have free (the fleet sweep's reading) to be chosen, besides room for its share."""

    cpu: str = Field(default="0", description="a Kubernetes quantity: 500m, 2")
    memory: str = Field(default="0", description="a Kubernetes quantity: 512Mi, 4Gi")


class Placement(Model):
    """Where an application bundle runs: `pick` all of the clusters its targets and filters leave, the
    best `count`, or a fixed list; `divide` each workload's replicas among them."""

    pick: Literal["all", "count", "fixed"] = "all"
    count: int | None = Field(default=None, ge=1, le=10000, description="pick: count: how many clusters")
    clusters: list[str] = Field(default_factory=list, description="pick: fixed: these clusters")
    spread: PlacementSpread | None = None
    affinity: ClusterSelector = Field(default_factory=ClusterSelector, description="required: a cluster must match it")
    anti_affinity: list[ClusterSelector] = Field(default_factory=list, description="a cluster any of these takes is never chosen")
    prefer: list[PreferredClusters] = Field(default_factory=list, description="soft affinity: added to the score")
    min_free: FreeCapacity = Field(default_factory=FreeCapacity)
    divide: Literal["capacity", "weight"] = Field(default="capacity", description="capacity: in proportion to the"
                                                  " replicas each cluster has room for; weight: by `weights`")
    weights: list[ReplicaWeight] = Field(default_factory=list, description="divide: weight: clusters no rule takes weigh 1")
    damping_seconds: float = Field(default=600, ge=0, le=7 * 86400, description="how long a chosen cluster must stay"
                                   " unhealthy before its share moves (a cluster that flaps moves nothing)")
    service: str | None = Field(default=None, description="the traffic manager's record for this application, whose"
                                " weights follow the replica shares; None: the bundle's name, when such a record exists")

    @model_validator(mode="after")
    def _pick_has_what_it_needs(self) -> Placement:
        if self.pick == "count" and self.count is None:
            raise ValueError("pick: count needs count: N")
        if self.pick == "fixed" and not self.clusters:
            raise ValueError("pick: fixed needs clusters: [names]")
        if self.pick != "count" and self.count is not None:
            raise ValueError(f"count is for pick: count (this placement picks {self.pick})")
        if self.pick != "fixed" and self.clusters:
            raise ValueError(f"clusters is for pick: fixed (this placement picks {self.pick})")
        return self


class Workload(Model):
    """One workload of the bundle whose replicas are divided: what it needs per replica and in all."""

    key: str = Field(description="Kind/namespace/name")
    replicas: int = Field(ge=0)
    cpu_m: int = Field(default=0, ge=0, description="one replica's CPU request, millicores")
    memory_mi: int = Field(default=0, ge=0, description="one replica's memory request, MiB")
    disruptions_allowed: int | None = Field(default=None, description="what its PodDisruptionBudget lets go at once"
                                            " across the fleet; None: it has none")


class ClusterShare(Model):
    """A chosen cluster: its score with the terms that made it, and its share of each workload."""

    cluster: str
    score: float
    terms: dict[str, float] = Field(default_factory=dict, description="term → points")
    replicas: dict[str, int] = Field(default_factory=dict, description="workload key → replicas here")


class PlacementDecision(Model):
    """A placement as decided and recorded: who was chosen and why, who was not and why not."""

    app: str
    revision: str
    decided_at: datetime
    pick: str
    workloads: list[Workload]
    chosen: list[ClusterShare]
    not_chosen: dict[str, str] = Field(default_factory=dict, description="cluster → why it was not chosen")
    operation_id: str = ""
    note: str = Field(default="", description="what made this decision: a rollout, a move off a cluster")

    def share(self, cluster: str) -> dict[str, int]:
        return next((c.replicas for c in self.chosen if c.cluster == cluster), {})

    def totals(self) -> dict[str, int]:
        return {w.key: w.replicas for w in self.workloads}


class MoveStep(Model):
    """One step of a move: first `raise_to` (cluster → workload → replicas) and wait until those are
    available, only then `lower_to`."""

    raise_to: dict[str, dict[str, int]] = Field(default_factory=dict)
    lower_to: dict[str, dict[str, int]] = Field(default_factory=dict)


class MovePlan(Model):
    app: str
    revision: str
    leaving: list[str]
    decision: PlacementDecision = Field(description="the placement once the move is done")
    before: dict[str, dict[str, int]] = Field(default_factory=dict, description="cluster → workload → replicas now")
    steps: list[MoveStep]
    withdraw: list[str] = Field(default_factory=list, description="clusters that hold no share afterwards: the bundle is"
                                " withdrawn from them once every step is done")
    traffic: dict[str, int] = Field(default_factory=dict, description="the service's weights afterwards, when it has a"
                                    " traffic record")
    service: str | None = None
    sites: dict[str, str] = Field(default_factory=dict, exclude_if=lambda sites: not sites, description=(
        "cluster → the site whose agent alone reaches it, for the clusters the move touches that sit at one"))


class PlanMove(Model):
    app: str
    leaving: list[str]
    reason: str
    operation_id: str = ""
    now: datetime


class MoveWorkloadsInput(KubeTimings):
    """What `regatta cluster evacuate`, a decommission, the fleet sweep or a rollout that lost a
    cluster sends: move an application's share off these clusters, new replicas up elsewhere
    before any go."""

    app: str = Field(pattern=APP_NAME, max_length=50)
    leaving: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=500)
    unreachable_ok: bool = Field(default=False, description="a leaving cluster that cannot be reached keeps what it ran"
                                 " (a lost cluster); otherwise the move fails until it can be")
    requested_by: str = "temporal-ui"
    ticket: str | None = None
    timeout_seconds: float = Field(default=300, gt=0, le=3600, description="how long a cluster may take to have its"
                                   " new replicas available")
    lost_after_seconds: float = Field(default=30, gt=0, le=3600, description="unreachable_ok: how long a leaving cluster"
                                      " may not answer before it counts as lost")
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class MoveWorkloadsProgress(Reported):
    operation_id: str = ""
    app: str
    phase: Literal["planning", "moving", "withdrawing", "succeeded", "failed"] = "planning"
    step: str = "starting"
    steps_done: int = 0
    steps: int = 0
    shares: dict[str, dict[str, int]] = Field(default_factory=dict, description="cluster → workload → replicas now")
    message: str = ""


class MoveWorkloadsResult(Model):
    operation_id: str
    app: str
    outcome: Literal["succeeded", "nothing_to_move"]
    shares: dict[str, dict[str, int]]
    withdrawn: list[str]
    kept_unreachable: list[str] = Field(default_factory=list)
    traffic: dict[str, int] = Field(default_factory=dict)
    message: str


class EvacuateClusterInput(Model):
    """`regatta cluster evacuate CLUSTER`: every application placed on it moves to other clusters."""

    cluster: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=500)
    unreachable_ok: bool = False
    requested_by: str = "temporal-ui"
    ticket: str | None = None
    timeout_seconds: float = Field(default=300, gt=0, le=3600)
    poll_interval_seconds: float = Field(default=1, gt=0, le=60)
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class EvacuateClusterProgress(Reported):
    operation_id: str = ""
    cluster: str
    phase: Literal["listing", "moving", "succeeded", "failed"] = "listing"
    step: str = "starting"
    apps: dict[str, str] = Field(default_factory=dict, description="application → pending | moving | moved | failed: why")


class EvacuateClusterResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded"] = "succeeded"
    moved: list[str]
    message: str


class Displaced(Model):
    """A placed application whose share should move off a cluster, and why (the fleet sweep's finding)."""

    app: str
    cluster: str
    because: str
