"""What every payload shares: the strict base model and the small vocabularies (clouds, upgrade strategies).

Imported by every other module of `regatta.models`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# eks, gke, aks: the clouds' managed clusters. On your own hardware: kubeconfig (read, cordon, drain, health only),
# capi (a workload cluster Cluster API manages from a management cluster), suc (a k3s or RKE2 cluster its
# system-upgrade-controller upgrades).
ProviderKind = Literal["eks", "gke", "aks", "kubeconfig", "capi", "suc"]


Strategy = Literal["surge", "blue_green"]


class Model(BaseModel):
    """Base for every payload: unknown keys are refused so a typo in the UI is an error, not a no-op. Each model's
    validator is built when it is first used, not when it is imported: a CLI command imports every model and uses a
    few (50 ms of every command's start)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
