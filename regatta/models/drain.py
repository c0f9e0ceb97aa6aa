"""Draining a node under its PodDisruptionBudgets: what blocked a drain, and the escalation policy and
ladder (tell the owner, ask for an approval, delete the blocking pods) a blocked drain follows.

Used by ClusterUpgrade, the drain rules and the drain activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from regatta.models.base import Model


class BlockedPod(Model):
    name: str = Field(description="namespace/name")
    labels: dict[str, str] = Field(default_factory=dict)


class BlockedDrain(Model):
    """A node whose last pods the PodDisruptionBudgets will not let go."""

    node: str
    pods: list[BlockedPod]
    budgets: list[str] = Field(description="namespace/name of the budgets covering them, with their live numbers")
    budget_refs: list[str] = Field(default_factory=list, description="namespace/name of those budgets")
    reason: str | None = Field(default=None, description="why, when it is not a budget at its floor: a pod selected by"
                               " more than one budget, which the eviction API refuses outright")


class PodOnNode(Model):
    """What a drain needs to know of a pod before it evicts anything from the node: what kubectl drain's
    filters look at."""

    name: str = Field(description="namespace/name")
    controller_kind: str | None = Field(default=None, description="kind of its ownerReference with controller: true;"
                                        " None: no controller will recreate it")
    mirror: bool = Field(default=False, description="a static pod's mirror (annotation kubernetes.io/config.mirror)")
    emptydir: bool = Field(default=False, description="it has an emptyDir volume, whose data goes with the pod")
    phase: str = "Running"


class DrainReport(Model):
    nodes: list[str]
    pods_evicted: int
    blocked: BlockedDrain | None = None


class DrainPolicy(Model):
    """What a drain does while PodDisruptionBudgets refuse it: keep evicting and retrying; after
    `notify_owner_after_seconds`, tell the owner (an Event on the budget, the callback URL and
    `owner_webhook`, naming the budget and the pods); after `ask_approval_after_seconds`, when
    `delete_blocking_pods` allows it, ask for an `approve` Update; only once approved, delete the
    blocking pods. Without approval the drain gives up after the upgrade's drain_timeout_seconds.

    `node_pools` and `workload_labels` say where a policy applies (both empty: everywhere);
    the first policy that matches a blocked drain is the one it follows."""

    node_pools: list[str] = Field(default_factory=list, description="node pools it applies to; empty: every pool")
    workload_labels: dict[str, str] = Field(default_factory=dict, description="applies when a blocked pod has all of"
                                            " these labels; empty: any pod")
    notify_owner_after_seconds: float = Field(default=300, ge=0)
    ask_approval_after_seconds: float = Field(default=600, ge=0)
    delete_blocking_pods: bool = Field(default=False, description="after an approval, delete the pods the budgets hold")
    approval_timeout_seconds: float = Field(default=24 * 3600, gt=0, description="how long to wait for that approval"
                                            " before the upgrade stops")
    owner_webhook: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                      description="also POST the owner an HMAC-signed note here")


class DrainEscalation(Model):
    """Where a blocked drain stands on its policy's ladder (in the upgrade's progress)."""

    node: str
    pods: list[str]
    budgets: list[str]
    step: Literal["retrying", "owner_notified", "awaiting_approval", "deleting_pods"] = "retrying"
    blocked_since: datetime = Field(description="fleet clock")
    step_since: datetime
    policy: DrainPolicy
    approved_by: str | None = None
    reason: str | None = Field(default=None, description="why it is blocked when it is not a budget at its floor (a pod"
                               " more than one budget selects)")
