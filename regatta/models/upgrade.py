"""ClusterUpgrade: its input, its one state object (the `progress` Query), each node pool's progress and
the result.

Used by the ClusterUpgrade workflow, waves (which start one per cluster), the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from regatta.models.base import Model, ProviderKind, Strategy
from regatta.models.calendar import Freeze, MaintenanceWindow
from regatta.models.drain import DrainEscalation, DrainPolicy
from regatta.models.fleet import AddonChange
from regatta.models.health import HealthCheck, UpgradeHook
from regatta.models.operations import Reported
from regatta.models.readiness import AcceptedFindings
from regatta.models.timings import CloudTimings, GateTimings


class ClusterUpgradeInput(CloudTimings, GateTimings):
    """What starts a ClusterUpgrade. Only `cluster` and `target_version` are required, so the
    Temporal UI can start one with `{"cluster": "eks-prod-use1", "target_version": "1.31"}`."""

    cluster: str
    target_version: str
    strategy: Strategy = "surge"
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    node_images: dict[ProviderKind, str] = Field(
        default_factory=dict, description="roll node pools onto this node image, per cloud (e.g. {\"eks\":"
        " \"1.31.2-20261101\"}), at target_version; a pool already on it is left alone")
    launch_template_versions: dict[str, str] = Field(
        default_factory=dict, description="EKS node groups on an AMI of their own launch template: the version of that"
        " template holding the AMI built for target_version, per node group (EKS moves such a group only to a new"
        " template version)")
    accept_insights: str | None = Field(default=None, max_length=500, description="go ahead although EKS's upgrade"
                                        " insights report ERROR for target_version, for this reason (audited; EKS is"
                                        " told to go ahead with force)")
    accept_findings: AcceptedFindings = Field(
        default_factory=dict, max_length=50, description="go ahead although these blocking readiness findings stand"
        " (finding id, as `regatta upgrade readiness` names it → the reason, audited), e.g."
        " {\"budget:payments/api\": \"the team scales it up before the window\"}")
    drain_unmanaged_pods: bool = Field(default=False, description="a drain deletes pods no controller will recreate,"
                                       " as kubectl drain --force does; without it a node holding one is not drained")
    drain_emptydir_data: bool = Field(default=False, description="a drain evicts pods whose emptyDir data goes with"
                                      " them, as kubectl drain --delete-emptydir-data does; without it such a node is not"
                                      " drained")
    override_hold: str | None = Field(default=None, max_length=500, description="go ahead although the cluster is under"
                                      " a maintenance hold, for this reason (audited); waves never set it")
    health_checks: list[HealthCheck] = Field(default_factory=list, description="checks beyond node readiness, run"
                                             " after the control plane and after each node pool; one that fails stops"
                                             " the upgrade, naming the check and its value")
    drain_policies: list[DrainPolicy] = Field(default_factory=list, description="what a drain blocked by"
                                              " PodDisruptionBudgets does, per node pool or workload label; the first"
                                              " that matches applies, else the defaults of DrainPolicy")
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list, description="work only inside these"
                                                         " (none: any time); when one closes mid-upgrade, the step in"
                                                         " flight finishes, the cluster is left consistent, and the"
                                                         " upgrade resumes at the next step when a window opens")
    freezes: list[Freeze] = Field(default_factory=list, description="periods in which no new step starts")
    # Every timeout an operator may need to tune is a named field with a default.
    max_unavailable: int = Field(default=1, ge=1, description="nodes drained at once in blue_green")
    drain_timeout_seconds: float = Field(default=900, gt=0, description="a drain the budgets block this long stops"
                                         " the upgrade, unless its policy is waiting for an approval")
    eviction_retry_seconds: float = Field(default=5, gt=0)
    drain_blocked_report_seconds: float = Field(default=60, gt=0, description="how long a drain activity retries a"
                                                " blocked eviction before the workflow looks at its escalation policy")
    hooks: list[UpgradeHook] = Field(default_factory=list, max_length=20, description="checks before and after the"
                                     " control plane and the node pools of each minor (a signed POST to a URL, a smoke"
                                     " test), each gating the next step")
    backup_before_control_plane: bool | None = Field(default=None, description="a Velero backup before each control"
                                                     " plane moves; None: as the cluster's label backup-before-upgrade"
                                                     " says (\"true\")")
    keep_old_pools_seconds: float = Field(default=0, ge=0, le=7 * 24 * 3600, description="blue_green: how long the"
                                          " replaced pools stay, cordoned and empty, once every pool runs the target, so"
                                          " that going back (the go_back Update, `regatta upgrade rollback`) is an"
                                          " uncordon and a drain of the new pools, not a rebuild; 0 deletes each old pool"
                                          " once drained")
    soak_seconds: float = Field(default=300, ge=0, le=7 * 24 * 3600, description="an upgrade over several minors"
                                " (target_version more than one above the control plane): how long the cluster runs"
                                " each minor on the way, healthy, before the next one starts")


    @model_validator(mode="after")
    def _kept_pools_are_blue_green(self) -> ClusterUpgradeInput:
        if self.keep_old_pools_seconds and self.strategy != "blue_green":
            raise ValueError("keep_old_pools_seconds keeps the pools a blue_green upgrade replaces: a surge upgrade has"
                             " none to keep (the cloud replaces its nodes); use strategy blue_green, or leave it out")
        return self


PoolStatus = Literal["pending", "upgrading", "done", "aborted", "failed"]


class PoolProgress(Model):
    name: str
    from_version: str
    to_version: str
    strategy: Strategy
    nodes_total: int
    nodes_done: int = 0
    status: PoolStatus = "pending"
    replacement_pool: str | None = None
    from_node_image: str | None = None
    to_node_image: str | None = None


class PathStep(Model):
    """One minor of an upgrade over several (1.29 to 1.32 is 1.30, 1.31 and 1.32, each a whole upgrade:
    readiness, control plane, add-ons, node pools, health gates, then a soak before the next)."""

    version: str
    status: Literal["pending", "upgrading", "soaking", "done", "aborted", "failed"] = "pending"
    soak_ends: datetime | None = None
    pools_done: list[str] = Field(default_factory=list, description="the node pools this minor moved")


class ClusterUpgradeProgress(Reported):
    """The one state object of a ClusterUpgrade, returned whole by the `progress` Query."""

    operation_id: str = ""
    cluster: str
    target_version: str
    target_node_image: str | None = None
    strategy: Strategy
    phase: Literal[
        "preflight", "control_plane", "node_pools", "awaiting_approval", "waiting_window", "recording", "soaking",
        "keeping", "going_back", "succeeded", "aborted", "failed", "rolled_back"
    ] = "preflight"
    window_opens: datetime | None = Field(default=None, description="while waiting_window: when the next window opens")
    step: str = "starting"
    control_plane: Literal["pending", "upgrading", "done", "skipped", "stopped"] = "pending"
    pools: list[PoolProgress] = Field(default_factory=list)
    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    rollout: str | None = Field(default=None, description="on your own hardware: what the controller carrying out the step"
                                " was last told by a pause, resume or abort (Cluster API's paused annotation, the"
                                " system-upgrade-controller's held nodes)")
    message: str = ""
    waiting_for: str | None = Field(default=None, description="what the upgrade waits on that is not its own doing (the"
                                    " agent of the cluster's site); None while nothing is")
    # Nodes this upgrade cordoned and has not yet finished draining: what an abort must hand back.
    cordoned_in_service: list[str] = Field(default_factory=list)
    drained_nodes: list[str] = Field(default_factory=list)
    health_checks: list[str] = Field(default_factory=list, description="checks beyond node readiness that passed, and"
                                     " what they saw")
    drain_escalation: DrainEscalation | None = Field(default=None, description="a drain blocked by budgets: which"
                                                     " step of its policy it is on, and since when")
    insights: list[str] = Field(default_factory=list, description="what the cloud's own upgrade readiness checks (EKS"
                                " upgrade insights) say about the target, each a line; ERROR ones stop the upgrade"
                                " unless accepted")
    readiness: list[str] = Field(default_factory=list, description="the readiness findings for the target that did not"
                                 " stop it (warnings, and blocking ones accepted), each a line")
    addons: list[AddonChange] = Field(default_factory=list, description="EKS: each managed add-on moved to its default"
                                      " for the new version after the control plane (or left where it was)")
    hooks: list[str] = Field(default_factory=list, description="each hook that let the upgrade go on, and what it said")
    kept_pools: list[str] = Field(default_factory=list, description="blue_green with keep_old_pools_seconds: the old"
                                  " pools kept cordoned and empty, what go_back returns to")
    keep_ends: datetime | None = Field(default=None, description="while keeping: when the old pools are deleted")
    backups: list[str] = Field(default_factory=list, description="the Velero backups taken before a control plane moved")
    path: list[PathStep] = Field(default_factory=list, description="an upgrade over several minors: each one on the"
                                 " way, in order (empty for one minor); control_plane and pools are the current one's")
    step_version: str | None = Field(default=None, description="an upgrade over several minors: the one it is moving"
                                     " the cluster to now")


class ClusterUpgradeResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded", "aborted", "rolled_back"]
    from_version: str
    target_version: str
    control_plane_version: str
    pools: list[PoolProgress]
    message: str


class ClusterRollbackInput(CloudTimings, GateTimings):
    """What starts a ClusterRollback: the cluster and why (`{"cluster": "eks-prod-use1", "reason": "1.31 breaks the
    payments controller"}` in the Temporal UI). It takes back the cluster's last upgrade, one minor, where its cloud
    allows (regatta/rules/rollback.py)."""

    cluster: str
    reason: str = Field(min_length=1, max_length=500, description="why go back (audited)")
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://",
                                     description="POSTed an HMAC-signed JSON note on every change of phase")
    override_hold: str | None = Field(default=None, max_length=500, description="go ahead although the cluster is under"
                                      " a maintenance hold, for this reason (audited)")
    accept_insights: str | None = Field(default=None, max_length=500, description="go ahead although EKS's rollback"
                                        " readiness insights report ERROR or UNKNOWN, for this reason (audited; EKS is"
                                        " told to go ahead with force)")
    drain_timeout_seconds: float = Field(default=900, gt=0, description="how long the cloud may take to drain a node"
                                         " under its budgets (AKS's drainTimeoutInMinutes)")

    @field_validator("override_hold")
    @classmethod
    def _a_reason(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("override_hold needs a reason (--override-hold REASON): the audit trail keeps it")
        return value


class ClusterRollbackProgress(Reported):
    """The one state object of a ClusterRollback, returned whole by the `progress` Query."""

    operation_id: str = ""
    cluster: str
    reason: str = ""
    from_version: str = ""
    to_version: str = ""
    window_ends: datetime | None = Field(default=None, description="until when the cloud takes the rollback")
    phase: Literal["preflight", "node_pools", "control_plane", "recording", "succeeded", "aborted", "failed"] = "preflight"
    step: str = "starting"
    control_plane: Literal["pending", "rolling_back", "done"] = "pending"
    pools: list[PoolProgress] = Field(default_factory=list, description="each node pool taken back, in order")
    paused: bool = False
    pause_reason: str | None = None
    abort_requested: bool = False
    abort_reason: str | None = None
    message: str = ""
    waiting_for: str | None = None
    kept: list[str] = Field(default_factory=list, description="what the rollback leaves as the upgrade made it (the EKS"
                            " managed add-ons)")


class ClusterRollbackResult(Model):
    operation_id: str
    cluster: str
    outcome: Literal["succeeded", "aborted"]
    from_version: str
    to_version: str
    control_plane_version: str
    message: str
