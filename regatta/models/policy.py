"""The policy plane: a bundle (named Kubernetes manifests, per-cluster overrides, where it goes
and how it rolls out), the rollout's plan and state, what one cluster is given and answers, and the
compliance records the inventory keeps for every cluster × bundle.

Used by the PolicyRollout workflow, the bundle rules, the bundle file reader, the kube layer that
applies bundles, the CLI and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_serializer, model_validator

from regatta.models.audit import OperationRecord
from regatta.models.base import Model
from regatta.models.calendar import ClusterSelector
from regatta.models.controls import StageControlState
from regatta.models.fleet import ClusterRef, TargetsAtSite
from regatta.models.health import HealthCheck
from regatta.models.operations import Reported
from regatta.models.placement import Placement, PlacementDecision
from regatta.models.timings import KubeTimings

BUNDLE_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Every object Regatta applies carries these: the label is what pruning looks for (nothing
# without it is ever deleted), the annotation the revision it was applied at.
BUNDLE_LABEL = "regatta.dev/bundle"
REVISION_ANNOTATION = "regatta.dev/bundle-revision"
FIELD_MANAGER = "regatta"

PolicyMode = Literal["audit", "enforce"]
ComplianceState = Literal["compliant", "non_compliant", "pending", "drifted", "error"]


class GitSource(Model):
    """Manifests from a git repository at a ref (a branch, a tag or a commit)."""

    url: str = Field(min_length=1, description="what `git clone` takes: a path, file://, https:// or ssh://")
    ref: str = Field(default="main", min_length=1)
    path: str = Field(default="", description="the directory inside the repository; empty: the whole tree")


class BundleSource(Model):
    """Where the manifests come from when they are not inline: a directory next to the bundle file,
    or a git repository at a ref."""

    directory: str | None = None
    git: GitSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BundleSource:
        if (self.directory is None) == (self.git is None):
            raise ValueError("give exactly one of directory or git")
        return self


class ObjectMatch(Model):
    """Which of the bundle's objects an override or an ignore rule is about; empty: all of them."""

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


class BundleOverride(Model):
    """RFC 6902 operations applied to the matching objects on the clusters the selector takes."""

    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    target: ObjectMatch = Field(default_factory=ObjectMatch)
    patch: list[dict[str, Any]] = Field(min_length=1, description="JSON patch operations: op, path, value/from")


class PickSpread(Model):
    """Take `count` clusters of those the stage's selector takes, spread over a field: one for each
    value first (by name within a value), then round again, e.g. one canary per region."""

    count: int = Field(ge=1, le=10000)
    spread_over: Literal["region", "provider", "environment", "version"] | str = Field(
        default="region", description="region, provider, environment, version, or label:<key>")


class BundleTargets(Model):
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    versions: list[str] = Field(default_factory=list, description="control-plane minor versions taken, e.g. ['1.30', '1.31']; empty: any")
    exclude: list[str] = Field(default_factory=list, description="clusters never touched by this bundle")
    min_pods_free: int | None = Field(default=None, ge=0, description="leave out clusters the last sweep found with fewer"
                                      " free pod slots (or never swept)")


class PolicyStage(Model):
    name: str = Field(min_length=1, max_length=60)
    selector: ClusterSelector = Field(default_factory=ClusterSelector)
    pick: PickSpread | None = Field(default=None, description="take only this many of the clusters the selector takes")
    concurrency: int = Field(default=1, ge=1, le=500, description="clusters given the bundle at once in this stage")
    soak_seconds: float = Field(default=0, ge=0)
    approval_required: bool = False
    health_checks: list[HealthCheck] = Field(default_factory=list)
    mode: PolicyMode | None = Field(default=None, description="how this stage's policy-engine objects act; None: the"
                                    " bundle's policy_mode decides")
    max_violations: int = Field(default=0, ge=0, description="violations the stage's clusters may report before the next"
                                " promotion (audit → enforce, or the next stage) is refused")


class DriftIgnore(Model):
    match: ObjectMatch = Field(default_factory=ObjectMatch)
    paths: list[str] = Field(min_length=1, description="JSON pointers (a prefix ignores what is under it), e.g. /data/cache")


