"""The controls an operator sends a running operation, as Temporal Updates: pause, resume, abort,
approve; and for the staged fleet operations (PatchWave, PolicyRollout) skip and retry a cluster,
and approve a named stage. One model per control, shared by every workflow that takes it
(ClusterUpgrade, PatchWave, PolicyRollout, DecommissionCluster, DRFailover, DRFailback), so the CLI,
the API and the Temporal UI send the same JSON to each.

`requested_by` and `approver` name a person; over the API they are the token's name, whatever the
caller typed.
"""

from __future__ import annotations

from pydantic import Field

from regatta.models.base import Model
from regatta.models.operations import Reported


class PauseInput(Model):
    """Hold the operation at its next safe point (between batches, before the next step)."""

    reason: str = ""
    requested_by: str = "temporal-ui"


class ResumeInput(Model):
    requested_by: str = "temporal-ui"


class AbortInput(Model):
    """Stop after the step in flight, leaving the cluster consistent and serving."""

    reason: str = ""
    requested_by: str = "temporal-ui"


class GoBackInput(Model):
    """Return a blue/green upgrade that keeps its old node pools to them: uncordon the old pools, drain and delete
    the new ones under every budget (ClusterUpgrade, while it keeps them)."""

    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = "temporal-ui"


class ApproveInput(Model):
    """A second person's approval of what the operation waits for: four eyes means the approver is
    not the requester (the workflow's validator refuses that)."""

    approver: str
    comment: str = ""


class StageApproveInput(ApproveInput):
    """A stage's approval names the stage it approves, so it cannot approve the wrong one."""

    stage: str | None = Field(default=None, description="the stage approved; checked against the one waiting")


class SkipClusterInput(Model):
    """Leave a cluster that has not started out of a wave or a rollout, saying why."""

    cluster: str
    reason: str = ""
    requested_by: str = "temporal-ui"


class RetryClusterInput(Model):
    """Try a failed cluster of the running stage again."""

    cluster: str
    requested_by: str = "temporal-ui"


class StageControlState(Reported):
    """What a staged operation's state says about its controls (a wave's, a rollout's)."""

    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    halted_reason: str | None = Field(default=None, description="why it stopped starting clusters (a failure budget"
                                      " spent, a violation gate), when it did")
