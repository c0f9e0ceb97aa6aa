"""DecommissionCluster: input, progress and result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regatta.models.base import Model
from regatta.models.operations import Reported
from regatta.models.timings import CloudTimings


class DecommissionClusterInput(CloudTimings):
    cluster: str
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    force_empty: bool = Field(default=False, description="delete even though non-system workloads still run")
    force_reason: str | None = None
    evacuate: bool = Field(default=False, description="move the placed applications it runs to other clusters (an"
                           " EvacuateCluster, once approved) instead of refusing")
    approval_timeout_seconds: float = Field(default=7 * 24 * 3600, gt=0)


class DecommissionClusterProgress(Reported):
    operation_id: str = ""
    cluster: str
    phase: Literal["checking", "awaiting_approval", "evacuating", "cordoning", "backing_up", "deleting", "deregistering",
                   "succeeded", "aborted", "failed"] = "checking"
    step: str = "starting"
    workloads: list[str] = Field(default_factory=list)
    placed: dict[str, list[str]] = Field(default_factory=dict, description="placed applications it runs → their workloads")
    approved_by: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    cordoned: list[str] = Field(default_factory=list)
    backup: str | None = None
    deleted: list[str] = Field(default_factory=list)
    message: str = ""


class DecommissionClusterResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded", "aborted"]
    approved_by: str | None
    backup: str | None
    deleted: list[str]
    message: str
