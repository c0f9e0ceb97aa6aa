"""PatchWave: the wave file's shape (stages, windows, freezes, a failure budget), the plan, the
forecast, the wave's one state object and its controls and result.

Used by the PatchWave workflow, the wave rules, the wave file reader, the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_serializer

from regatta.models.base import Model, ProviderKind, Strategy
from regatta.models.calendar import ClusterSelector, Freeze, MaintenanceWindow
from regatta.models.controls import RetryClusterInput, SkipClusterInput, StageApproveInput, StageControlState
from regatta.models.drain import DrainPolicy
from regatta.models.health import HealthCheck
from regatta.models.readiness import AcceptedFindings


class WaveStage(Model):
    name: str = Field(min_length=1, max_length=60)
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    concurrency: int = Field(default=1, ge=1, le=200, description="clusters upgraded at once in this stage")
    soak_seconds: float = Field(default=0, ge=0, description="wait after the stage before the next one starts")
    approval_required: bool = Field(default=False, description="wait for an approve Update before the stage starts")
    health_checks: list[HealthCheck] = Field(default_factory=list, description="added to the health gates of every"
                                             " cluster in this stage (Prometheus queries, smoke tests)")


class PatchWaveInput(Model):
    """What `regatta wave start --file wave.yaml` sends; the same JSON starts it from the Temporal UI."""

    name: str = Field(min_length=1, max_length=80)
    target_version: str
    node_images: dict[ProviderKind, str] = Field(default_factory=dict, description="also roll node pools onto these"
                                                 " node images, per cloud; a cluster on them and the version is at target")
    strategy: Strategy = "surge"
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    stages: list[WaveStage] = Field(min_length=1)
    failure_budget: int | str = Field(default=0, description="failed clusters that halt the wave: a count, or a share like '10%'")
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list, description="none: any time")
    freezes: list[Freeze] = Field(default_factory=list)
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    # Tuning handed to every cluster's ClusterUpgrade (field name → value), e.g. {"drain_timeout_seconds": 1800}.
    upgrade_settings: dict[str, float] = Field(default_factory=dict)
    accept_findings: AcceptedFindings = Field(default_factory=dict, max_length=50, description="handed to every"
                                              " cluster's upgrade: blocking readiness findings it goes ahead despite"
                                              " (finding id → reason, audited); a cluster with others is held out")
    drain_policies: list[DrainPolicy] = Field(default_factory=list, description="handed to every cluster's upgrade:"
                                              " what a drain blocked by PodDisruptionBudgets does")
    estimated_upgrade_minutes: float = Field(default=45, gt=0, le=7 * 24 * 60, description="what the forecast expects"
                                             " one cluster's upgrade to take until the wave has timed its own")
    start_only_outside_freezes: bool = Field(default=False, description="end at once, saying so, when started during a"
                                             " freeze (what a schedule sets)")
    continue_as_new_after_events: int = Field(default=4000, ge=200, le=40000, description="history events after which"
                                              " the wave carries its state into a fresh run, so no history grows with"
                                              " the size of the fleet")
    carried: PatchWaveProgress | None = Field(default=None, description="set by the wave itself when it continues as"
                                              " new; leave it out")

    @field_serializer("carried")
    def _carried_as_held(self, carried: PatchWaveProgress | None) -> dict[str, Any] | None:
        """What a run hands its next, without the condition computed from it: a worker of the release before conditions
        (a deployment rolled back) reads it too."""
        return carried.held() if carried is not None else None


# not_ready: held out, its upgrade refused for blocking readiness findings nobody accepted (not a failure).
WaveClusterStatus = Literal["pending", "waiting_window", "held", "upgrading", "succeeded", "failed", "skipped",
                           "at_target", "aborted", "not_ready"]


class WaveClusterState(Model):
    name: str
    environment: str = Field(default="", description="its environment (set on the upgrade the wave starts, as a search attribute)")
    status: WaveClusterStatus = "pending"
    earliest_start: datetime | None = Field(default=None, description="when its maintenance window next lets it start")
    windows: list[int] = Field(default_factory=list, description="indexes of the wave's maintenance windows that apply")
    detail: str = ""


class WaveStageState(Model):
    name: str
    concurrency: int
    soak_seconds: float
    approval_required: bool
    status: Literal["pending", "awaiting_approval", "running", "soaking", "done", "halted"] = "pending"
    approved_by: str | None = None
    soak_ends: datetime | None = Field(default=None, description="while soaking: when the next stage may start")
    clusters: list[WaveClusterState] = Field(default_factory=list)


class WavePlan(Model):
    """Which clusters go in which stage and when they can first start: what `--plan-only` prints
    and what the workflow runs."""

    wave: str
    target_version: str
    node_images: dict[str, str] = Field(default_factory=dict)
    planned_at: datetime
    failure_budget: int = Field(description="failed clusters the wave tolerates; one more halts it")
    stages: list[WaveStageState]
    unstaged: list[str] = Field(default_factory=list, description="selected by the wave but by no stage: not touched")
    unstaged_reasons: dict[str, str] = Field(default_factory=dict, description="why no stage takes each unstaged"
                                             " cluster: what each stage's selector needs that it lacks")


class PlanWave(Model):
    wave: PatchWaveInput
    now: datetime


class ClusterForecast(Model):
    """When the wave will first touch one cluster, and what decides it."""

    cluster: str
    stage: str | None = Field(description="None: the wave selects it but no stage takes it")
    status: str
    earliest_touch: datetime | None = Field(description="None: it will not be touched (done, skipped, in no stage, or"
                                            " no window opens within a year)")
    expected_done: datetime | None = None
    because: str


class WaveForecast(Model):
    """`regatta wave plan` and the PatchWave `forecast` Query: the answer to "when will my cluster
    be upgraded?", given stages, soak, concurrency, windows, freezes and holds."""

    wave: str
    forecast_at: datetime
    upgrade_minutes: float = Field(description="what one cluster's upgrade is expected to take (the wave's own mean"
                                   " once it has timed some, else estimated_upgrade_minutes)")
    assumes: list[str] = Field(default_factory=list, description="what the forecast takes for granted")
    clusters: list[ClusterForecast]