class DriftSettings(Model):
    mode: Literal["report", "remediate"] = "report"
    ignore: list[DriftIgnore] = Field(default_factory=list)


class BundleSpec(KubeTimings):
    """A bundle file (`regatta policy rollout --file bundle.yaml`) and the PolicyRollout input; the
    same JSON, with `manifests` inline, starts one from the Temporal UI."""

    name: str = Field(pattern=BUNDLE_NAME, max_length=50)
    description: str = ""
    manifests: list[dict[str, Any]] = Field(default_factory=list, description="the objects, inline")
    source: BundleSource | None = Field(default=None, description="where the objects come from when not inline")
    overrides: list[BundleOverride] = Field(default_factory=list)
    targets: BundleTargets = Field(default_factory=BundleTargets)
    placement: Placement | None = Field(default=None, description="an application bundle: pick clusters among those the"
                                        " targets take and divide each Deployment's and StatefulSet's replicas")
    stages: list[PolicyStage] = Field(default_factory=list, description="empty: one canary (one cluster), then the"
                                      " rest five at a time")
    policy_mode: Literal["audit_then_enforce", "audit", "enforce"] = Field(
        default="audit_then_enforce", description="policy-engine objects: reach every stage in audit first, then be"
        " enforced stage by stage; or stay in audit; or be enforced at once")
    force: bool = Field(default=False, description="take fields another field manager owns (server-side apply's force)")
    prune: bool = Field(default=True, description="delete objects an earlier revision applied that this one drops"
                        " (only those carrying the bundle's label)")
    failure_budget: int | str = 0
    drift: DriftSettings = Field(default_factory=DriftSettings)
    ticket: str | None = None
    requested_by: str = "temporal-ui"
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    timeout_seconds: float = Field(default=120, gt=0, le=3600, description="how long one cluster may take to observe"
                                   " every object and be healthy")
    revision: str | None = Field(default=None, description="set when the bundle is read: the hash of its content; leave"
                                 " it out")
    source_commit: str | None = Field(default=None, description="set when read from git: the commit the ref named")
    rollback_of: str | None = Field(default=None, description="set by `policy rollback`: the revision being undone")

    @model_validator(mode="after")
    def _objects_somewhere(self) -> BundleSpec:
        if self.source is not None and self.manifests:
            raise ValueError("give manifests inline or a source, not both")
        return self


class BundleObjectKey(Model):
    api_version: str
    kind: str
    namespace: str = ""
    name: str

    def words(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


class RenderedObject(Model):
    key: BundleObjectKey
    body: dict[str, Any]


class ClusterRendering(Model):
    """What one cluster is given: the bundle's objects after its overrides, substitutions and mode."""

    cluster: str
    revision: str
    mode: PolicyMode | None = None
    objects: list[RenderedObject]
    overrides: list[int] = Field(default_factory=list, description="indexes of the overrides that apply")


class WithdrawBundle(TargetsAtSite, Model):
    """Take a bundle off a cluster: delete every object it applied there (only those carrying its
    label) and its record; what a move does to the cluster it leaves."""

    bundle: str
    cluster: str
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the cluster: the call goes to its queue (left out for a cluster"
        " reached centrally)"))
    operation_id: str = ""
    audit: OperationRecord | None = None


class GiveRenderedBundle(Model):
    """A bundle rendered for one cluster, as the kube layer gives it (regatta/kube/bundles.py): server-side apply,
    prune, wait for generations and health, and record the revision in the cluster. What a GiveBundle activity does
    once it has read the bundle and rendered it; `regatta policy preview` gives it as a dry run."""

    cluster: ClusterRef
    bundle: str
    rendering: ClusterRendering
    force: bool = False
    prune: bool = True
    rollout: str = Field(default="", description="the operation id, written into the cluster's record")
    timeout_seconds: float = 120
    poll_interval_seconds: float = 1
    dry_run: bool = Field(default=False, description="server-side dry run: what would change, nothing written")


