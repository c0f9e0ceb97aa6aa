"""Activities of the policy plane: plan a rollout over the inventory (keeping the bundle's content at
its revision), give one cluster a bundle, and count the violations the policy engines report.

Every outcome for a cluster, a refusal included, is written to its compliance record before the
activity returns or fails, so nothing half-applied is left unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from activities.failures import refuse, translated_failures
from regatta.formats.bundle_file import BundleFileError, resolve
from regatta.inventory import Inventory
from regatta.kube import bundles as kube_bundles
from regatta.kube.connect import ClusterConnections
from regatta.models import Activity
from regatta.models.errors import ErrorType
from regatta.models.policy import (
    ApplyBundle,
    ApplyReport,
    BundleSpec,
    ComplianceRecord,
    CountViolations,
    GiveBundle,
    PlanPolicy,
    PolicyPlan,
)
from regatta.rules import bundle_targets, bundles


def compliance_of(report: ApplyReport, *, bundle: str, mode: str | None, at: datetime) -> ComplianceRecord:
    state = "non_compliant" if report.violations else "compliant"
    return ComplianceRecord(cluster=report.cluster, bundle=bundle, state=state, revision=report.revision, mode=mode,
                            violations=report.violations, detail="; ".join(report.violation_detail), evaluated_at=at)


class PolicyActivities:
    def __init__(self, connections: ClusterConnections, inventory: Inventory, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.connections = connections
        self.inventory = inventory
        self.now = now

    def resolved(self, spec: BundleSpec) -> BundleSpec:
        """The bundle with its manifests inline (a git source is read here) and its revision."""
        if spec.revision and spec.manifests:
            return spec
        try:
            return resolve(spec, base=None)[0]
        except BundleFileError as error:
            raise refuse(str(error), error_type=ErrorType.BUNDLE_SOURCE_UNREADABLE) from None

    @activity.defn(name=Activity.PLAN_POLICY)
    def plan_policy(self, request: PlanPolicy) -> PolicyPlan:
        spec = self.resolved(request.bundle)
        with translated_failures():
            plan = bundle_targets.plan_policy(spec, self.inventory.list_clusters(), now=request.now)
        self.inventory.save_bundle_revision(spec, at=self.now())
        return plan

    def rendering_request(self, request: GiveBundle) -> tuple[BundleSpec, ApplyBundle]:
        spec = self.inventory.bundle_revision(request.bundle, request.revision)
        cluster = self.inventory.get_cluster(request.cluster)
        rendering = bundles.render(spec, cluster, mode=request.mode, bundle_revision=request.revision)
        return spec, ApplyBundle(cluster=cluster.ref, bundle=spec.name, rendering=rendering, force=request.force,
                                 prune=request.prune, rollout=request.rollout, timeout_seconds=request.timeout_seconds,
                                 poll_interval_seconds=request.poll_interval_seconds, dry_run=request.dry_run)

    @activity.defn(name=Activity.GIVE_BUNDLE)
    def give_bundle(self, request: GiveBundle) -> ApplyReport:
        """Apply, prune, wait until observed, record in the cluster; then count its violations and
        record its compliance. A refusal is recorded as `error` with the API server's words."""
        with translated_failures():
            spec, apply = self.rendering_request(request)
            api = self.connections.api_client(apply.cluster)
            try:
                report = kube_bundles.apply_bundle(api, apply, on_poll=lambda note: activity.heartbeat(note))
            except kube_bundles.BundleRefused as refusal:
                if not request.dry_run:
                    self.inventory.record_compliance(ComplianceRecord(
                        cluster=request.cluster, bundle=request.bundle, state="error", revision=request.revision,
                        mode=request.mode, detail=str(refusal), evaluated_at=self.now()))
                raise
            report.ref = apply.cluster
            if request.dry_run:
                return report
            policies = [o.key for o in apply.rendering.objects if bundles.policy_engine(o.key)]
            report.violations, report.violation_detail = kube_bundles.count_violations(api, policies)
            self.inventory.record_compliance(compliance_of(report, bundle=spec.name, mode=request.mode, at=self.now()))
            return report

    @activity.defn(name=Activity.COUNT_VIOLATIONS)
    def count_violations(self, request: CountViolations) -> dict[str, int]:
        """The violations each cluster's engines report now (read fresh, never a cached status),
        written to the clusters' compliance records."""
        spec = self.inventory.bundle_revision(request.bundle, request.revision)
        policies = [bundles.key_of(m) for m in spec.manifests if bundles.policy_engine(bundles.key_of(m))]
        counts = {}
        with translated_failures():
            for name in request.clusters:
                cluster = self.inventory.get_cluster(name)
                count, detail = kube_bundles.count_violations(self.connections.api_client(cluster.ref), policies)
                counts[name] = count
                current = next(iter(self.inventory.compliance(bundle=request.bundle, cluster=name)), None)
                if current is not None and current.state in ("compliant", "non_compliant"):
                    self.inventory.record_compliance(current.model_copy(update={
                        "state": "non_compliant" if count else "compliant", "violations": count,
                        "detail": "; ".join(detail), "evaluated_at": self.now()}))
                activity.heartbeat(name)
        return counts
