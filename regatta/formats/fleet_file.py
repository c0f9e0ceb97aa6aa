"""The fleet file: the clusters, node pools and workloads the simulator starts with.

Read by `regatta sim --fleet`, `regatta dev --fleet`, the tests and the benchmarks. The same
YAML is what an operator writes to describe a lab fleet, so its errors name the field to fix.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from regatta.models import ProviderKind
from regatta.rules.versions import minor_version

DEFAULT_FLEET = Path(__file__).with_name("default_fleet.yaml")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PdbSpec(Spec):
    min_available: int | str | None = None
    max_unavailable: int | str | None = None


class WorkloadSpec(Spec):
    name: str
    namespace: str = "default"
    replicas: int = Field(ge=0)
    pdb: PdbSpec | None = None
    # e.g. regatta.dev/dr-replicas: "4" on a standby's pre-deployed copy kept at 0 replicas
    annotations: dict[str, str] = Field(default_factory=dict)


class NodePoolSpec(Spec):
    name: str
    version: str | None = None  # defaults to the cluster's version
    node_image: str | None = None  # defaults to the cloud's newest image for the version
    nodes: int = Field(ge=0)
    node_size: str = "m5.large"
    labels: dict[str, str] = Field(default_factory=dict)


class ClusterSpec(Spec):
    name: str
    provider: ProviderKind = "eks"
    region: str
    labels: dict[str, str] = Field(default_factory=dict)
    version: str
    node_pools: list[NodePoolSpec]
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    time_scale: float | None = None  # overrides the simulator's factor for this cluster
    # The Velero schedule last backed the cluster up this many (wall-clock) seconds ago; None: never.
    last_backup_age_seconds: float | None = Field(default=None, ge=0)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        minor_version(value)
        return value

    @property
    def environment(self) -> str:
        return self.labels.get("env", "unknown")


class TrafficSpec(Spec):
    """A service's record at the traffic manager: the share of its requests each cluster gets."""

    service: str
    weights: dict[str, int]


class DrPairSpec(Spec):
    primary: str
    standby: str


class FleetSpec(Spec):
    clusters: list[ClusterSpec]
    traffic: list[TrafficSpec] = Field(default_factory=list)
    dr_pairs: list[DrPairSpec] = Field(default_factory=list)


class FleetFileError(ValueError):
    pass


def load_fleet(path: Path | str | None = None) -> FleetSpec:
    path = Path(path) if path else DEFAULT_FLEET
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FleetFileError(f"fleet file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise FleetFileError(f"fleet file {path} is not valid YAML: {error}") from None
    try:
        fleet = FleetSpec.model_validate(raw)
    except ValidationError as error:
        raise FleetFileError(f"fleet file {path}: {error}") from None
    names = [cluster.name for cluster in fleet.clusters]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FleetFileError(f"fleet file {path}: cluster names must be unique, repeated: {', '.join(duplicates)}")
    unknown = sorted({name for pair in fleet.dr_pairs for name in (pair.primary, pair.standby)} - set(names)
                     | {name for record in fleet.traffic for name in record.weights} - set(names))
    if unknown:
        raise FleetFileError(f"fleet file {path}: dr_pairs and traffic name clusters the file does not describe:"
                             f" {', '.join(unknown)}")
    return fleet