class GiveBundle(TargetsAtSite, Model):
    """What PolicyRollout asks of one cluster: the bundle at a revision (read from the inventory,
    so the history does not carry the manifests once per cluster), in a mode."""

    bundle: str
    revision: str
    cluster: str
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the cluster: the call goes to its queue (left out for a cluster"
        " reached centrally)"))
    mode: PolicyMode | None = None
    rollout: str = ""
    dry_run: bool = False
    replicas: dict[str, int] = Field(default_factory=dict, description="a placed application: workload → this cluster's share")
    answer_timeout_seconds: float | None = Field(default=None, description="how long the cluster's API server may not"
                                                 " answer before it counts as failed; None: timeout_seconds")
    # How this rollout applies (not part of the revision: the same content may be forced once)
    force: bool = False
    prune: bool = True
    timeout_seconds: float = 120
    poll_interval_seconds: float = 1
    audit: OperationRecord | None = Field(default=None, description="the audit line to write when the cluster is done"
                                          " (numbered by the rollout, so a retried activity writes it once)")


class CountViolations(TargetsAtSite, Model):
    bundle: str
    revision: str
    clusters: list[str]
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the clusters (every one of them sits there): the call goes to its queue (left out for a cluster"
        " reached centrally)"))
    operation_id: str = Field(default="", description="the rollout that asks: its id goes on the audit lines")


class FieldChange(Model):
    """One field that differs: where (a JSON pointer), what it was, what it is or would be."""

    path: str
    before: Any = None
    after: Any = None


class ObjectChange(Model):
    key: BundleObjectKey
    action: Literal["created", "configured", "unchanged", "pruned", "would_create", "would_configure", "would_prune"]
    fields: list[FieldChange] = Field(default_factory=list, description="what changes, field by field")


class GiveReport(Model):
    cluster: str
    revision: str
    ref: ClusterRef | None = Field(default=None, description="how the cluster is reached: for its health gates")
    changes: list[ObjectChange] = Field(default_factory=list)
    violations: int = 0
    violation_detail: list[str] = Field(default_factory=list, description="policy → failing results")


class ViolationCount(Model):
    cluster: ClusterRef
    policies: list[BundleObjectKey]


class PolicyClusterState(Model):
    name: str
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the cluster: the call goes to its queue (left out for a cluster"
        " reached centrally)"))
    status: Literal["pending", "applying", "applied", "failed", "skipped", "aborted"] = "pending"
    detail: str = ""
    violations: int = 0
    replicas: dict[str, int] = Field(default_factory=dict, description="a placed application: workload → its share here")


class PolicyStageState(Model):
    name: str
    mode: PolicyMode | None = None
    concurrency: int
    soak_seconds: float
    approval_required: bool
    max_violations: int = 0
    status: Literal["pending", "awaiting_approval", "running", "soaking", "done", "halted"] = "pending"
    approved_by: str | None = None
    # left out while None: a worker of the release before, which forbids keys it does not know, still takes the state
    soak_ends: datetime | None = Field(default=None, description="while soaking: when the next stage may start",
                                       exclude_if=lambda ends: ends is None)
    clusters: list[PolicyClusterState] = Field(default_factory=list)


class TargetDecision(Model):
    cluster: str
    included: bool
    stage: str | None = None
    because: str


class PolicyPlan(Model):
    """Every cluster of the fleet with why it is in or out, and the passes and stages that run."""

    bundle: str
    revision: str
    planned_at: datetime
    failure_budget: int
    stages: list[PolicyStageState] = Field(description="in the order they run: an audit pass over every stage, then the"
                                           " enforce pass, when the bundle says audit_then_enforce")
    decisions: list[TargetDecision]
    placement: PlacementDecision | None = Field(default=None, description="an application bundle: where it runs and why")


class PlanPolicy(Model):
    bundle: BundleSpec
    now: datetime


class PolicyRolloutProgress(StageControlState):
    operation_id: str = ""
    bundle: str
    revision: str = ""
    phase: Literal["planning", "awaiting_approval", "running", "soaking", "succeeded", "halted", "aborted", "failed"] = "planning"
    step: str = "starting"
    stage: str | None = None
    stages: list[PolicyStageState] = Field(default_factory=list)
    left_out: dict[str, str] = Field(default_factory=dict, description="clusters of the fleet not in the rollout → why")
    failure_budget: int = 0
    failed: int = 0
    applied_objects: int = 0
    message: str = ""


