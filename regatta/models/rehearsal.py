"""A rehearsal (`regatta upgrade rehearse`, `regatta wave rehearse`): the real ClusterUpgrade run on a twin of the
fleet in a private simulator, time-compressed, and what it predicts for each cluster and for the wave."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model


class DrainStall(Model):
    """A drain the budgets held in the rehearsal: where, by what, for how long (in the real fleet's seconds)."""

    node: str
    budgets: list[str] = Field(description="namespace/name of each budget that refused an eviction")
    pods: list[str] = Field(description="namespace/name of each pod they held")
    seconds: float = Field(description="how long the drain stood blocked, as the real fleet would wait it")
    reached: str = Field(description="the last step of its drain policy it reached: retrying, owner_notified,"
                         " awaiting_approval, deleting_pods")


RehearsalOutcome = Literal["succeeded", "failed", "refused", "stalled"]


class ClusterRehearsal(Model):
    """One cluster's upgrade as the rehearsal ran it (or ran a cluster of the same shape for it)."""

    cluster: str
    rehearsed_as: str = Field(description="the cluster whose run stands for this one (the same node pools, workloads,"
                              " budgets and cloud: one run per shape)")
    outcome: RehearsalOutcome = Field(description="stalled: it would wait for a person (an approval to delete the pods"
                                      " a budget holds) and the rehearsal stopped it there")
    predicted_seconds: float = Field(description="how long the upgrade would take on the real fleet, to where it ended"
                                     " (a stalled one: to the end of its approval timeout, when it would fail)")
    message: str = ""
    error_type: str | None = Field(default=None, description="what ended it, as the workflow says it (ErrorType)")
    stalls: list[DrainStall] = Field(default_factory=list)
    escalations: list[str] = Field(default_factory=list, description="each step of a drain policy it reached, as the"
                                   " audit trail would say it")
    left_out: list[str] = Field(default_factory=list, description="what the rehearsal did not do that the real upgrade"
                                " would (a hook's call out, a callback)")
    corrected_by: float = Field(default=1.0, description="the factor its time on the twin was multiplied by: the median"
                                " of real / rehearsed over its cloud's upgrades held against earlier rehearsals")


class WaveClusterRehearsal(Model):
    """One cluster of a rehearsed wave: when it would start and end, and what would stop it."""

    cluster: str
    stage: str | None
    outcome: Literal["succeeded", "failed", "not_ready", "held", "skipped", "at_target", "unstaged", "not_started",
                     "never"] = Field(description=(
                         "what the wave would record for it; not_started: the wave would halt before it starts; never:"
                         " no window opens within a year"))
    rehearsed: RehearsalOutcome | None = Field(default=None, description="how its upgrade ended on the twin (stalled:"
                                               " it would wait for a person)")
    starts: datetime | None = None
    ends: datetime | None = None
    predicted_seconds: float | None = None
    window_closes: datetime | None = Field(default=None, description="the window it starts in closes before it would"
                                           " end: the upgrade pauses at its next step until a window opens")
    because: str = ""
    stalls: list[DrainStall] = Field(default_factory=list)
    corrected_by: float = 1.0


class StageRehearsal(Model):
    name: str
    starts: datetime | None = None
    ends: datetime | None = None
    failures: int = 0
    failure_budget: int = Field(description="failures the wave tolerates; one more halts it")
    halts: bool = Field(default=False, description="its failures would exceed the wave's failure budget")


class WaveRehearsal(Model):
    """What a wave would do on the twin: per cluster and per stage, and the whole."""

    wave: str
    target_version: str
    rehearsed_at: datetime
    starts: datetime = Field(description="when the rehearsal took the wave to start (now, on the fleet's calendar)")
    ends: datetime | None = Field(default=None, description="when its last cluster would end (or the wave halt)")
    total_seconds: float | None = None
    compress: float = Field(description="how many times faster than the real fleet the twin ran")
    halted_at: str | None = Field(default=None, description="the stage whose failures would halt the wave")
    stages: list[StageRehearsal]
    clusters: list[WaveClusterRehearsal]
    assumes: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)