class PatchWaveProgress(StageControlState):
    """The one state object of a PatchWave, returned whole by the `progress` Query."""

    operation_id: str = ""
    wave: str
    target_version: str
    node_images: dict[str, str] = Field(default_factory=dict)
    phase: Literal["planning", "awaiting_approval", "running", "soaking", "succeeded", "halted", "aborted", "not_started",
                   "failed"] = "planning"
    step: str = "starting"
    stage: str | None = Field(default=None, description="the stage in progress")
    stages: list[WaveStageState] = Field(default_factory=list)
    unstaged: list[str] = Field(default_factory=list)
    unstaged_reasons: dict[str, str] = Field(default_factory=dict)
    joined_later: list[str] = Field(default_factory=list, description="clusters the selector takes now that were not"
                                    " in the fleet when the wave planned: not in this wave (set when it ends)")
    failure_budget: int = 0
    failed: int = 0
    started: dict[str, datetime] = Field(default_factory=dict, description="upgrades in flight → when they started"
                                         " (the fleet's clock)")
    finished_upgrades: int = Field(default=0, description="upgrades this wave saw end, for the forecast's estimate")
    finished_upgrade_seconds: float = 0
    rehearsal_id: str | None = Field(default=None, description="the rehearsal of this wave attached when it started"
                                     " (`regatta rehearsal show ID`): the wave holds itself against it when it ends")
    message: str = ""


# A wave's controls are the staged operations' own (regatta/models/controls.py), under the names
# the wave's code has always used.
PatchWaveApproveInput = StageApproveInput
PatchWaveSkipInput = SkipClusterInput
PatchWaveRetryInput = RetryClusterInput


class PatchWaveResult(Model):
    operation_id: str
    wave: str
    target_version: str
    outcome: Literal["succeeded", "halted", "aborted", "not_started"]
    counts: dict[str, int] = Field(description="clusters by final status")
    failed: dict[str, str] = Field(default_factory=dict, description="cluster → why its upgrade stopped")
    joined_later: list[str] = Field(default_factory=list, description="selected now, but not in the fleet when the"
                                    " wave planned: not in this wave")
    rehearsal_id: str | None = Field(default=None, description="the rehearsal attached when the wave started")
    held_against_rehearsal: str | None = Field(default=None, description="how the wave held against its rehearsal:"
                                               " outcomes as rehearsed, mean error, holds met (the whole comparison is"
                                               " kept with the rehearsal)")
    message: str


# PatchWaveInput names PatchWaveProgress before it is defined: resolved here, at import. Left to its first use (defer_build),
# the reference is not found from inside the workflow sandbox, where a TypeAdapter of `PatchWaveInput | dict` is built.
PatchWaveInput.model_rebuild()