class PolicyRolloutInput(BundleSpec):
    """What starts a PolicyRollout: the bundle (the same JSON as the bundle file, manifests inline),
    and what the rollout carries into a fresh run when its history fills."""

    continue_as_new_after_events: int = Field(default=4000, ge=50, le=40000, description="history events after which"
                                              " the rollout carries its state into a fresh run, so no history grows"
                                              " with the size of the fleet")
    carried: PolicyRolloutProgress | None = Field(default=None, description="set by the rollout itself; leave it out")

    @field_serializer("carried")
    def _carried_as_held(self, carried: PolicyRolloutProgress | None) -> dict[str, Any] | None:
        """As PatchWaveInput's: handed on without its computed condition."""
        return carried.held() if carried is not None else None


class PolicyRolloutResult(Model):
    operation_id: str
    bundle: str
    revision: str
    outcome: Literal["succeeded", "halted", "aborted"]
    counts: dict[str, int]
    failed: dict[str, str] = Field(default_factory=dict)
    applied_objects: int = 0
    message: str


class ComplianceRecord(Model):
    """One cluster × bundle, as the inventory keeps it (and its history, one line per change)."""

    cluster: str
    bundle: str
    state: ComplianceState
    revision: str
    mode: PolicyMode | None = None
    violations: int = 0
    detail: str = ""
    evaluated_at: datetime | None = None



# ---------------------------------------------------------------------- drift


class Drift(Model):
    """One way a cluster's object differs from what Regatta applied to it."""

    cluster: str
    bundle: str
    revision: str
    key: BundleObjectKey
    kind: Literal["changed", "deleted"]
    fields: list[FieldChange] = Field(default_factory=list, description="changed: each path with what Regatta applied"
                                      " (before) and what is live (after)")
    changed_by: str | None = Field(default=None, description="the field manager that owns the changed fields now")
    changed_at: str | None = Field(default=None, description="when that manager last wrote them (managedFields time)")
    remediated: bool = False
    suppressed_by: str | None = Field(default=None, description="the suppression that covers it: its reason and ticket")


class DriftSuppression(Model):
    """A known drift, accepted for a while: its reason, its ticket, its end."""

    cluster: str
    bundle: str
    match: ObjectMatch = Field(default_factory=ObjectMatch)
    path: str = Field(default="", description="a JSON pointer prefix; empty: the whole object")
    reason: str = Field(min_length=1, max_length=500)
    ticket: str = Field(min_length=1, max_length=100)
    until: datetime
    by: str = "temporal-ui"


class DriftTarget(Model):
    cluster: str
    bundle: str
    revision: str
    mode: PolicyMode | None = None
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the cluster: the call goes to its queue (left out for a cluster"
        " reached centrally)"))


class SweepDrift(TargetsAtSite, Model):
    targets: list[DriftTarget]
    site: str | None = Field(default=None, exclude_if=lambda site: site is None, description=(
        "the site whose agent alone reaches the clusters (every target's): the call goes to its queue (left out for a cluster"
        " reached centrally)"))
    operation_id: str = ""


class DriftReport(Model):
    checked_objects: int = 0
    drifts: list[Drift] = Field(default_factory=list)
    unreachable: dict[str, str] = Field(default_factory=dict, description="cluster → why it could not be read")


class DriftSweepInput(Model):
    """What `regatta policy drift sweep` and the drift schedule send; `{}` sweeps every bundle."""

    bundle: str | None = Field(default=None, pattern=BUNDLE_NAME)
    batch_size: int = Field(default=100, ge=1, le=1000, description="clusters read by one activity")
    requested_by: str = "temporal-ui"
    ticket: str | None = None
    callback_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class DriftSweepProgress(Reported):
    operation_id: str = ""
    phase: Literal["listing", "sweeping", "succeeded", "failed"] = "listing"
    step: str = "starting"
    targets: int = 0
    swept: int = 0
    checked_objects: int = 0
    drifted: int = 0
    remediated: int = 0
    unreachable: int = 0


class DriftSweepResult(Model):
    operation_id: str
    outcome: Literal["succeeded"] = "succeeded"
    targets: int
    checked_objects: int
    drifts: int
    remediated: int
    suppressed: int
    unreachable: dict[str, str] = Field(default_factory=dict)
    message: str