class ClusterAccuracy(Model):
    """One cluster's rehearsal against what its real upgrade did."""

    cluster: str
    predicted_outcome: str
    actual_outcome: str | None = Field(default=None, description="None: its real upgrade has not ended since")
    predicted_seconds: float | None = None
    actual_seconds: float | None = None
    error: float | None = Field(default=None, description="(predicted - actual) / actual: above 0 said too long")
    stalls_predicted: list[str] = Field(default_factory=list, description="the budgets the rehearsal said would hold it")
    stalls_met: list[str] = Field(default_factory=list, description="of those, the ones its real upgrade's trail names")
    corrected_by: float = Field(default=1.0, description="the correction in the prediction: predicted / corrected_by is"
                                " what the twin alone said, what later corrections are learned from")


class RehearsalAccuracy(Model):
    """A rehearsal held against reality: per cluster and in total, as far as the real run has gone."""

    checked_at: datetime
    clusters: list[ClusterAccuracy]
    ended: int = Field(description="clusters whose real upgrade ended since the rehearsal")
    outcomes_agreed: int = Field(description="of those, how many ended as rehearsed")
    mean_abs_error: float | None = Field(default=None, description="mean of |error| over the clusters that ended")
    stalls_predicted: int = 0
    stalls_met: int = 0


class PolicyClusterRehearsal(Model):
    """One cluster of one stage of a bundle's rehearsed rollout (a bundle in audit then enforce meets it twice)."""

    cluster: str
    stage: str
    mode: str | None = None
    outcome: Literal["applied", "failed", "skipped", "aborted", "not_started"] = Field(description=(
        "applied: given the bundle, every object observed and the health gate passed; not_started: the rollout would"
        " halt (or end) before it"))
    starts_seconds: float | None = Field(default=None, description="when it would be given the bundle, in seconds"
                                         " from the rollout's start (the real fleet's)")
    seconds: float | None = Field(default=None, description="how long giving it the bundle would take")
    detail: str = ""


class PolicyStageRehearsal(Model):
    name: str
    mode: str | None = None
    approval_required: bool = False
    starts_seconds: float | None = None
    ends_seconds: float | None = Field(default=None, description="its end, soak included")
    failures: int = 0
    halts: bool = Field(default=False, description="the rollout would halt in it")


class PolicyRehearsal(Model):
    """What a bundle's rollout would do on the twin (`regatta policy rehearse`): per stage and cluster, and the whole."""

    bundle: str
    revision: str
    rehearsed_at: datetime
    compress: float
    outcome: Literal["succeeded", "halted", "aborted", "failed"]
    message: str = ""
    total_seconds: float | None = Field(default=None, description="from its start to its end on the real fleet's"
                                        " clock, approvals given at once")
    stages: list[PolicyStageRehearsal]
    clusters: list[PolicyClusterRehearsal]
    left_out: dict[str, str] = Field(default_factory=dict, description="clusters of the twin not in the rollout → why")
    not_rehearsed: list[str] = Field(default_factory=list)
    assumes: list[str] = Field(default_factory=list)


class RehearsalRecord(Model):
    """A rehearsal as the inventory keeps it (`regatta rehearsal list|show`, `GET /v1/rehearsals`)."""

    rehearsal_id: str
    kind: Literal["upgrade", "wave", "policy"]
    subject: str = Field(description="the wave's name, the cluster upgraded, or the bundle")
    rehearsed_at: datetime
    requested_by: str
    clusters: list[str]
    wave: WaveRehearsal | None = None
    upgrades: list[ClusterRehearsal] = Field(default_factory=list)
    policy: PolicyRehearsal | None = None
    accuracy: RehearsalAccuracy | None = None
    operation_id: str | None = Field(default=None, description="the real wave it was attached to when that started")
    attached_at: datetime | None = Field(default=None, description="when that wave started: the real run is read from"
                                         " then")


class AttachRehearsal(Model):
    """A wave starting asks for its rehearsal: the latest kept of a wave of its name and target, taken before it."""

    wave: str
    target_version: str
    operation_id: str
    started: datetime


class AttachedRehearsal(Model):
    """The rehearsal a wave attached, in brief (the whole is kept in the inventory)."""

    rehearsal_id: str
    rehearsed_at: datetime
    summary: str = Field(description="what it predicted, in a line for the audit trail")


class HoldAgainstRehearsal(Model):
    """A wave ending holds itself against its rehearsal; the comparison is kept with the rehearsal."""

    rehearsal_id: str
    operation_id: str
