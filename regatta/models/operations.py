"""The names of Regatta's workflows and of the controls an operator sends them, and the condition an
operation's progress reports: one vocabulary for the workflows, the Temporal client, the API, the CLI
and the fleet view.

`WorkflowName` is the Temporal workflow type of each workflow (what `@workflow.defn(name=...)`
registers, what a client or a parent starts, what the Temporal UI lists); its values are the names
histories already carry, so every recorded run keeps its type. `Control` names the Updates an
operator sends. `Condition` is where an operation stands in words a machine reads, as Cluster API
writes a condition: a state every operation shares (running, waiting, paused, succeeded, failed,
aborted, halted, not started), a CamelCase reason, and the message a person reads. `ENDED_PHASES` is
the one definition of an ended run's phase.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, computed_field, model_validator

from regatta.models.base import Model


class WorkflowName(StrEnum):
    CLUSTER_UPGRADE = "ClusterUpgrade"
    CLUSTER_ROLLBACK = "ClusterRollback"
    PATCH_WAVE = "PatchWave"
    PROVISION_CLUSTER = "ProvisionCluster"
    DECOMMISSION_CLUSTER = "DecommissionCluster"
    DR_FAILOVER = "DRFailover"
    DR_FAILBACK = "DRFailback"
    CLUSTER_HOLD = "ClusterHold"
    POLICY_ROLLOUT = "PolicyRollout"
    DRIFT_SWEEP = "DriftSweep"
    FLEET_SWEEP = "FleetSweep"
    EVACUATE_CLUSTER = "EvacuateCluster"
    MOVE_WORKLOADS = "MoveWorkloads"
    ACCESS_GRANT = "AccessGrant"


class Control(StrEnum):
    """An Update an operator sends a running operation; its input model is in regatta/models/controls.py."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    APPROVE = "approve"
    GO_BACK = "go_back"
    SKIP = "skip"
    RETRY = "retry"
    REVOKE = "revoke"


# The phases after which a run does nothing more, whatever the workflow (each workflow's phases are a subset of
# one vocabulary: no phase name is an end in one workflow and a step in another).
ENDED_PHASES = frozenset({"succeeded", "failed", "aborted", "rolled_back", "halted", "not_started", "revoked",
                          "expired", "refused", "released"})
# Phases in which a run waits for a person or the calendar rather than works.
WAITING_PHASES = frozenset({"awaiting_approval", "waiting_window"})

State = Literal["running", "waiting", "paused", "succeeded", "failed", "aborted", "halted", "not_started"]
_STATE_OF_ENDED: dict[str, State] = {"succeeded": "succeeded", "failed": "failed", "aborted": "aborted",
                                     "rolled_back": "succeeded", "halted": "halted", "not_started": "not_started",
                                     "revoked": "succeeded", "expired": "succeeded", "refused": "failed",
                                     "released": "succeeded"}


def ended(phase: str) -> bool:
    """Whether a run in this phase has ended: no control changes it any more."""
    return phase in ENDED_PHASES


def reason_word(phase: str) -> str:
    """A phase as a condition's reason: `awaiting_approval` → `AwaitingApproval`."""
    return "".join(part.capitalize() for part in phase.split("_"))


class Condition(Model):
    """Where an operation stands, for machines: `state` is shared by every operation, `reason` says why in one
    CamelCase word (its phase, or Paused, AbortRequested, Halted), `message` is for a person."""

    state: State
    reason: str
    message: str = ""
    ended: bool


def condition_of(fields: dict[str, Any]) -> Condition:
    """The condition of any progress, from the fields every progress model names the same way: `phase`, and where
    it has them `paused`/`pause_reason`, `abort_requested`/`abort_reason`, `halted_reason`, `waiting_for`, `step` and
    `message`."""
    phase = str(fields.get("phase") or "")
    said = str(fields.get("message") or fields.get("waiting_for") or fields.get("step") or "")
    if ended(phase):
        reason = reason_word(phase)
        message = str(fields.get("halted_reason") or fields.get("abort_reason") or fields.get("message") or "")
        return Condition(state=_STATE_OF_ENDED[phase], reason=reason, message=message or said, ended=True)
    if fields.get("abort_requested"):
        return Condition(state="running", reason="AbortRequested", message=str(fields.get("abort_reason") or said),
                         ended=False)
    if fields.get("paused"):
        return Condition(state="paused", reason="Paused", message=str(fields.get("pause_reason") or said), ended=False)
    state: State = "waiting" if phase in WAITING_PHASES else "running"
    return Condition(state=state, reason=reason_word(phase) or "Starting", message=said, ended=False)


class Reported(Model):
    """A progress model that reports its condition: `condition` is computed from its own fields whenever it is
    dumped (a query's answer, an Update's), and dropped when one is read back, so a progress read from a run that
    began before conditions existed reads the same way."""

    @model_validator(mode="before")
    @classmethod
    def _computed_not_read(cls, value: Any) -> Any:
        if isinstance(value, dict) and "condition" in value:
            value = {key: item for key, item in value.items() if key != "condition"}
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def condition(self) -> Condition:
        return condition_of(self.__dict__)

    def held(self) -> dict[str, Any]:
        """Its fields as a run keeps them (its memo, what it hands its next run): without the computed condition, so
        a worker of the release before conditions reads them too."""
        return self.model_dump(mode="json", exclude={"condition"})


class AnsweredCondition(Model):
    """A condition as a client reads it from an answer: a state or a key a newer release adds is read, not refused."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    state: str
    reason: str
    message: str = ""
    ended: bool


class OperationStatus(Model):
    """Where one operation stands, typed for a client: what `regatta.temporal.operations.status`,
    `GET /v1/operations/{id}` and `regatta op status --output json` answer. `progress` is the operation's answer as its
    kind writes it; `regatta.rules.operation_catalog.progress_of` reads it into its kind's model. Keys a newer release
    adds are read past."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    operation_id: str
    run_id: str | None = None
    workflow_type: str
    status: str = Field(description="Temporal's: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT, ...")
    started: datetime | None = None
    closed: datetime | None = None
    cluster: str | None = None
    environment: str | None = None
    progress: dict[str, Any] | None = None
    failure: str | None = Field(default=None, description="why the run failed, in its own words")
    outcome: str | None = Field(default=None, description="what an ended run came to (succeeded, aborted, ...)")
    succeeded: bool | None = Field(default=None, description="null while it runs, or when its outcome is unknown")
    condition: AnsweredCondition | None = None
    progress_error: str | None = Field(default=None, description="why no progress could be read (no worker answered)")
    result_error: str | None = None
