"""What every payload shares: the strict base model and the small vocabularies (clouds, upgrade strategies).

Imported by every other module of `regatta.models`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ProviderKind = Literal["eks", "gke", "aks", "kubeconfig"]


Strategy = Literal["surge", "blue_green"]


class Model(BaseModel):
    """Base for every payload: unknown keys are refused so a typo in the UI is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
