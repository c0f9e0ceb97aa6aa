"""A twin of the real fleet (`regatta fleet snapshot`): what the simulator needs of each cluster to rehearse an
operation on it (its pools and nodes, the workloads a drain meets, their budgets, how fast their pods come back),
and how long each cloud's steps took in the operations Regatta recorded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from regatta.models.base import Model, ProviderKind


class TwinWorkload(Model):
    """A workload as a drain meets it: its pods, what each asks for, and how long one takes to be Ready again."""

    name: str
    namespace: str
    kind: Literal["Deployment", "StatefulSet", "Pod"]
    replicas: int
    labels: dict[str, str] = Field(description="its pods' labels (what budgets select)")
    cpu_m: int = Field(default=0, description="what each pod requests, summed over its containers")
    memory_mi: int = 0
    ready_seconds: float | None = Field(default=None, description="median of its pods' start to Ready; None: not"
                                        " measured (every pod was Ready before it was started, or none is Ready)")
    unready: int = Field(default=0, description="its pods on a node and not Ready when it was read (a crash loop, a"
                         " failing probe): what holds its budgets at their floor")


class TwinBudget(Model):
    """A PodDisruptionBudget by its name and selector, as the cluster holds it."""

    name: str
    namespace: str
    selector: dict[str, Any] | None = Field(description="matchLabels and matchExpressions; None selects no pod")
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    covers: list[str] = Field(default_factory=list, description="the workloads whose pods it selects, KIND/NAME")


class TwinLeftOut(Model):
    """Something a snapshot read and did not carry into the twin, and why (so nobody takes the twin for more)."""

    cluster: str
    what: str
    why: str


class UpgradeSample(Model):
    """One upgrade Regatta recorded: its cloud, the nodes it went through and how long it took from start to end."""

    provider: ProviderKind
    nodes: int = Field(ge=0)
    seconds: float = Field(gt=0)


class Calibration(Model):
    """How long a cloud's steps take, from the upgrades Regatta recorded on it (or the simulator's defaults)."""

    provider: ProviderKind
    samples: int
    factor: float = Field(description="how many times the simulator's default the recorded upgrades took (1: defaults)")
    control_plane_upgrade_seconds: float
    node_boot_seconds: float
    node_terminate_seconds: float
    how: str = Field(description="how the figures were reached, in a sentence")
