"""Every operation Regatta runs, one entry each: its workflow, the models of its input, progress and
result, how its id is made and what that id holds, the controls it answers, whether it acts on the
whole fleet, and the commands and routes that start and steer it.

Starting (`regatta.temporal.operations.start`), reading (`status`, typed by `progress_of`), the API's
kinds and controls, the CLI's rendering and the fleet view all look an operation up here, so a new
kind is one entry here and its workflow (tests/unit/test_operation_catalog.py walks the catalog and
says what else is missing). Workflows a run starts for itself (a ClusterHold, a MoveWorkloads, a
FleetSweep from its schedule) are entries too: people read and steer them like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from regatta.models import (
    AccessGrantInput,
    AccessGrantProgress,
    AccessGrantResult,
    ClusterRollbackInput,
    ClusterRollbackProgress,
    ClusterRollbackResult,
    ClusterUpgradeInput,
    ClusterUpgradeProgress,
    ClusterUpgradeResult,
    DecommissionClusterInput,
    DecommissionClusterProgress,
    DecommissionClusterResult,
    DRFailbackInput,
    DRFailoverInput,
    DRProgress,
    DRResult,
    PatchWaveInput,
    PatchWaveProgress,
    PatchWaveResult,
    ProvisionClusterInput,
    ProvisionClusterProgress,
    ProvisionClusterResult,
)
from regatta.models.disaster_recovery import ClusterHoldInput, ClusterHoldProgress, ClusterHoldResult
from regatta.models.operations import Control, OperationStatus, Reported, WorkflowName
from regatta.models.placement import (
    EvacuateClusterInput,
    EvacuateClusterProgress,
    EvacuateClusterResult,
    MoveWorkloadsInput,
    MoveWorkloadsProgress,
    MoveWorkloadsResult,
)
from regatta.models.policy import (
    BundleSpec,
    DriftSweepInput,
    DriftSweepProgress,
    DriftSweepResult,
    PolicyRolloutProgress,
    PolicyRolloutResult,
)
from regatta.models.sweep import FleetSweepInput, FleetSweepProgress, FleetSweepResult
from regatta.rules import operation_ids

STEERED = (Control.PAUSE, Control.RESUME, Control.ABORT)
STAGED = (*STEERED, Control.APPROVE, Control.SKIP, Control.RETRY)

# The command of the CLI that sends each control, and the route of the API.
CONTROL_COMMANDS: dict[Control, str] = {
    Control.PAUSE: "op pause", Control.RESUME: "op resume", Control.ABORT: "op abort", Control.APPROVE: "op approve",
    Control.SKIP: "op skip", Control.RETRY: "op retry", Control.GO_BACK: "upgrade rollback",
    Control.REVOKE: "access revoke",
}
CONTROL_ROUTES: dict[Control, str] = {
    **{control: f"/v1/operations/{{operation_id}}/{control}" for control in (
        Control.PAUSE, Control.RESUME, Control.ABORT, Control.APPROVE, Control.GO_BACK, Control.SKIP, Control.RETRY)},
    Control.REVOKE: "/v1/access/{grant_id}/revoke",
}


@dataclass(frozen=True)
class OperationKind:
    """One kind of operation. `kind` is its name in the API's `kind` and where the CLI says it; `starts` the CLI
    command and `route` the API route that start it (empty: a run or a schedule starts it); `fleet_wide` that it
    holds no one cluster."""

    kind: str
    workflow: WorkflowName
    input: type[BaseModel]
    progress: type[Reported]
    result: type[BaseModel]
    id_of: Callable[[Any, str], str]  # (request, a random suffix for kinds whose ids are not locks) → the id
    holding: Callable[[Any], str]  # what a run of that id holds, as a refusal names it
    rule: str  # why a second one is refused
    controls: tuple[Control, ...] = ()
    fleet_wide: bool = False
    starts: str = ""
    route: str = ""
    random_id: bool = False  # its id takes a random suffix: several run at once (an access grant)

    def operation_id(self, request: Any, *, suffix: str = "") -> str:
        return self.id_of(request, suffix)


def _cluster(request: Any, _: str) -> str:
    return operation_ids.operation_id(request.cluster)


CATALOG: tuple[OperationKind, ...] = (
    OperationKind("upgrade", WorkflowName.CLUSTER_UPGRADE, ClusterUpgradeInput, ClusterUpgradeProgress,
                  ClusterUpgradeResult, _cluster, lambda r: f"cluster {r.cluster}",
                  "at most one operation runs on a cluster", (*STEERED, Control.APPROVE, Control.GO_BACK),
                  starts="upgrade start", route="/v1/operations"),
    OperationKind("rollback", WorkflowName.CLUSTER_ROLLBACK, ClusterRollbackInput, ClusterRollbackProgress,
                  ClusterRollbackResult, _cluster, lambda r: f"cluster {r.cluster}",
                  "at most one operation runs on a cluster", STEERED, starts="upgrade rollback", route="/v1/operations"),
    OperationKind("wave", WorkflowName.PATCH_WAVE, PatchWaveInput, PatchWaveProgress, PatchWaveResult,
                  lambda r, _: operation_ids.wave_id(r.name), lambda r: f"wave {r.name}",
                  "one wave of a name runs at a time", STAGED, fleet_wide=True, starts="wave start",
                  route="/v1/operations"),
    OperationKind("provision", WorkflowName.PROVISION_CLUSTER, ProvisionClusterInput, ProvisionClusterProgress,
                  ProvisionClusterResult, lambda r, _: operation_ids.operation_id(r.name), lambda r: f"cluster {r.name}",
                  "at most one operation runs on a cluster", starts="provision", route="/v1/operations"),
    OperationKind("decommission", WorkflowName.DECOMMISSION_CLUSTER, DecommissionClusterInput,
                  DecommissionClusterProgress, DecommissionClusterResult, _cluster, lambda r: f"cluster {r.cluster}",
                  "at most one operation runs on a cluster", (Control.APPROVE, Control.ABORT), starts="decommission",
                  route="/v1/operations"),
    OperationKind("failover", WorkflowName.DR_FAILOVER, DRFailoverInput, DRProgress, DRResult, _cluster,
                  lambda r: f"cluster {r.cluster}", "at most one operation runs on a cluster",
                  (Control.APPROVE, Control.ABORT), starts="failover", route="/v1/operations"),
    OperationKind("failback", WorkflowName.DR_FAILBACK, DRFailbackInput, DRProgress, DRResult, _cluster,
                  lambda r: f"cluster {r.cluster}", "at most one operation runs on a cluster",
                  (Control.APPROVE, Control.ABORT), starts="failback", route="/v1/operations"),
    OperationKind("policy", WorkflowName.POLICY_ROLLOUT, BundleSpec, PolicyRolloutProgress, PolicyRolloutResult,
                  lambda r, _: operation_ids.policy_id(r.name), lambda r: f"bundle {r.name}",
                  "one rollout of a bundle runs at a time", STAGED, fleet_wide=True, starts="policy rollout",
                  route="/v1/operations"),
    OperationKind("evacuate", WorkflowName.EVACUATE_CLUSTER, EvacuateClusterInput, EvacuateClusterProgress,
                  EvacuateClusterResult, lambda r, _: operation_ids.evacuate_id(r.cluster),
                  lambda r: f"the evacuation of {r.cluster}", "one evacuation of a cluster runs at a time",
                  starts="cluster evacuate", route="/v1/operations"),
    OperationKind("drift", WorkflowName.DRIFT_SWEEP, DriftSweepInput, DriftSweepProgress, DriftSweepResult,
                  lambda r, _: operation_ids.drift_id(r.bundle),
                  lambda r: f"the drift sweep of {r.bundle or 'every bundle'}", "one sweep of a scope runs at a time",
                  fleet_wide=True, starts="policy drift sweep"),
    OperationKind("access", WorkflowName.ACCESS_GRANT, AccessGrantInput, AccessGrantProgress, AccessGrantResult,
                  lambda r, suffix: operation_ids.access_grant_id(r.cluster, suffix), lambda r: "that grant id",
                  "grant ids are random; start it again", (Control.APPROVE, Control.REVOKE), starts="access request",
                  route="/v1/access", random_id=True),
    OperationKind("sweep", WorkflowName.FLEET_SWEEP, FleetSweepInput, FleetSweepProgress, FleetSweepResult,
                  lambda r, _: "fleet-sweep", lambda r: "the fleet sweep", "one fleet sweep runs at a time",
                  fleet_wide=True, starts="schedule sweep"),
    OperationKind("move", WorkflowName.MOVE_WORKLOADS, MoveWorkloadsInput, MoveWorkloadsProgress, MoveWorkloadsResult,
                  lambda r, _: operation_ids.move_id(r.app), lambda r: f"the move of {r.app}",
                  "one move of an application runs at a time"),
    OperationKind("hold", WorkflowName.CLUSTER_HOLD, ClusterHoldInput, ClusterHoldProgress, ClusterHoldResult,
                  _cluster, lambda r: f"cluster {r.cluster}", "at most one operation runs on a cluster"),
)

_BY_WORKFLOW = {entry.workflow: entry for entry in CATALOG}
_BY_KIND = {entry.kind: entry for entry in CATALOG}


def by_workflow(workflow: str | None) -> OperationKind | None:
    """The entry of a workflow type as Temporal names it, or None for a type Regatta does not run."""
    return _BY_WORKFLOW.get(workflow) if workflow else None  # type: ignore[call-overload]


def by_kind(kind: str) -> OperationKind:
    return _BY_KIND[kind]


def for_request(request: BaseModel) -> OperationKind:
    """The entry whose input `request` is (a bundle's rollout takes the bundle as read, a subclass of its input)."""
    for cls in type(request).__mro__:
        for entry in CATALOG:
            if entry.input is cls:
                return entry
    raise TypeError(f"no operation starts from a {type(request).__name__}")


def api_kinds() -> tuple[str, ...]:
    """The kinds `POST /v1/operations` starts."""
    return tuple(entry.kind for entry in CATALOG if entry.route == "/v1/operations")


def typed_progress(workflow: str | None, progress: Any) -> Reported | None:
    """A progress answer read into its kind's model (its condition computed again), or None when the kind is not
    Regatta's or the answer does not fit (a worker of another release): the caller keeps the answer as it came."""
    entry = by_workflow(workflow)
    if entry is None or not isinstance(progress, dict):
        return None
    try:
        return entry.progress.model_validate(progress)
    except ValueError:
        return None


def progress_of(status: OperationStatus) -> Reported | None:
    """An operation's progress as its kind's model (a ClusterUpgradeProgress, a PatchWaveProgress, ...), or None when
    it has none yet, its kind is not Regatta's, or it does not fit (a worker of another release)."""
    return typed_progress(status.workflow_type, status.progress)
